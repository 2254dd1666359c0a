"""Hub login sessions held in the hub's database, so every gunicorn worker sees them.

The browser's cookie carries only a random session id; the database keeps its SHA-256 (a
copy of the table opens no session), the account, its role, the session's CSRF token and
when it started and was last used. Logout deletes the row, so a copied cookie is worth
nothing afterwards; a session idle longer than its role allows, or older than ``max_age_s``,
is deleted at its next use. Time is wall-clock epoch seconds from an injected clock (workers
share it through the database).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TOUCH_EVERY_S = 30.0  # write "last used" at most this often per session


@dataclass(frozen=True)
class HubSession:
    user: str
    role: str
    csrf: str


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class HubSessions:
    """Start, look up and end sessions in ``store`` (an appliance_hub.store.HubStore)."""

    def __init__(
        self, store: Any, idle_s: Mapping[str, float], max_age_s: float, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.idle_s = dict(idle_s)
        self.max_age_s = max_age_s
        self.clock = clock

    def start(self, user: str, role: str) -> tuple[str, HubSession]:
        """A new session id and its session; expired rows of anyone are dropped too."""
        if role not in self.idle_s:
            raise ValueError(f"unknown role {role!r}")
        sid, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock()
        with self.store._tx() as cur:
            cur.execute(
                "DELETE FROM hub_sessions WHERE seen < ? OR started < ?",
                (now - max(self.idle_s.values()), now - self.max_age_s),
            )
            cur.execute(
                "INSERT INTO hub_sessions VALUES (?, ?, ?, ?, ?, ?)",
                (_digest(sid), user, role, csrf, now, now),
            )
        return sid, HubSession(user, role, csrf)

    def get(self, sid: object) -> HubSession | None:
        """The live session of ``sid`` (marking it used), or None."""
        if not isinstance(sid, str) or not 20 <= len(sid) <= 100:
            return None
        key, now = _digest(sid), self.clock()
        with self.store._tx() as cur:
            cur.execute(
                "SELECT user_name, role, csrf, started, seen FROM hub_sessions WHERE sid_hash = ?",
                (key,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            user, role, csrf, started, seen = row
            idle = self.idle_s.get(role)
            if idle is None or now - seen > idle or now - started > self.max_age_s:
                cur.execute("DELETE FROM hub_sessions WHERE sid_hash = ?", (key,))
                return None
            if now - seen >= TOUCH_EVERY_S:
                cur.execute("UPDATE hub_sessions SET seen = ? WHERE sid_hash = ?", (now, key))
        return HubSession(user, role, csrf)

    def end(self, sid: object) -> None:
        """Forget ``sid`` (logout)."""
        if isinstance(sid, str):
            with self.store._tx() as cur:
                cur.execute("DELETE FROM hub_sessions WHERE sid_hash = ?", (_digest(sid),))

    def end_user(self, user: str) -> None:
        """End every session of ``user`` (their account was removed or changed role)."""
        with self.store._tx() as cur:
            cur.execute("DELETE FROM hub_sessions WHERE user_name = ?", (user,))
