"""The audit log's tables, written as plain SQL (docs/adr/0009).

The DDL is byte for byte what sqlite-utils 4 wrote before (tests/data/audit-log-v1.db
and tests/audit/test_audit_schema.py hold it), so logs made by earlier releases open unchanged.
The schema is created inside ``BEGIN IMMEDIATE`` so two racing processes never both make it.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.audit.chain import HASHED_FIELDS, genesis_hash
from appliance.core.errors import AuditError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_INTEGER_COLUMNS = {"seq", "live", "trust_version"}


def _create_table(
    name: str,
    columns: Iterable[tuple[str, str]],
    *,
    pk: str,
    not_null: frozenset[str] = frozenset(),
) -> str:
    """``CREATE TABLE`` laid out exactly as sqlite-utils laid it out (three-space indent)."""
    lines = []
    for column, sql_type in columns:
        line = f'   "{column}" {sql_type}'
        if column == pk:
            line += " PRIMARY KEY"
        if column in not_null:
            line += " NOT NULL"
        lines.append(line)
    return f'CREATE TABLE "{name}" (\n' + ",\n".join(lines) + "\n)"


DDL = (
    _create_table("meta", [("key", "TEXT"), ("value", "TEXT")], pk="key"),
    _create_table(
        "records",
        [
            (c, "INTEGER" if c in _INTEGER_COLUMNS else "TEXT")
            for c in (*HASHED_FIELDS, "hash", "uploaded_at")
        ],
        pk="seq",
        not_null=frozenset({"prev_hash", "hash"}),
    ),
    _create_table(
        "checkpoints",
        [
            ("seq", "INTEGER"),
            ("time", "TEXT"),
            ("at", "REAL"),
            ("hash", "TEXT"),
            ("key_id", "TEXT"),
            ("signature", "TEXT"),
        ],
        pk="seq",
    ),
    "CREATE INDEX records_pending ON records(seq) WHERE uploaded_at IS NULL",
    "CREATE INDEX records_time ON records(time)",
)


def read_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def read_rows(conn: sqlite3.Connection, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
    """The rows of ``sql`` as dicts by column name, read one at a time."""
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    for values in cur:
        yield dict(zip(names, values, strict=True))


def _has_meta(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        is not None
    )


def ensure_schema(conn: sqlite3.Connection, path: Path, device_id: str) -> None:
    """Check the schema version of an existing log, or create a new log's tables and meta."""
    if _has_meta(conn):
        version = read_meta(conn, "schema_version")
        if version != str(SCHEMA_VERSION):
            raise AuditError(
                f"audit log {path} has schema {version}, this software reads {SCHEMA_VERSION}"
            )
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_meta(conn):  # not made by a racing process meanwhile
            for statement in DDL:
                conn.execute(statement)
            log_id = secrets.token_hex(16)  # random: a re-flashed card is a new log
            now = datetime.now(UTC).timestamp()
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("log_id", log_id),
                    ("device_id", device_id),
                    ("created_at", repr(now)),
                    ("head_seq", "0"),
                    ("head_hash", genesis_hash(log_id)),
                ],
            )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction; a failure here is left to SQLite's recovery."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        log.debug("rollback after an audit fault failed; SQLite recovers on next open")
