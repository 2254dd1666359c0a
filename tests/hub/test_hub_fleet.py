"""The hub's fleet view, health, readiness, metrics and schema migrations, over real HTTP."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from audit_support import device
from hub_fleet_support import ADMIN, T0, heartbeat_fields, iso, live_hub, signed

from appliance.core.errors import SyncError
from appliance_hub.migrations import steps
from appliance_hub.store import HubStore

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"


@pytest.fixture
def hub(tmp_path):
    with live_hub(tmp_path) as live:
        yield live


def _devices(hub, **query) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    status, body = hub.get_json("/v1/devices" + (f"?{qs}" if qs else ""), token=ADMIN)
    assert status == 200
    return body["devices"]


def test_health_and_readiness(hub):
    assert hub.get_json("/healthz") == (200, {"status": "ok"})
    status, body = hub.get_json("/readyz")
    assert status == 200 and body == {"status": "ready", "schema_version": len(steps([]))}


def test_readiness_fails_when_the_database_is_gone(tmp_path, hub):
    db = tmp_path / "hub.db"
    db.rename(tmp_path / "moved.db")
    db.mkdir()  # each request thread opens its own connection: this one cannot
    status, body = hub.get_json("/readyz")
    assert status == 503 and body["status"] == "unavailable"
    assert hub.get_json("/healthz")[0] == 200, "the process itself is alive"


def test_latest_heartbeat_per_device_and_a_short_history(tmp_path, hub):
    _, _, one = device(tmp_path, "kiosk-01", hub.devices)
    _, _, two = device(tmp_path, "kiosk-02", hub.devices)
    for i in range(3):
        hub.clock.now = T0 + 600 * i
        fields = heartbeat_fields("kiosk-01", T0 + 600 * i, audit_backlog=10 * i)
        assert hub.heartbeat(signed(one, fields)) == (
            200,
            {"status": "stored", "device_id": "kiosk-01"},
        )
    assert hub.heartbeat(signed(two, heartbeat_fields("kiosk-02", T0, trust_version=6)))[0] == 200
    listed = {d["device_id"]: d for d in _devices(hub)}
    assert sorted(listed) == ["kiosk-01", "kiosk-02"]
    k1 = listed["kiosk-01"]
    assert (k1["last_seen"], k1["audit_backlog"], k1["software_version"], k1["trust_version"]) == (
        iso(T0 + 1200),
        20,
        "0.1.0",
        7,
    )
    assert listed["kiosk-02"]["trust_version"] == 6
    assert "history" not in k1
    [detail] = _devices(hub, device_id="kiosk-01")
    assert [h["audit_backlog"] for h in detail["history"]] == [0, 10, 20]
    # A day later, only the newest of kiosk-01's heartbeats is still in its history.
    hub.clock.now = T0 + 86400 + 1100
    assert hub.heartbeat(signed(one, heartbeat_fields("kiosk-01", T0 + 86400 + 1100)))[0] == 200
    [detail] = _devices(hub, device_id="kiosk-01")
    assert [h["time"] for h in detail["history"]] == [iso(T0 + 1200), iso(T0 + 86400 + 1100)]


def test_silent_stale_and_failing_devices_are_marked(tmp_path, hub):
    ids = {}
    for name in ("fine", "quiet", "old-trust", "no-camera", "scanner-only"):
        ids[name] = device(tmp_path, name, hub.devices)[2]
    hub.heartbeat(signed(ids["quiet"], heartbeat_fields("quiet", T0)))
    hub.clock.now = T0 + 2 * 3600
    now = hub.clock.now
    hub.heartbeat(signed(ids["fine"], heartbeat_fields("fine", now)))
    hub.heartbeat(
        signed(
            ids["old-trust"],
            heartbeat_fields(
                "old-trust", now, trust_age_s=3 * 86400.0, last_sync_result="network error"
            ),
        )
    )
    hub.heartbeat(signed(ids["no-camera"], heartbeat_fields("no-camera", now, camera="lost")))
    hub.heartbeat(signed(ids["scanner-only"], heartbeat_fields("scanner-only", now, camera="none")))
    flags = {d["device_id"]: (d["silent"], d["stale"], d["failing"]) for d in _devices(hub)}
    assert flags == {
        "fine": (False, False, False),
        "quiet": (True, False, False),
        "old-trust": (False, True, True),
        "no-camera": (False, False, True),
        "scanner-only": (False, False, False),
    }
    # Trust data keeps ageing while a device is silent: two more days and it is stale too.
    hub.clock.now = T0 + 2 * 86400
    assert {d["device_id"]: d["stale"] for d in _devices(hub)}["quiet"] is True


def test_a_runaway_device_clock_cannot_lock_out_its_later_heartbeats(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    status, _ = hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0 + 5 * 86400)))
    assert status == 400
    assert hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0)))[0] == 200


def _scrape(hub) -> dict[str, float]:
    status, body = hub.request("GET", "/metrics")
    assert status == 200
    samples = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_expose_fleet_gauges(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0, audit_backlog=42)))
    hub.clock.now = T0 + 100
    samples = _scrape(hub)
    label = '{device_id="kiosk-01"}'
    assert samples["appliance_hub_database_up"] == 1
    assert samples["appliance_hub_devices"] == 1
    assert samples[f"appliance_hub_device_audit_backlog{label}"] == 42
    assert samples[f"appliance_hub_device_last_seen_timestamp_seconds{label}"] == T0
    assert samples[f"appliance_hub_device_trust_age_seconds{label}"] == 700.0
    assert samples[f"appliance_hub_chain_forks{label}"] == 0
    assert samples[f"appliance_hub_device_out_of_service{label}"] == 0
    hub.heartbeat(
        signed(identity, heartbeat_fields("kiosk-01", T0 + 200, out_of_service="DEVICE_DISABLED"))
    )
    assert _scrape(hub)[f"appliance_hub_device_out_of_service{label}"] == 1


def test_alert_rules_use_only_metrics_the_hub_serves(tmp_path, hub):
    """Every metric an alert names appears on a live hub's /metrics, and the four cases
    the centre must see (silent, stale, backlog, fork) each have a rule."""
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0)))
    served = {re.sub(r"\{.*", "", name) for name in _scrape(hub)}
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {
        "ApplianceDeviceSilent",
        "ApplianceTrustDataStale",
        "ApplianceAuditBacklogGrowing",
        "ApplianceAuditChainFork",
    }
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule
        named = set(re.findall(r"\b(appliance_\w+)", rule["expr"]))
        assert named and named <= served, (rule["alert"], named - served)
    promtool = shutil.which("promtool")
    if promtool:
        import subprocess

        result = subprocess.run(
            [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_fork_counted_per_device(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0)))
    hub.store._anomaly("kiosk-01", "log-a", 5, "fork", "two records at seq 5")
    [listed] = _devices(hub)
    assert listed["chain_forks"] == 1 and listed["failing"] is True
    assert _scrape(hub)['appliance_hub_chain_forks{device_id="kiosk-01"}'] == 1


# --- migrations ------------------------------------------------------------------------


def _versions(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_fresh_database_is_at_the_latest_version(tmp_path):
    db = tmp_path / "hub.db"
    HubStore(db).close()
    assert _versions(db) == list(range(1, len(steps([])) + 1))
    HubStore(db).close()  # opening again applies nothing twice
    assert _versions(db) == list(range(1, len(steps([])) + 1))


def test_a_hub_database_from_before_versioning_is_migrated_with_its_records(tmp_path):
    from appliance_hub import store as store_module

    db = tmp_path / "hub.db"
    with sqlite3.connect(db) as conn:
        for ddl in store_module._SCHEMA:
            conn.execute(ddl)
        conn.execute("INSERT INTO logs VALUES ('kiosk-01', 'log-a', '2027-01-01T00:00:00Z', 3, 3)")
    HubStore(db).close()
    assert _versions(db)[-1] == len(steps([]))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 1
        conn.execute("SELECT device_id FROM device_status")


def test_a_database_newer_than_the_hub_is_refused(tmp_path):
    db = tmp_path / "hub.db"
    HubStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00Z')")
    with pytest.raises(SyncError, match="newer than this hub"):
        HubStore(db)


def test_postgresql_migrates_and_serves_the_fleet(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    import secrets
    from urllib.parse import quote

    from audit_support import find_postgres_dsn

    base = find_postgres_dsn()
    if not base:
        pytest.skip("no PostgreSQL: set APPLIANCE_TEST_POSTGRES_DSN")
    schema = f"hub_fleet_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as e:
        pytest.skip(f"PostgreSQL at the configured DSN is not usable: {e}")
    dsn = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        with live_hub(tmp_path, dsn) as hub:
            assert hub.get_json("/readyz") == (
                200,
                {"status": "ready", "schema_version": len(steps([]))},
            )
            _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
            assert hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0)))[0] == 200
            assert hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0)))[0] == 409
            assert [d["device_id"] for d in _devices(hub)] == ["kiosk-01"]
            assert _scrape(hub)["appliance_hub_devices"] == 1
        store = HubStore(dsn)  # a second start applies nothing
        with store._tx() as cur:
            cur.execute("SELECT version FROM schema_version ORDER BY 1")
            assert [v for (v,) in cur.fetchall()] == list(range(1, len(steps([])) + 1))
        store.close()
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
