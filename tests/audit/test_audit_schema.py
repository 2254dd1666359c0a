"""The audit log's schema on disk is the one sqlite-utils wrote (docs/adr/0009).

tests/data/audit-log-v1.db was made once by the sqlite-utils code path (three records,
no device key, journal switched to DELETE so it is one file). Logs on devices were made
the same way, so the sqlite3 code must open it unchanged, extend its chain, and write new
logs whose ``sqlite_master`` is identical to it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from support import NOW

from appliance.audit.log import AuditLog

FIXTURE = Path(__file__).parents[1] / "data" / "audit-log-v1.db"
FIELDS = {
    "source": "camera",
    "verdict": "PASS",
    "reason": "OK",
    "profile": "LC1",
    "iss": "TH-DLT",
    "kid": "00ff",
    "licence_type": "DL",
    "licence_hash": "ab" * 32,
    "cti_hash": None,
    "live": False,
    "trust_version": 7,
}


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()


def _log(path: Path) -> AuditLog:
    return AuditLog(path, device_id="kiosk-fixture-01", hmac_key=b"k" * 32, identity=None)


def test_a_new_log_has_exactly_the_schema_sqlite_utils_wrote(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _log(path).open().close()
    assert _schema(path) == _schema(FIXTURE)
    assert any(name == "records_pending" for _, name, _, _ in _schema(path))


def test_an_existing_log_opens_unchanged_and_its_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    shutil.copyfile(FIXTURE, path)
    with _log(path) as audit:
        before = audit.verify()
        assert before.ok and before.records == 3
        assert audit.append(FIELDS, now=NOW + 10) == 4
        after = audit.verify()
    assert after.ok and after.records == 4, str(after)
    assert _schema(path) == _schema(FIXTURE)


def test_the_audit_log_loads_no_sqlite_utils(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom appliance.audit.log import AuditLog\n"
        f"AuditLog(Path({str(tmp_path / 'a.db')!r}), device_id='d', hmac_key=b'k' * 32, "
        "identity=None).open().close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlite_utils')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
