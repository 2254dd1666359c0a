"""Schema migrations of the hub's database: a ``schema_version`` table and ordered steps.

Step 1 is the schema every hub already had (``CREATE ... IF NOT EXISTS``), so an existing
database adopts versioning without a change; later steps only add. Each step runs in the
migrating transaction with its version recorded, so a crash leaves the database at the
previous version; on PostgreSQL an advisory lock keeps gunicorn workers that start
together from migrating twice (SQLite's ``BEGIN IMMEDIATE`` does the same there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from appliance_hub.auth_schema import logins_step
from appliance_hub.auth_throttle import throttle_step

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "hub migrations" (any constant both workers agree on).
_LOCK_KEY = 0x4C43_3148


def _fleet(postgres: bool) -> list[str]:
    """Step 2: devices' latest heartbeat and a short history (appliance_hub.fleet)."""
    real = "DOUBLE PRECISION" if postgres else "REAL"
    return [
        "CREATE TABLE device_status (device_id TEXT PRIMARY KEY, last_seen TEXT NOT NULL, "
        f"last_seen_epoch {real} NOT NULL, heartbeat_time TEXT NOT NULL, "
        "software_version TEXT, trust_version BIGINT, "
        f"trust_age_s {real}, last_sync_result TEXT, last_sync_time TEXT, "
        "audit_backlog BIGINT, camera TEXT, clock_trusted INTEGER, disk_free_bytes BIGINT, "
        f"uptime_s {real})",
        "CREATE TABLE heartbeats (device_id TEXT NOT NULL, received_at TEXT NOT NULL, "
        f"received_epoch {real} NOT NULL, payload TEXT NOT NULL)",
        "CREATE INDEX heartbeats_device_time ON heartbeats (device_id, received_epoch)",
    ]


def _out_of_service(_postgres: bool) -> list[str]:
    """Step 4: the remote-policy state a heartbeat reports (DEVICE_DISABLED, ...)."""
    return ["ALTER TABLE device_status ADD COLUMN out_of_service TEXT"]


def _log_heads(_postgres: bool) -> list[str]:
    """Step 5: the highest signed head seen per device log (appliance_hub.heads)."""
    return [
        "CREATE TABLE log_heads (device_id TEXT NOT NULL, log_id TEXT NOT NULL, "
        "seq BIGINT NOT NULL, hash TEXT NOT NULL, head_time TEXT NOT NULL, "
        "signature TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (device_id, log_id))",
        "CREATE INDEX anomalies_log ON anomalies (device_id, log_id, kind)",
    ]


def steps(baseline: Sequence[str]) -> list[Callable[[bool], list[str]]]:
    """Every step in order; step N (1-based) brings the schema to version N."""
    return [
        lambda _postgres: list(baseline),
        _fleet,
        logins_step,
        _out_of_service,
        _log_heads,
        throttle_step,
    ]


def current_version(cur: Any) -> int:
    cur.execute("SELECT max(version) FROM schema_version")
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(cur: Any, postgres: bool, baseline: Sequence[str]) -> int:
    """Apply the pending steps inside the caller's transaction; returns the version."""
    if postgres:
        cur.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "applied_at TEXT NOT NULL)"
    )
    version = current_version(cur)
    todo = steps(baseline)
    if version > len(todo):
        from appliance.core.errors import SyncError

        raise SyncError(
            f"hub database is at schema version {version}, newer than this "
            f"hub ({len(todo)}): upgrade the hub"
        )
    for number, step in enumerate(todo[version:], start=version + 1):
        for ddl in step(postgres):
            cur.execute(ddl)
        cur.execute(
            "INSERT INTO schema_version VALUES (?, ?)",
            (number, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        )
        log.info("hub database migrated to schema version %d", number)
    return len(todo)
