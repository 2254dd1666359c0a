"""``audit verify`` on a log that is being written: one consistent snapshot, never a false
TAMPERED. The write is made by a second connection (as the kiosk process would) at the
moment verification reads the chain head, deterministically, through SQLite's statement
trace hook."""

from __future__ import annotations

from pathlib import Path

from support import NOW

from appliance.audit.log import AuditLog

KEY = b"k" * 32
FIELDS = {"source": "camera", "verdict": "PASS", "reason": "OK", "live": False}


def write_between_reads(reader: AuditLog, writer: AuditLog, marker: str) -> list[int]:
    """Append one record with ``writer`` when ``reader`` starts a statement naming ``marker``."""
    appended: list[int] = []

    def on_statement(sql: str) -> None:
        if marker in sql and not appended:
            appended.append(writer.append(FIELDS, now=NOW + 60))

    reader._connect().set_trace_callback(on_statement)
    return appended


def test_verify_during_a_write_sees_one_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path, device_id="pi-1", hmac_key=KEY, identity=None) as writer:
        for i in range(3):
            writer.append(FIELDS, now=NOW + i)
        with AuditLog(path, device_id="pi-1", hmac_key=b"", identity=None) as reader:
            # records are read first, then the head: the write lands in between
            appended = write_between_reads(reader, writer, "FROM meta")
            report = reader.verify()
            assert appended == [4]  # the write really happened mid-verification
            assert report.ok, report
            assert report.records == 3  # the snapshot taken before the write
            reader._connect().set_trace_callback(None)
            assert reader.verify().records == 4  # and the next run sees it


def test_verify_still_catches_a_deleted_tail(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path, device_id="pi-1", hmac_key=KEY, identity=None) as log:
        for i in range(3):
            log.append(FIELDS, now=NOW + i)
        log._connect().execute("DELETE FROM records WHERE seq = 3")
        report = log.verify()
    assert not report.ok and report.first_bad_seq == 3
