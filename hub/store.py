"""Where the hub keeps uploaded audit records: SQLite by default, PostgreSQL for fleets.

Records are keyed by (device id, log id, seq), so a batch delivered twice, or retried out
of order, is stored once. Each batch is checked for chain continuity against what the hub
already holds for that log (``appliance_hub.chain_checks``): a record that differs from
the stored one with the same seq, or whose neighbour's hash disagrees, is a fork; the
batch is refused and the fork kept in ``anomalies`` for an auditor. Gaps (missing seqs)
are allowed and reported until filled. The device's signed head (``appliance_hub.heads``)
says how far its log reached: records below it that never arrived make the log
incomplete, a head that goes back, a new log with records outstanding or a record dated
before the one it follows is an anomaly.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.audit.chain import HASHED_FIELDS
from appliance.audit.head import SignedHead
from appliance.core.errors import SyncError
from appliance.platform.secret_files import ensure_private_database
from appliance_hub.chain_checks import check_batch, check_continuity, verify_rows
from appliance_hub.errors import BatchConflict
from appliance_hub.heads import (
    TRUNCATION_KINDS,
    check_records,
    head_summary,
    record_head,
    times_forward,
)
from appliance_hub.migrations import current_version, migrate

__all__ = ["RECORD_COLUMNS", "HubStore"]

RECORD_COLUMNS = (*HASHED_FIELDS, "hash")
_TEXT = "TEXT"
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS logs (device_id TEXT NOT NULL, log_id TEXT NOT NULL, "
    "first_seen TEXT NOT NULL, contiguous_through BIGINT NOT NULL DEFAULT 0, "
    "max_seq BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (device_id, log_id))",
    "CREATE TABLE IF NOT EXISTS records ("
    + ", ".join(
        f"{c} {'BIGINT' if c in ('seq', 'trust_version') else 'INTEGER' if c == 'live' else _TEXT}"
        for c in RECORD_COLUMNS
    )
    + ", received_at TEXT NOT NULL, "
    "PRIMARY KEY (device_id, log_id, seq))",
    "CREATE INDEX IF NOT EXISTS records_time ON records (device_id, time)",
    "CREATE TABLE IF NOT EXISTS checkpoints (device_id TEXT NOT NULL, log_id TEXT NOT NULL, "
    "seq BIGINT NOT NULL, time TEXT, hash TEXT, key_id TEXT, signature TEXT, "
    "PRIMARY KEY (device_id, log_id, seq))",
    "CREATE TABLE IF NOT EXISTS batches (device_id TEXT NOT NULL, log_id TEXT NOT NULL, "
    "first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, received_at TEXT NOT NULL, "
    "PRIMARY KEY (device_id, log_id, first_seq, last_seq))",
    "CREATE TABLE IF NOT EXISTS anomalies (device_id TEXT NOT NULL, log_id TEXT NOT NULL, "
    "seq BIGINT, kind TEXT NOT NULL, detail TEXT NOT NULL, received_at TEXT NOT NULL)",
]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HubStore:
    """SQL store behind one interface; ``dsn`` is a file path or ``postgresql://...``."""

    def __init__(self, dsn: str | Path) -> None:
        self.dsn = str(dsn)
        self.postgres = self.dsn.startswith(("postgresql://", "postgres://"))
        self._local = threading.local()
        try:
            with self._tx() as cur:
                self.schema_version = migrate(cur, self.postgres, baseline=_SCHEMA)
        except self._errors() as e:
            raise SyncError(f"hub database cannot be migrated: {e}") from e

    # connections: one per thread

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.postgres and (conn.closed or conn.broken):
            conn = None  # the server restarted or the link dropped: reconnect
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
            except ImportError as e:
                raise SyncError(
                    "PostgreSQL hub store needs psycopg: pip install 'psycopg[binary]'"
                ) from e
            try:
                return psycopg.connect(self.dsn, connect_timeout=10)
            except psycopg.Error as e:
                raise SyncError(f"cannot connect to the hub database: {e}") from e
        try:
            ensure_private_database(Path(self.dsn))  # 0640, whatever the umask
            conn = sqlite3.connect(
                self.dsn, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as e:
            raise SyncError(f"cannot open hub database {self.dsn}: {e}") from e
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    class _Tx:
        def __init__(self, store: HubStore) -> None:
            self.store = store

        def __enter__(self) -> Any:
            conn = self.store._conn()
            self.cur = conn.cursor()
            if not self.store.postgres:
                self.cur.execute("BEGIN IMMEDIATE")
            return _Cursor(self.cur, self.store._sql)

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            conn = self.store._conn()
            try:
                if exc_type is None:
                    conn.commit() if self.store.postgres else self.cur.execute("COMMIT")
                else:
                    conn.rollback() if self.store.postgres else self.cur.execute("ROLLBACK")
            finally:
                self.cur.close()

    def _tx(self) -> HubStore._Tx:
        return HubStore._Tx(self)

    def _errors(self) -> tuple[type[BaseException], ...]:
        if self.postgres:
            import psycopg

            return (psycopg.Error,)
        return (sqlite3.Error,)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ingest

    def ingest(self, batch: dict[str, Any], head: SignedHead | None = None) -> dict[str, Any]:
        """Store a checked batch once; returns the acknowledgement (``last_hash``: the hash
        held at its last seq, for the hub's signature). Durable on return. ``head``: the
        batch's signed head, already verified with the device's key."""
        records = check_batch(batch)
        device_id, log_id = batch["device_id"], batch["log_id"]
        first, last = records[0]["seq"], records[-1]["seq"]
        try:
            return self._ingest(batch, records, device_id, log_id, first, last, head)
        except BatchConflict as conflict:
            self._anomaly(device_id, log_id, conflict.seq, "fork", str(conflict))  # type: ignore[attr-defined]
            raise
        except self._errors() as e:
            raise SyncError(f"hub database error: {e}") from e

    def _ingest(
        self,
        batch: dict[str, Any],
        records: list[dict[str, Any]],
        device_id: str,
        log_id: str,
        first: int,
        last: int,
        head: SignedHead | None,
    ) -> dict[str, Any]:
        received = _now()
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO logs (device_id, log_id, first_seen) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (device_id, log_id, received),
            )
            lock = " FOR UPDATE" if self.postgres else ""
            cur.execute(
                "SELECT contiguous_through, max_seq FROM logs "  # noqa: S608
                "WHERE device_id = ? AND log_id = ?" + lock,
                (device_id, log_id),
            )
            contiguous, max_seq = cur.fetchone()
            cur.execute(
                "SELECT seq, hash, prev_hash, time FROM records WHERE device_id = ? "
                "AND log_id = ? AND seq BETWEEN ? AND ?",
                (device_id, log_id, first - 1, last + 1),
            )
            held = {row[0]: (row[1], row[2], row[3]) for row in cur.fetchall()}
            check_continuity(records, held, first, last)
            new = [r for r in records if r["seq"] not in held]
            times_forward(cur, records, held, received)
            check_records(cur, device_id, log_id, new, received)
            if head is not None:
                record_head(cur, head, received)
            if new:
                cur.executemany(
                    f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}, received_at) VALUES "  # noqa: S608
                    f"({', '.join('?' * (len(RECORD_COLUMNS) + 1))}) ON CONFLICT DO NOTHING",
                    [(*(_column(r, c) for c in RECORD_COLUMNS), received) for r in new],
                )
            cps = [c for c in batch.get("checkpoints", []) if first <= c.get("seq", 0) <= last]
            if cps:
                cur.executemany(
                    "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        (
                            device_id,
                            log_id,
                            c["seq"],
                            c.get("time"),
                            c.get("hash"),
                            c.get("key_id"),
                            c.get("signature"),
                        )
                        for c in cps
                    ],
                )
            cur.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (device_id, log_id, first, last, received),
            )
            max_seq = max(max_seq, last)
            if first <= contiguous + 1 <= last:
                contiguous = self._advance(cur, device_id, log_id, contiguous)
            cur.execute(
                "UPDATE logs SET contiguous_through = ?, max_seq = ? WHERE "
                "device_id = ? AND log_id = ?",
                (contiguous, max_seq, device_id, log_id),
            )
        gaps = [] if contiguous >= max_seq else [[contiguous + 1, None]]
        return {
            "status": "stored" if new else "duplicate",
            "device_id": device_id,
            "log_id": log_id,
            "acked": [first, last],
            "stored": len(new),
            "duplicates": len(records) - len(new),
            "contiguous_through": contiguous,
            "max_seq": max_seq,
            "gaps": gaps,
            "last_hash": records[-1]["hash"],
        }

    @staticmethod
    def _advance(cur: _Cursor, device_id: str, log_id: str, through: int) -> int:
        """The highest seq up to which nothing is missing, walking on from ``through``."""
        cur.execute(
            "SELECT seq FROM records WHERE device_id = ? AND log_id = ? AND seq > ? ORDER BY seq",
            (device_id, log_id, through),
        )
        for (seq,) in cur.fetchall():
            if seq != through + 1:
                break
            through = seq
        return through

    def _anomaly(
        self, device_id: str, log_id: str, seq: int | None, kind: str, detail: str
    ) -> None:
        try:
            with self._tx() as cur:
                cur.execute(
                    "INSERT INTO anomalies VALUES (?, ?, ?, ?, ?, ?)",
                    (device_id, log_id, seq, kind, detail, _now()),
                )
        except self._errors() as e:
            raise SyncError(f"hub database error: {e}") from e

    # auditor queries

    def integrity(self, device_id: str | None = None) -> list[dict[str, Any]]:
        """Per device and log: counts, gaps (full list), forks, chain re-verified."""
        out = []
        with self._tx() as cur:
            where, params = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
            # A log known only from signed heads (heartbeats) is listed once it claims
            # records: the hub has none of them.
            cur.execute(
                f"SELECT device_id, log_id, first_seen FROM logs {where} UNION ALL "  # noqa: S608
                "SELECT device_id, log_id, received_at FROM log_heads h WHERE seq > 0 "
                f"{'AND device_id = ? ' if device_id else ''}AND NOT EXISTS (SELECT 1 "
                "FROM logs l WHERE l.device_id = h.device_id AND l.log_id = h.log_id) "
                "ORDER BY 1, 2",
                params * 2,
            )
            logs = cur.fetchall()
            for dev, lid, first_seen in logs:
                cur.execute(
                    "SELECT * FROM records WHERE device_id = ? AND log_id = ? ORDER BY seq",
                    (dev, lid),
                )
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
                cur.execute(
                    "SELECT seq, kind, detail, received_at FROM anomalies WHERE "
                    "device_id = ? AND log_id = ? ORDER BY received_at",
                    (dev, lid),
                )
                anomalies = [
                    dict(zip(("seq", "kind", "detail", "received_at"), a, strict=True))
                    for a in cur.fetchall()
                ]
                result = verify_rows(lid, rows)
                head = head_summary(cur, dev, lid)
                # Records the device signed it had but the hub never received.
                held = result["last_seq"] or 0
                outstanding = [[held + 1, head["seq"]]] if head and head["seq"] > held else []
                cut = any(a["kind"] in TRUNCATION_KINDS for a in anomalies)
                result["complete"] = result["complete"] and not outstanding and not cut
                out.append(
                    {
                        "device_id": dev,
                        "log_id": lid,
                        "first_seen": first_seen,
                        **result,
                        "head": head,
                        "outstanding": outstanding,
                        "anomalies": anomalies,
                    }
                )
        return out

    def records(
        self, device_id: str | None = None, since: str | None = None, until: str | None = None
    ) -> Iterator[dict[str, Any]]:
        clauses, params = [], []
        for clause, value in (
            ("device_id = ?", device_id),
            ("time >= ?", since),
            ("time < ?", until),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._tx() as cur:
            cur.execute(
                f"SELECT {', '.join(RECORD_COLUMNS)}, received_at FROM records "  # noqa: S608
                f"{where} ORDER BY device_id, log_id, seq",
                params,
            )
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        for values in rows:
            row = dict(zip(names, values, strict=True))
            row["live"] = bool(row["live"])
            yield row

    def ping(self) -> int:
        """The schema version, read from the database (readiness: it answers)."""
        with self._tx() as cur:
            return current_version(cur)

    def count(self) -> int:
        with self._tx() as cur:
            cur.execute("SELECT count(*) FROM records")
            return int(cur.fetchone()[0])


def _column(rec: dict[str, Any], name: str) -> Any:
    value = rec.get(name)
    if name == "live":
        return 1 if value else 0
    return value


class _Cursor:
    """Translates ``?`` placeholders for psycopg."""

    def __init__(self, cur: Any, sql: Any) -> None:
        self._cur, self._sql = cur, sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(self._sql(sql), rows)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    @property
    def description(self) -> Any:
        return self._cur.description
