"""Opening ``audit.db`` so a commit survives a power cut: private modes, WAL, synchronous FULL.

Every setting that decides whether a record written on an SD card is durable and readable
by the right users only is here, in one place; ``AuditLog`` deals in records.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from appliance.audit.schema import ensure_schema, read_meta
from appliance.core.errors import AuditError
from appliance.platform.secret_files import ensure_private_database


def open_database(
    path: Path, device_id: str, busy_timeout_s: float
) -> tuple[sqlite3.Connection, str | None, str]:
    """The connection, the log id and the device the log names (created for ``device_id``
    when new); ``AuditError`` when it cannot be opened, is not WAL or names no device."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0640 whatever the umask; SQLite gives -wal and -shm the database's mode.
        ensure_private_database(path)
        conn = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as e:
        raise AuditError(f"cannot open audit log {path}: {e}") from e
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise AuditError(f"audit log {path}: WAL mode refused ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        # Fold the WAL back every ~1 MiB and truncate it, so it stays small on an SD card.
        conn.execute("PRAGMA wal_autocheckpoint=256")
        conn.execute(f"PRAGMA journal_size_limit={2**20}")
        ensure_schema(conn, path, device_id)
        log_id = read_meta(conn, "log_id")
        stored_device = read_meta(conn, "device_id")
        if stored_device is None:  # every schema writes it: the meta table was damaged
            raise AuditError(f"audit log {path} names no device")
    except sqlite3.Error as e:
        conn.close()
        raise AuditError(f"cannot open audit log {path}: {e}") from e
    except AuditError:
        conn.close()
        raise
    return conn, log_id, stored_device
