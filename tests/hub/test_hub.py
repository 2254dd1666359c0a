"""The audit hub (SQLite store): signatures, idempotency, gaps, forks, auditor access."""

from __future__ import annotations

import base64
import json
import random

import pytest
from audit_support import HUB_KEY, NOW, FlaskPoster, Scenario, device, record_many

from appliance.audit.chain import record_hash
from appliance.audit.signed_body import sign_body
from appliance.cli import main
from appliance_hub.chain_checks import verify_rows
from appliance_hub.server import create_app
from appliance_hub.store import HubStore
from appliance_sync.upload import HubRejected, Uploader

TOKEN = "auditor-secret-token"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture
def hub(tmp_path):
    store = HubStore(tmp_path / "hub.db")
    app = create_app(store, tmp_path / "devices", TOKEN, ack_key=HUB_KEY)
    yield store, app.test_client()
    store.close()


def _batches(uploader: Uploader, size: int) -> list[tuple[int, int, bytes]]:
    records, cps = uploader.audit.pending(10**6)
    out = []
    for i in range(0, len(records), size):
        chunk = records[i : i + size]
        lo, hi = chunk[0]["seq"], chunk[-1]["seq"]
        out.append((lo, hi, uploader.make_batch(chunk, [c for c in cps if lo <= c["seq"] <= hi])))
    return out


def test_upload_everything_exactly_once_and_auditor_sees_it_complete(tmp_path, hub, scenario):
    store, client = hub
    _, log, identity = device(tmp_path, "kiosk-01", tmp_path / "devices", checkpoint_every=10)
    record_many(log, scenario, 95)
    report = Uploader(log, identity, FlaskPoster(client), batch_size=20).upload_pending()
    assert (report.batches, report.records) == (5, 95)
    assert log.status()["pending_upload"] == 0 and store.count() == 95
    [integrity] = store.integrity("kiosk-01")
    assert integrity["complete"] and integrity["records"] == 95 and not integrity["anomalies"]

    headers = {"Authorization": f"Bearer {TOKEN}"}
    resp = client.get("/v1/records?device_id=kiosk-01&since=2027-01-15T08:01:00Z", headers=headers)
    rows = [json.loads(line) for line in resp.get_data(as_text=True).splitlines()]
    assert resp.status_code == 200 and [r["seq"] for r in rows] == list(range(61, 96))
    assert {"seq", "time", "verdict", "reason", "hash", "prev_hash"} <= set(rows[0])
    assert all(record_hash(r) == r["hash"] for r in rows)
    csv_resp = client.get("/v1/records?format=csv", headers=headers)
    assert csv_resp.get_data(as_text=True).count("\n") == 96
    full = client.get("/v1/integrity", headers=headers).get_json()["logs"]
    assert full[0]["complete"] and full[0]["device_id"] == "kiosk-01"


def test_auditor_endpoints_need_the_token(hub):
    _, client = hub
    for path in ("/v1/records", "/v1/integrity"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_duplicates_and_out_of_order_batches_stored_once_gaps_reported(tmp_path, hub, scenario):
    store, client = hub
    _, log, identity = device(tmp_path, "kiosk-02", tmp_path / "devices", checkpoint_every=7)
    record_many(log, scenario, 60)
    uploader = Uploader(log, identity, FlaskPoster(client), batch_size=10)
    batches = _batches(uploader, 10)
    post = FlaskPoster(client)
    acks = [post(batches[5][2]), post(batches[0][2])]  # 51..60, then 1..10
    assert acks[0]["gaps"] == [[1, None]] and acks[1]["gaps"] == [[11, None]]
    [integrity] = store.integrity("kiosk-02")
    assert integrity["gaps"] == [[11, 50]] and not integrity["complete"]
    order = batches[1:5] * 2 + batches[:2]
    random.Random(5).shuffle(order)
    statuses = [post(body)["status"] for _, _, body in order]
    assert statuses.count("stored") == 4 and statuses.count("duplicate") == 6
    assert store.count() == 60
    [integrity] = store.integrity("kiosk-02")
    assert integrity["complete"] and integrity["gaps"] == []
    report = uploader.upload_pending()  # the device was never told: all duplicates now
    assert report.records == 60 and report.duplicates == 60
    assert log.status()["pending_upload"] == 0 and store.count() == 60


def test_unenrolled_device_bad_signature_and_bad_records_are_refused(tmp_path, hub, scenario):
    store, client = hub
    _, log, identity = device(tmp_path, "kiosk-03", None)
    record_many(log, scenario, 5)
    uploader = Uploader(log, identity, FlaskPoster(client))
    with pytest.raises(HubRejected, match=r"401.*unknown device or signature"):
        uploader.upload_batch()
    device(tmp_path, "kiosk-03b", tmp_path / "devices")
    assert (
        main(
            [
                "hub",
                "enrol",
                "--devices",
                str(tmp_path / "devices"),
                "kiosk-03",
                str(tmp_path / "kiosk-03b" / "state" / "device_ed25519.pub"),
            ]
        )
        == 0
    )
    with pytest.raises(HubRejected, match=r"401.*unknown device or signature"):  # another key
        uploader.upload_batch()
    assert (
        main(
            [
                "hub",
                "enrol",
                "--devices",
                str(tmp_path / "devices"),
                "kiosk-03",
                str(tmp_path / "kiosk-03" / "state" / "device_ed25519.pub"),
            ]
        )
        == 0
    )
    records, _ = log.pending(10)
    records[2]["verdict"] = "FAIL"  # altered after the device hashed it, then signed
    with pytest.raises(HubRejected, match=r"400.*seq 3"):
        FlaskPoster(client)(uploader.make_batch(records, []))
    assert store.count() == 0 and log.status()["pending_upload"] == 5
    unsigned = client.post("/v1/batches", data=b"not json", content_type="application/json")
    assert unsigned.status_code == 401
    signed = sign_body(identity, "kiosk-03", b"not json")
    bad = client.post("/v1/batches", data=signed.body, headers=dict(signed.headers))
    assert bad.status_code == 400
    assert (
        main(
            [
                "hub",
                "enrol",
                "--devices",
                str(tmp_path / "devices"),
                "../evil",
                str(tmp_path / "kiosk-03" / "state" / "device_ed25519.pub"),
            ]
        )
        == 1
    )


def test_fork_refused_and_reported_to_auditors(tmp_path, hub, scenario):
    store, client = hub
    _, log, identity = device(tmp_path, "kiosk-04", tmp_path / "devices")
    record_many(log, scenario, 20)
    uploader = Uploader(log, identity, FlaskPoster(client), batch_size=20)
    uploader.upload_pending()
    records, _ = [dict(r) for r in store.records("kiosk-04")], None
    forged = []
    prev = records[9]["hash"]
    for rec in records[10:15]:  # a second history after seq 10 (e.g. a restored backup)
        rec = {k: v for k, v in rec.items() if k != "received_at"}
        rec["reason"], rec["verdict"], rec["prev_hash"] = "EXPIRED", "FAIL", prev
        rec["hash"] = prev = record_hash(rec)
        forged.append(rec)
    with pytest.raises(HubRejected, match=r"409.*fork"):
        FlaskPoster(client)(uploader.make_batch(forged, []))
    [integrity] = store.integrity("kiosk-04")
    assert integrity["complete"] and integrity["anomalies"][0]["kind"] == "fork"
    assert integrity["anomalies"][0]["seq"] == 11
    assert store.count() == 20


def test_hub_tampering_is_visible_to_auditor_verification(tmp_path, hub, scenario):
    store, client = hub
    _, log, identity = device(tmp_path, "kiosk-05", tmp_path / "devices")
    record_many(log, scenario, 10)
    Uploader(log, identity, FlaskPoster(client)).upload_pending()
    rows = list(store.records("kiosk-05"))
    assert verify_rows(log.log_id, rows)["complete"]
    rows[4]["verdict"] = "PASS" if rows[4]["verdict"] == "FAIL" else "FAIL"
    del rows[7]
    result = verify_rows(log.log_id, rows)
    assert result["broken"] == [5] and result["gaps"] == [[8, 8]]


def test_checkpoint_signatures_checked_at_the_hub(tmp_path, hub, scenario):
    _, client = hub
    _, log, identity = device(tmp_path, "kiosk-06", tmp_path / "devices", checkpoint_every=3)
    record_many(log, scenario, 6)
    records, cps = log.pending(10)
    cps[0]["signature"] = base64.b64encode(b"\0" * 64).decode()
    uploader = Uploader(log, identity, FlaskPoster(client))
    with pytest.raises(HubRejected, match="checkpoint"):
        FlaskPoster(client)(uploader.make_batch(records, cps))
    assert NOW  # records' times come from the scenario clock
