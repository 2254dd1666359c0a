"""Audit benchmark: durable records/s on the device, upload device -> hub, hub ingest.

Run from the repository root: ``.venv/bin/python benchmarks/bench_audit.py``. Prints a
table and writes benchmarks/results/audit.json. The PostgreSQL row needs a server: the DSN
comes from APPLIANCE_TEST_POSTGRES_DSN or the file .ci/setup.d/postgres.sh writes.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_support import NOW, Scenario, device, find_postgres_dsn, record_many
from common import Row, print_table, row, save

from appliance.audit.chain import canonical, genesis_hash, record_hash
from appliance.audit.identity import DeviceIdentity
from appliance.audit.signed_body import SignedBody, sign_body

DEVICE_RECORDS = 2000
UPLOAD_RECORDS = 10_000
FLEET_DEVICES = 1000
FLEET_BATCH = 100


def durable_rate(tmp: Path, scenario: Scenario) -> Row:
    _, log, _ = device(tmp, "bench-device", None, checkpoint_every=100)
    record_many(log, scenario, 20)
    start = time.perf_counter()
    record_many(log, scenario, DEVICE_RECORDS, start=NOW + 100)
    elapsed = time.perf_counter() - start
    assert log.verify().ok
    log.close()
    return row(
        "durable audit records (device path)",
        DEVICE_RECORDS / elapsed,
        "records/s",
        "SQLite WAL, synchronous=FULL, fsync per record, checkpoint every 100; "
        "this machine's disk, not an SD card",
    )


def _serve(app):
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per batch
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def upload_rate(tmp: Path, scenario: Scenario) -> Row:
    from appliance_hub.server import create_app
    from appliance_hub.store import HubStore
    from appliance_sync.upload import HubClient, Uploader

    store = HubStore(tmp / "hub.db")
    server = _serve(create_app(store, tmp / "devices", None))
    _, log, identity = device(tmp, "bench-uploader", tmp / "devices", checkpoint_every=500)
    verdict = scenario.verdict()
    fields = log.fields(verdict, "camera", scenario.trust)
    # filling is not timed: the upload is measured here
    for _ in range(UPLOAD_RECORDS):
        log.append(fields, now=NOW)
    client = HubClient(f"http://127.0.0.1:{server.port}", timeout_s=30)
    start = time.perf_counter()
    report = Uploader(log, identity, client, batch_size=500).upload_pending()
    elapsed = time.perf_counter() - start
    server.shutdown()
    assert report.records == UPLOAD_RECORDS and store.count() == UPLOAD_RECORDS
    return row(
        "upload device -> hub, loopback HTTP",
        UPLOAD_RECORDS / elapsed,
        "records/s",
        f"batches of 500, signed, SQLite hub (synchronous=FULL), {UPLOAD_RECORDS} "
        "records, marked uploaded on ack",
    )


def _fleet_batches(scenario: Scenario, devices_dir: Path) -> list[SignedBody]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from appliance_hub.server import DeviceRegistry

    registry = DeviceRegistry(devices_dir)
    bodies = []
    template = {
        "source": "camera",
        "verdict": "PASS",
        "reason": "OK",
        "profile": "LC1",
        "iss": "th.go.dlt",
        "kid": "00" * 8,
        "licence_type": "car",
        "licence_hash": "ab" * 32,
        "cti_hash": "cd" * 32,
        "live": False,
        "trust_version": 42,
        "software_version": "0.1.0",
    }
    for d in range(FLEET_DEVICES):
        identity = DeviceIdentity(f"fleet-{d:04d}", ed25519.Ed25519PrivateKey.generate())
        registry.enrol(identity.device_id, identity.public.pem)
        log_id = secrets.token_hex(16)
        prev, records = genesis_hash(log_id), []
        for seq in range(1, FLEET_BATCH + 1):
            rec = dict(
                template,
                seq=seq,
                time=f"2027-01-15T08:00:{seq % 60:02d}.000000Z",
                device_id=identity.device_id,
                log_id=log_id,
                prev_hash=prev,
            )
            rec["hash"] = prev = record_hash(rec)
            records.append(rec)
        payload = canonical(
            {
                "type": "appliance-audit-batch-v1",
                "device_id": identity.device_id,
                "log_id": log_id,
                "first_seq": 1,
                "last_seq": FLEET_BATCH,
                "records": records,
                "checkpoints": [],
                "sent_at": NOW,
            }
        )
        bodies.append(sign_body(identity, identity.device_id, payload))
    return bodies


def postgres_ingest(tmp: Path, scenario: Scenario) -> list[Row]:
    dsn = find_postgres_dsn()
    name = f"hub ingest, PostgreSQL, {FLEET_DEVICES} devices' batches"
    if not dsn:
        return [row(name, 0, "records/s", "skipped: no PostgreSQL DSN")]
    import psycopg

    from appliance_hub.server import create_app
    from appliance_hub.store import HubStore
    from appliance_sync.upload import HubClient

    schema = f"hub_bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in dsn else "?"
        store = HubStore(f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}")
        bodies = _fleet_batches(scenario, tmp / "fleet-devices")
        server = _serve(create_app(store, tmp / "fleet-devices", None))
        client = HubClient(f"http://127.0.0.1:{server.port}", timeout_s=60)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            acks = list(pool.map(client.post_batch, bodies))
        elapsed = time.perf_counter() - start
        server.shutdown()
        assert all(a["status"] == "stored" for a in acks)
        assert store.count() == FLEET_DEVICES * FLEET_BATCH
        store.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    n = FLEET_DEVICES * FLEET_BATCH
    notes = (
        f"{FLEET_DEVICES} devices x 1 batch of {FLEET_BATCH}, 8 concurrent HTTP clients, "
        "signature + hash chain checked, one transaction per batch"
    )
    return [
        row(name, n / elapsed, "records/s", notes),
        row(name.replace("ingest", "batches"), FLEET_DEVICES / elapsed, "batches/s", notes),
    ]


def run() -> list[Row]:
    scenario = Scenario()
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as tmp:
        return [
            durable_rate(Path(tmp) / "a", scenario),
            upload_rate(Path(tmp) / "b", scenario),
            *postgres_ingest(Path(tmp) / "c", scenario),
        ]


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    result = run()
    print_table("Audit log, upload and hub", result)
    print(f"\nwritten to {save('audit', result)}")
