"""The hub's login throttle, held in the hub's database so every gunicorn worker shares it.

Each worker used to keep its own counts in memory, so four workers let four times the free
tries through (issue 21, finding 12: 19 of 40 rapid wrong logins reached a password check).
Here one row per client holds its failures, its last failure and when it may try again;
``reserve`` reads and counts in one transaction (``BEGIN IMMEDIATE`` on SQLite, the row
locked ``FOR UPDATE`` on PostgreSQL), so concurrent tries in any workers cannot all pass
before one is counted. The rule is ``appliance.webauth.throttle.ThrottlePolicy``; time is
wall-clock epoch seconds from the injected clock (workers share it through the database).
Rows older than the forget window are dropped, and at most ``MAX_CLIENTS`` are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.webauth.throttle import MAX_CLIENTS, ThrottlePolicy, whole_seconds

MAX_CLIENT_CHARS = 128
SELECT = "SELECT failures, last_failure, allowed_at FROM login_throttle WHERE client = ?"
SELECT_FOR_UPDATE = SELECT + " FOR UPDATE"


def throttle_step(postgres: bool) -> list[str]:
    """DDL of the migration step that adds the table (``migrations.steps``)."""
    real = "DOUBLE PRECISION" if postgres else "REAL"
    return [
        "CREATE TABLE login_throttle (client TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
        f"last_failure {real} NOT NULL, allowed_at {real} NOT NULL)",
        "CREATE INDEX login_throttle_last ON login_throttle (last_failure)",
    ]


class StoreThrottle:
    """Per-client delay after failed hub logins, in ``store`` (a HubStore)."""

    def __init__(
        self, store: Any, clock: Callable[[], float], policy: ThrottlePolicy | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy or ThrottlePolicy()

    def reserve(self, client: str) -> int:
        """Seconds ``client`` must still wait (nothing counted), or 0: this try is counted
        as a failure now, until ``succeeded``."""
        client, now = client[:MAX_CLIENT_CHARS], self.clock()
        select = SELECT_FOR_UPDATE if self.store.postgres else SELECT
        with self.store._tx() as cur:
            cur.execute(
                "INSERT INTO login_throttle VALUES (?, 0, ?, ?) ON CONFLICT DO NOTHING",
                (client, now, now),
            )
            cur.execute(select, (client,))
            failures, last, allowed_at = cur.fetchone()
            if now - last >= self.policy.forget_after_s:
                failures, allowed_at = 0, now
            if allowed_at > now:
                return whole_seconds(allowed_at - now)
            failures += 1
            cur.execute(
                "UPDATE login_throttle SET failures = ?, last_failure = ?, "
                "allowed_at = ? WHERE client = ?",
                (failures, now, now + self.policy.delay_after(failures), client),
            )
            self._prune(cur, now)
        return 0

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again; 0 when it may now."""
        now = self.clock()
        with self.store._tx() as cur:
            cur.execute(
                "SELECT last_failure, allowed_at FROM login_throttle WHERE client = ?",
                (client[:MAX_CLIENT_CHARS],),
            )
            row = cur.fetchone()
        if row is None or now - row[0] >= self.policy.forget_after_s:
            return 0
        return whole_seconds(row[1] - now)

    def succeeded(self, client: str) -> None:
        with self.store._tx() as cur:
            cur.execute("DELETE FROM login_throttle WHERE client = ?", (client[:MAX_CLIENT_CHARS],))

    def _prune(self, cur: Any, now: float) -> None:
        cur.execute(
            "DELETE FROM login_throttle WHERE last_failure < ?", (now - self.policy.forget_after_s,)
        )
        cur.execute("SELECT count(*) FROM login_throttle")
        extra = int(cur.fetchone()[0]) - MAX_CLIENTS
        if extra > 0:
            cur.execute(
                "DELETE FROM login_throttle WHERE client IN (SELECT client FROM "
                "login_throttle ORDER BY last_failure LIMIT ?)",
                (extra,),
            )
