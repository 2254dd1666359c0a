"""The device audit log: append-only, durable, hash-chained, signed, without personal data.

One SQLite database (``{state_dir}/audit.db``, WAL, ``synchronous=FULL``) holds one record
per verification. Each record carries the SHA-256 of the previous one, so an edited,
deleted, inserted or reordered row breaks the chain; every ``checkpoint_every`` records or
``checkpoint_interval_s`` seconds the device key signs the chain head, so even a rewritten
chain is caught. Licence numbers and credential ids are stored only as HMAC-SHA256 under the
fleet secret (docs/adr/0005). ``record`` returns only after the commit reached the disk and
raises ``AuditError`` (never a half-written row) when it cannot: disk full, read-only file
system, size cap reached with records not yet uploaded.
"""

from __future__ import annotations

import base64
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from appliance import __version__
from appliance.audit.chain import HASHED_FIELDS, checkpoint_message, iso_time, record_hash
from appliance.audit.connection import open_database
from appliance.audit.export import record_writer, write_records
from appliance.audit.fleet_key import load_hmac_key
from appliance.audit.head import HubAck, SignedHead, sign_head
from appliance.audit.identity import DeviceIdentity, DevicePublicKey, ensure_identity
from appliance.audit.record_fields import verdict_fields
from appliance.audit.retention import pending_count, prune_uploaded, used_bytes
from appliance.audit.schema import read_meta, read_rows, rollback
from appliance.audit.truncation import (
    ACK_KEY,
    acked_through,
    adopt_ack_rule,
    check_claims,
    read_json_meta,
)
from appliance.audit.upload_queue import mark_run_uploaded, pending_run
from appliance.audit.verification import VerifyReport, check_chain
from appliance.config import Config
from appliance.core.errors import AuditError, AuditFull
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Verdict

log = logging.getLogger(__name__)
_T = TypeVar("_T")


# --- the log ---------------------------------------------------------------------------


class AuditLog:
    """One device's audit log. Thread-safe; several processes may append (SQLite locks)."""

    def __init__(
        self,
        path: Path,
        *,
        device_id: str,
        hmac_key: bytes,
        identity: DeviceIdentity | None,
        public: DevicePublicKey | None = None,
        checkpoint_every: int = 100,
        checkpoint_interval_s: float = 300.0,
        retention_days: float = 90,
        max_db_bytes: int = 512 * 2**20,
        busy_timeout_s: float = 10.0,
        hub_key: DevicePublicKey | None = None,
    ) -> None:
        """``hub_key``: the hub's pinned public key; without it nothing is ever pruned."""
        self.path = Path(path)
        self.device_id = device_id
        self._hmac_key = hmac_key
        self._identity = identity
        self._public = public or (identity.public if identity else None)
        self.hub_key = hub_key
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_interval_s = checkpoint_interval_s
        self.retention_days = retention_days
        self.max_db_bytes = max_db_bytes
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self.log_id: str | None = None

    # connection and schema

    def open(self) -> AuditLog:
        with self._lock:
            self._connect()
        return self

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        conn, self.log_id, stored_device = open_database(
            self.path, self.device_id, self._busy_timeout_s
        )
        if stored_device != self.device_id:
            log.warning(
                "audit log %s belongs to device %s, configured as %s; keeping %s",
                self.path,
                stored_device,
                self.device_id,
                stored_device,
            )
            self.device_id = stored_device
        self._conn = conn
        return conn

    _meta = staticmethod(read_meta)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> AuditLog:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # writing

    def record(self, verdict: Verdict, *, now: float, source: str, trust: TrustSnapshot) -> None:
        """AuditSink: make the record durable before returning; ``AuditError`` otherwise."""
        self.append(self.fields(verdict, source, trust), now=now)

    def fields(self, verdict: Verdict, source: str, trust: TrustSnapshot) -> dict[str, Any]:
        if not self._hmac_key:
            raise AuditError(f"audit log {self.path} is open for reading only (no fleet key)")
        return verdict_fields(verdict, source, trust, self._hmac_key)

    def append(self, fields: Mapping[str, Any], *, now: float) -> int:
        """Append one record (fields without seq/time/chain); returns its sequence number."""
        with self._lock:
            conn = self._connect()
            try:
                if used_bytes(conn) >= self.max_db_bytes:
                    self._make_room(conn, now)
                conn.execute("BEGIN IMMEDIATE")
                adopt_ack_rule(conn)
                seq = int(self._meta(conn, "head_seq") or 0) + 1
                row: dict[str, Any] = {name: fields.get(name) for name in HASHED_FIELDS}
                row.update(
                    seq=seq,
                    time=iso_time(now),
                    device_id=self.device_id,
                    log_id=self.log_id,
                    software_version=__version__,
                    prev_hash=self._meta(conn, "head_hash"),
                )
                row["live"] = bool(row["live"])
                row["hash"] = record_hash(row)
                names = (*HASHED_FIELDS, "hash")
                conn.execute(
                    f"INSERT INTO records ({', '.join(names)}) VALUES "  # noqa: S608
                    f"({', '.join('?' * len(names))})",
                    [row[n] for n in names],
                )
                conn.executemany(
                    "UPDATE meta SET value = ? WHERE key = ?",
                    [(str(seq), "head_seq"), (row["hash"], "head_hash")],
                )
                if self._checkpoint_due(conn, seq, now):
                    self._write_checkpoint(conn, seq, row["hash"], now)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                rollback(conn)
                raise AuditError(f"audit record not written to {self.path}: {e}") from e
            except BaseException:
                rollback(conn)
                raise
            return seq

    def _checkpoint_due(self, conn: sqlite3.Connection, seq: int, now: float) -> bool:
        if self._identity is None:
            return False
        last = conn.execute("SELECT seq, at FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        last_seq, last_at = last if last else (0, float(self._meta(conn, "created_at") or 0))
        return (
            seq - last_seq >= self.checkpoint_every or now - last_at >= self.checkpoint_interval_s
        )

    def _write_checkpoint(self, conn: sqlite3.Connection, seq: int, head: str, now: float) -> None:
        assert self._identity is not None and self.log_id is not None
        time = iso_time(now)
        signature = self._identity.sign(
            checkpoint_message(self.device_id, self.log_id, seq, head, time)
        )
        conn.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
            (
                seq,
                time,
                now,
                head,
                self._identity.public.key_id,
                base64.b64encode(signature).decode(),
            ),
        )

    def checkpoint(self, now: float) -> int | None:
        """Sign the current head now (shutdown, before upload); returns its seq."""
        if self._identity is None:
            return None
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                seq = int(self._meta(conn, "head_seq") or 0)
                done = conn.execute("SELECT 1 FROM checkpoints WHERE seq = ?", (seq,)).fetchone()
                if seq and not done:
                    self._write_checkpoint(conn, seq, self._meta(conn, "head_hash") or "", now)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                rollback(conn)
                raise AuditError(f"audit checkpoint not written to {self.path}: {e}") from e
            return seq or None

    # size cap and retention

    def _make_room(self, conn: sqlite3.Connection, now: float) -> None:
        pruned = self._prune(conn, now, before=None)
        if pruned:
            log.warning("audit log at its size cap: pruned %d uploaded records early", pruned)
        if used_bytes(conn) >= self.max_db_bytes:
            raise AuditFull(
                f"audit log {self.path} reached its cap of "
                f"{self.max_db_bytes // 2**20} MiB with {pending_count(conn)} "
                "records not yet uploaded: upload them or raise audit.max_db_mb"
            )

    def prune(self, now: float) -> int:
        """Delete uploaded records older than the retention period; returns how many."""
        with self._lock:
            conn = self._connect()
            try:
                return self._prune(conn, now, before=iso_time(now - self.retention_days * 86400))
            except sqlite3.Error as e:
                raise AuditError(f"audit log {self.path} not pruned: {e}") from e

    def _prune(self, conn: sqlite3.Connection, now: float, before: str | None) -> int:
        """Prune only with a device key (the anchor checkpoint must be signed) and only
        records the hub acknowledged with its signature (``[upload] hub_key``)."""
        if self._identity is None:
            return 0
        acked = acked_through(conn, self.device_id, self.log_id or "", self.hub_key)
        return prune_uploaded(
            conn,
            before,
            lambda seq, head: self._write_checkpoint(conn, seq, head, now),
            acked_through=acked,
        )

    # upload support

    def pending(self, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The oldest contiguous run of records not yet uploaded, and checkpoints within it."""
        return self._read(lambda conn: pending_run(conn, limit))

    def signed_head(self, identity: DeviceIdentity, now: float) -> SignedHead:
        """The head (meta rows) signed by the device key, for a batch or heartbeat."""
        seq, head = self._read(
            lambda c: (int(self._meta(c, "head_seq") or 0), self._meta(c, "head_hash") or "")
        )
        return sign_head(identity, self.device_id, self.log_id or "", seq, head, iso_time(now))

    def hub_ack(self) -> HubAck | None:
        """The highest acknowledgement the hub signed for this log, as stored (unchecked)."""
        return self._read(lambda c: read_json_meta(c, ACK_KEY, HubAck.parse))

    def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            try:
                return query(self._connect())
            except sqlite3.Error as e:
                raise AuditError(f"cannot read audit log {self.path}: {e}") from e

    def mark_uploaded(
        self,
        first: int,
        last: int,
        now: float,
        ack: HubAck | None = None,
        head: SignedHead | None = None,
    ) -> int:
        """Mark first..last uploaded; keep ``ack`` (the hub's signed acknowledgement, checked
        by the caller) and ``head`` (the signed head sent) when higher than those held."""
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                n = mark_run_uploaded(conn, first, last, iso_time(now), ack, head)
                conn.execute("COMMIT")
                return n
            except sqlite3.Error as e:
                rollback(conn)
                raise AuditError(f"cannot mark records uploaded in {self.path}: {e}") from e

    # reading

    def status(self) -> dict[str, Any]:
        with self._lock:
            conn = self._connect()
            try:
                q = conn.execute(
                    "SELECT count(*), min(seq), max(seq), min(time), max(time), "
                    "sum(uploaded_at IS NULL) FROM records"
                ).fetchone()
                cp = conn.execute(
                    "SELECT seq, time FROM checkpoints ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                return {
                    "path": str(self.path),
                    "device_id": self.device_id,
                    "log_id": self.log_id,
                    "records": q[0],
                    "first_seq": q[1],
                    "last_seq": q[2],
                    "oldest": q[3],
                    "newest": q[4],
                    "pending_upload": q[5] or 0,
                    "last_checkpoint_seq": cp[0] if cp else None,
                    "last_checkpoint_time": cp[1] if cp else None,
                    "pruned_through": int(self._meta(conn, "pruned_through") or 0),
                    "used_bytes": used_bytes(conn),
                    "max_bytes": self.max_db_bytes,
                    "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                    "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                        conn.execute("PRAGMA synchronous").fetchone()[0]
                    ),
                }
            except sqlite3.Error as e:
                raise AuditError(f"cannot read audit log {self.path}: {e}") from e

    def export(
        self,
        out: IO[str],
        *,
        since: float | None = None,
        until: float | None = None,
        fmt: str = "jsonl",
    ) -> int:
        """Write records (since <= time < until) as CSV with a header or one JSON object
        per line."""
        writer = record_writer(out, fmt)  # an unknown format fails before anything is read
        return self._read(lambda conn: write_records(conn, writer, since, until))

    def verify(self) -> VerifyReport:
        """Check the chain, the anchor and every checkpoint; name the first bad record.

        Reads checkpoints, records and head in one read transaction: a log being written
        meanwhile (the kiosk runs) is checked as of one snapshot, never half before and
        half after a write (which looked like a deleted tail).
        """
        with self._lock:
            try:
                conn = self._connect()
                conn.execute("BEGIN")  # deferred: the first read fixes the WAL snapshot
                try:
                    return self._verify(conn)
                finally:
                    rollback(conn)
            except sqlite3.Error as e:
                raise AuditError(f"cannot read audit log {self.path}: {e}") from e

    def _verify(self, conn: sqlite3.Connection) -> VerifyReport:
        cps = {r["seq"]: r for r in read_rows(conn, "SELECT * FROM checkpoints")}
        report = check_chain(
            device_id=self.device_id,
            log_id=self.log_id or "",
            public=self._public,
            checkpoints=cps,
            records=read_rows(conn, "SELECT * FROM records ORDER BY seq"),
            head=lambda: int(self._meta(conn, "head_seq") or 0),
        )
        # A log holding less than the hub acknowledged or than it sent was cut afterwards.
        found = check_claims(conn, self.device_id, self.log_id or "", self.hub_key, self._public)
        if found is None or (report.first_bad_seq is not None and report.first_bad_seq <= found[0]):
            return report
        return VerifyReport(False, report.records, report.checkpoints, *found)


def from_config(config: Config, *, create_key: bool = True) -> AuditLog:
    """An ``AuditLog`` for the configuration (not opened yet)."""
    from appliance.audit.head import pinned_hub_key
    from appliance.audit.identity import load_public
    from appliance.core.errors import DeviceKeyError

    try:
        identity = ensure_identity(config)[0] if create_key else None
        public = identity.public if identity else load_public(config)
    except DeviceKeyError as e:
        raise AuditError(f"audit log needs the device key: {e}") from e
    hmac_key = load_hmac_key(config.paths.secrets_dir) if create_key else b""
    a = config.audit
    return AuditLog(
        config.audit_db,
        device_id=config.device.id,
        hmac_key=hmac_key,
        identity=identity,
        public=public,
        checkpoint_every=a.checkpoint_every,
        checkpoint_interval_s=a.checkpoint_interval_s,
        retention_days=a.retention_days,
        max_db_bytes=a.max_db_mb * 2**20,
        hub_key=pinned_hub_key(config.upload.hub_key),
    )


def open_audit_log(config: Config) -> AuditLog:
    """The device's audit sink (``appliance.kiosk.compose``): opened, or ``AuditError``."""
    return from_config(config).open()
