"""The hub's PostgreSQL store against a real server (.ci/setup.d/postgres.sh starts one)."""

from __future__ import annotations

import secrets
import threading
from urllib.parse import quote

import pytest
from audit_support import (
    HUB_KEY,
    FlaskPoster,
    Scenario,
    device,
    find_postgres_dsn,
    record_many,
)

from appliance.audit.chain import record_hash
from appliance_hub.server import create_app
from appliance_hub.store import HubStore
from appliance_sync.upload import HubRejected, Uploader

psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (pip install psycopg)")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture
def pg_dsn():
    dsn = find_postgres_dsn()
    if not dsn:
        pytest.skip(
            "no PostgreSQL: set APPLIANCE_TEST_POSTGRES_DSN or run "
            ".ci/setup.d/postgres.sh (writes /var/lib/appliance-ci/postgres.dsn)"
        )
    schema = f"hub_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as e:
        pytest.skip(f"PostgreSQL at the configured DSN is not usable: {e}")
    sep = "&" if "?" in dsn else "?"
    yield f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_postgres_store_idempotent_gaps_forks_and_auditor_view(tmp_path, pg_dsn, scenario):
    store = HubStore(pg_dsn)
    assert store.postgres
    client = create_app(store, tmp_path / "devices", "tok", ack_key=HUB_KEY).test_client()
    _, log, identity = device(tmp_path, "pg-kiosk", tmp_path / "devices", checkpoint_every=9)
    record_many(log, scenario, 50)
    uploader = Uploader(log, identity, FlaskPoster(client), batch_size=10)
    records, cps = log.pending(100)
    post = FlaskPoster(client)
    late = uploader.make_batch(records[30:40], [c for c in cps if 31 <= c["seq"] <= 40])
    assert post(late)["gaps"] == [[1, None]]
    assert post(late)["status"] == "duplicate"
    report = uploader.upload_pending()
    assert report.records == 50 and report.duplicates == 10
    assert store.count() == 50 and log.status()["pending_upload"] == 0
    [integrity] = store.integrity("pg-kiosk")
    assert integrity["complete"] and integrity["records"] == 50

    forged = dict(records[20], verdict="FAIL")
    forged["hash"] = record_hash(forged)
    with pytest.raises(HubRejected, match="409"):
        post(uploader.make_batch([forged], []))
    [integrity] = store.integrity("pg-kiosk")
    assert integrity["anomalies"][0]["kind"] == "fork" and store.count() == 50
    rows = client.get(
        "/v1/records?device_id=pg-kiosk&format=jsonl", headers={"Authorization": "Bearer tok"}
    ).get_data(as_text=True)
    assert rows.count("\n") == 50
    store.close()


def test_postgres_store_concurrent_devices_and_duplicate_races(tmp_path, pg_dsn, scenario):
    store = HubStore(pg_dsn)
    devices = [device(tmp_path, f"dev-{i}", None) for i in range(4)]
    batches = []
    for _, log, _ in devices:
        record_many(log, scenario, 40)
        records, _ = log.pending(100)
        batches += [
            {
                "type": "appliance-audit-batch-v1",
                "device_id": log.device_id,
                "log_id": log.log_id,
                "first_seq": records[i]["seq"],
                "last_seq": records[i + 9]["seq"],
                "records": records[i : i + 10],
                "checkpoints": [],
            }
            for i in range(0, 40, 10)
        ]
    errors: list[BaseException] = []

    def worker(items) -> None:
        try:
            for batch in items:
                store.ingest(batch)
        except BaseException as e:
            errors.append(e)
        finally:
            store.close()

    # every batch twice, from different threads at once: each record must be stored once
    threads = [
        threading.Thread(target=worker, args=(batches[k::3] + batches[::-1][k::3],))
        for k in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.count() == 160
    assert all(log["complete"] for log in store.integrity())
    store.close()
