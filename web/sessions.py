"""Logged-in sessions held on the server, so that logout and idle time really end them.

Flask's cookie session is signed, not stored: a cookie copied before logout stayed valid
until the key changed. Here the cookie carries only a random session id; this store says
which ids are live, for which role, and since when idle. Logout forgets the id; an id idle
longer than its role allows is forgotten at its next use. Time comes from an injected clock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAX_SESSIONS = 256  # a handful of staff per device; the oldest go first beyond this


@dataclass
class _Live:
    role: str
    seen: float


class SessionStore:
    """Live session ids with their role and last use (see module doc)."""

    def __init__(
        self, idle_s: Mapping[str, float], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle_s = dict(idle_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._live: OrderedDict[str, _Live] = OrderedDict()

    def start(self, role: str) -> str:
        """A new session id for ``role``."""
        if role not in self._idle_s:
            raise ValueError(f"unknown role {role!r}")
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._live[sid] = _Live(role, self._clock())
            while len(self._live) > MAX_SESSIONS:
                self._live.popitem(last=False)
        return sid

    def role(self, sid: object, *, touch: bool = True) -> str | None:
        """The role of a live session id (and mark it used now), or None."""
        if not isinstance(sid, str):
            return None
        now = self._clock()
        with self._lock:
            live = self._live.get(sid)
            if live is None:
                return None
            if now - live.seen > self._idle_s[live.role]:
                del self._live[sid]
                return None
            if touch:
                live.seen = now
                self._live.move_to_end(sid)
            return live.role

    def end(self, sid: object) -> None:
        """Forget a session id (logout)."""
        if isinstance(sid, str):
            with self._lock:
                self._live.pop(sid, None)
