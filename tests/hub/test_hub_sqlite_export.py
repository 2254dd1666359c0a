"""The auditor's own copy: the hub exports records as a SQLite file built with sqlite-utils.

Real devices upload through the hub's endpoint; the export is fetched from the API (bearer
token) and from the auditor screen (login), written to disk and opened the ways an auditor
would: sqlite3, the sqlite-utils library and the ``sqlite-utils`` command line, with a
full-text search over the reasons. sqlite-utils stays off the device (ADR 0009): the hub
loads it only when such an export is asked for.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from audit_support import Scenario
from hub_auditor_support import (
    AUDITOR,
    AUDITOR_PW,
    get,
    login,
    upload,
    upload_crafted,
)

sqlite_utils = pytest.importorskip("sqlite_utils", reason="pip install -e '.[hub]'")

BEARER = {"Authorization": "Bearer bearer-auditor"}
REASONS = ["REVOKED", "OK", "EXPIRED", "REVOKED", "SIGNATURE_INVALID", "OK"]
SQLITE_UTILS = Path(sys.executable).parent / "sqlite-utils"


@pytest.fixture
def hub_with_records(tmp_path, hub_app, hub_client):
    upload_crafted(tmp_path, hub_client, "kiosk-a", REASONS, Scenario())
    upload(tmp_path, hub_client, "kiosk-b", 7, Scenario())
    return hub_client, hub_app.store


def _saved(tmp_path: Path, resp, name: str) -> Path:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/vnd.sqlite3"
    assert "attachment" in resp.headers["Content-Disposition"]
    path = tmp_path / name
    path.write_bytes(resp.get_data())
    return path


def test_the_api_export_opens_in_sqlite3_and_sqlite_utils_with_full_text_search(
    tmp_path, hub_with_records
):
    client, store = hub_with_records
    path = _saved(tmp_path, client.get("/v1/records?format=sqlite", headers=BEARER), "a.db")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (13,)
        revoked = conn.execute(
            "SELECT r.device_id, r.seq FROM records_fts JOIN records r "
            "ON r.rowid = records_fts.rowid WHERE records_fts MATCH 'REVOKED' "
            "ORDER BY r.seq"
        ).fetchall()
    assert revoked == [("kiosk-a", 1), ("kiosk-a", 4)]
    db = sqlite_utils.Database(path)
    records = db.table("records")
    assert records.pks == ["device_id", "log_id", "seq"]
    assert {tuple(i.columns) for i in records.indexes} >= {
        ("time",),
        ("verdict",),
        ("reason",),
        ("licence_type",),
        ("device_id", "time"),
    }
    assert records.detect_fts() == "records_fts"
    assert [r["reason"] for r in records.search("EXPIRED")] == ["EXPIRED"]
    meta = {r["key"]: r["value"] for r in db.table("export_meta").rows}
    assert meta["records"] == "13" and json.loads(meta["filters"])["device_id"] is None
    held = {(r["device_id"], r["seq"]): r["hash"] for r in store.records()}
    assert {(r["device_id"], r["seq"]): r["hash"] for r in records.rows} == held
    db.close()


def test_the_sqlite_utils_command_line_searches_the_export(tmp_path, hub_with_records):
    client, _ = hub_with_records
    path = _saved(
        tmp_path, client.get("/v1/records?format=sqlite&device_id=kiosk-a", headers=BEARER), "a.db"
    )
    tables = subprocess.run(
        [str(SQLITE_UTILS), "tables", str(path), "--counts"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert {"table": "records", "count": 6} in json.loads(tables)
    found = subprocess.run(
        [str(SQLITE_UTILS), "search", str(path), "records", "REVOKED", "-c", "seq", "-c", "reason"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert sorted(json.loads(found), key=lambda r: r["seq"]) == [
        {"seq": 1, "reason": "REVOKED"},
        {"seq": 4, "reason": "REVOKED"},
    ]


def test_the_auditor_screen_exports_the_same_file_contents_and_logs_it(tmp_path, hub_with_records):
    client, store = hub_with_records
    assert get(client, "/audit/export.sqlite").status_code == 302, "login first"
    login(client, AUDITOR, AUDITOR_PW)
    path = _saved(tmp_path, get(client, "/audit/export.sqlite?reason=REVOKED"), "s.db")
    db = sqlite_utils.Database(path)
    assert [(r["device_id"], r["seq"]) for r in db.table("records").rows] == [
        ("kiosk-a", 1),
        ("kiosk-a", 4),
    ]
    db.close()
    with store._tx() as cur:
        cur.execute("SELECT action FROM auditor_access ORDER BY id")
        actions = [r[0] for r in cur.fetchall()]
    assert actions[-1] == "export_sqlite"


def test_unknown_format_and_missing_token_are_refused(hub_with_records):
    client, _ = hub_with_records
    assert client.get("/v1/records?format=sqlite").status_code == 401
    assert client.get("/v1/records?format=xlsx", headers=BEARER).status_code == 400


def test_the_hub_loads_sqlite_utils_only_for_the_export():
    code = (
        "import sys, appliance.cli, appliance_hub.server, appliance_hub.wsgi, "
        "appliance_web, appliance_sync.upload; "
        "assert 'sqlite_utils' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
