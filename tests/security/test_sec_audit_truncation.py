"""Attack replays (issue 21, finding 10, and the hub side of finding 9): audit truncation.

``head_seq``/``head_hash`` and the checkpoints are plain rows of ``audit.db``, so whoever
can write the file could:

1. cut the newest records (not yet uploaded) together with the head and the checkpoints
   above: ``audit verify`` said OK and the hub ``complete: true``;
2. delete ``audit.db``: the device silently started a new log, the pending records gone,
   and the hub showed no anomaly;
3. delete the oldest records down to a checkpoint: it looked exactly like retention
   pruning, even for records never uploaded.

Now the device signs its head into every batch and heartbeat and the hub keeps the highest
per log; the hub signs what it stores and only that is pruned. The hub raises an anomaly
(and the fleet's failing flag and metric) for a head that goes back, a new log with records
outstanding, and records dated before the one they follow; ``audit verify`` reports a log
that holds less than the hub acknowledged or than it pruned with an acknowledgement.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from audit_support import NOW, Scenario, device, postgres_schema_dsn, record_many
from hub_fleet_support import ADMIN, live_hub

from appliance.audit.log import open_audit_log
from appliance.cli import main
from appliance_hub import audit_view_query
from appliance_sync.heartbeat import Heartbeat, sources_from_config
from appliance_sync.upload import HubClient, Uploader


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_dsn(request, tmp_path) -> str:
    """The hub's store: SQLite, and PostgreSQL where the test database runs."""
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    dsn = postgres_schema_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL (.ci/setup.d/postgres.sh writes its DSN)")
    return dsn


def _upload(
    hub, log, identity, at: float, batch_size: int = 500, batches: int | None = None
) -> None:
    uploader = Uploader(
        log, identity, HubClient(hub.url, timeout_s=5), batch_size=batch_size, clock=lambda: at
    )
    if batches is None:
        uploader.upload_pending(max_attempts=1)
    for _ in range(batches or 0):
        uploader.upload_batch()


def _heartbeat(hub, config, log, identity, at: float) -> dict:
    """The device's own heartbeat code, its head signed at ``at``."""
    sources = sources_from_config(
        config,
        audit_backlog=lambda: 0,
        camera=lambda: "none",
        wall=lambda: at,
        audit_head=lambda: log.signed_head(identity, at).as_dict(),
    )
    return Heartbeat(sources, identity, HubClient(hub.url, timeout_s=5).post_heartbeat).send()


def _cut_tail(db: Path, keep: int) -> None:
    """What an attacker with the file does: records, checkpoints and head cut back."""
    conn = sqlite3.connect(db)
    (head,) = conn.execute("SELECT hash FROM records WHERE seq = ?", (keep,)).fetchone()
    conn.execute("DELETE FROM records WHERE seq > ?", (keep,))
    conn.execute("DELETE FROM checkpoints WHERE seq > ?", (keep,))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (str(keep),))
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (head,))
    conn.commit()
    conn.close()


def _cut_front(db: Path, through: int) -> None:
    """Records 1..through deleted down to the checkpoint at ``through``, as pruning would."""
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM records WHERE seq <= ?", (through,))
    conn.execute("DELETE FROM checkpoints WHERE seq < ?", (through,))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('pruned_through', ?)", (str(through),))
    conn.commit()
    conn.close()


def _device_view(hub, device_id: str) -> dict:
    status, body = hub.get_json("/v1/devices", token=ADMIN)
    assert status == 200
    return {d["device_id"]: d for d in body["devices"]}[device_id]


def test_cutting_the_newest_records_is_an_anomaly_at_the_hub(tmp_path, scenario, hub_dsn):
    with live_hub(tmp_path, hub_dsn) as hub:
        config, log, identity = device(tmp_path, "kiosk-01", hub.devices, checkpoint_every=5)
        record_many(log, scenario, 10)
        _upload(hub, log, identity, at=NOW + 20)
        record_many(log, scenario, 5, start=NOW + 30)  # 11..15, not uploaded yet
        sent = _heartbeat(hub, config, log, identity, at=NOW + 40)
        assert sent["audit_head"]["seq"] == 15
        [held] = hub.store.integrity("kiosk-01")
        assert not held["complete"] and held["outstanding"] == [[11, 15]]
        log.close()

        _cut_tail(config.audit_db, keep=12)  # 13..15 never reach the hub
        with open_audit_log(config) as cut:
            _upload(hub, cut, identity, at=NOW + 60)  # 11..12, head 12 signed later
        [held] = hub.store.integrity("kiosk-01")
        assert not held["complete"]
        assert [(a["kind"], a["seq"]) for a in held["anomalies"]] == [("head_regressed", 13)]
        seen = _device_view(hub, "kiosk-01")
        assert seen["failing"] and seen["audit_anomalies"] == 1
        _, metrics = hub.request("GET", "/metrics")
        # The auditors' screens say the same (appliance_hub.audit_view_query).
        [screen] = audit_view_query.logs(hub.store, "kiosk-01")
        assert (
            screen["gaps"]
            and not audit_view_query.verify_log(hub.store, "kiosk-01", screen["log_id"])["complete"]
        )
        assert b'appliance_hub_audit_anomalies{device_id="kiosk-01"} 1' in metrics


def test_cutting_acknowledged_records_is_seen_by_audit_verify(tmp_path, scenario, capsys):
    with live_hub(tmp_path) as hub:
        config, log, identity = device(tmp_path, "kiosk-02", hub.devices, checkpoint_every=3)
        record_many(log, scenario, 10)
        _upload(hub, log, identity, at=NOW + 20)
        log.close()
    _cut_tail(config.audit_db, keep=7)
    with open_audit_log(config) as cut:
        report = cut.verify()
    assert not report.ok and report.first_bad_seq == 8
    assert "acknowledged seq 10" in str(report)
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[device]\nid = "kiosk-02"\n[paths]\n'
        f'state_dir = "{config.paths.state_dir}"\n'
        f'secrets_dir = "{config.paths.secrets_dir}"\n'
        f'[upload]\nhub_key = "{config.upload.hub_key}"\n'
    )
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    assert "TAMPERED" in capsys.readouterr().out


def test_deleting_the_log_with_records_outstanding_is_an_anomaly(tmp_path, scenario, hub_dsn):
    with live_hub(tmp_path, hub_dsn) as hub:
        config, log, identity = device(tmp_path, "kiosk-03", hub.devices)
        record_many(log, scenario, 10)
        _upload(hub, log, identity, at=NOW + 20, batch_size=6, batches=1)  # 1..6 arrive
        _heartbeat(hub, config, log, identity, at=NOW + 40)  # the head: 10
        old_log = log.log_id
        log.close()
        for suffix in ("", "-wal", "-shm"):
            config.audit_db.with_name(config.audit_db.name + suffix).unlink(missing_ok=True)

        _, fresh, _ = device(tmp_path, "kiosk-03", hub.devices)
        record_many(fresh, scenario, 3, start=NOW + 100)
        _upload(hub, fresh, identity, at=NOW + 110)
        logs = {entry["log_id"]: entry for entry in hub.store.integrity("kiosk-03")}
        assert logs[fresh.log_id]["complete"] and not logs[fresh.log_id]["anomalies"]
        old = logs[old_log]
        assert not old["complete"] and old["outstanding"] == [[7, 10]]
        assert [(a["kind"], a["seq"]) for a in old["anomalies"]] == [("new_log", 7)]
        assert _device_view(hub, "kiosk-03")["failing"]

        # A re-flashed device whose records had all arrived is no anomaly.
        config4, log4, identity4 = device(tmp_path, "kiosk-04", hub.devices)
        record_many(log4, scenario, 4)
        _upload(hub, log4, identity4, at=NOW + 20)
        _heartbeat(hub, config4, log4, identity4, at=NOW + 40)
        log4.close()
        config4.audit_db.unlink()
        _, again, _ = device(tmp_path, "kiosk-04", hub.devices)
        record_many(again, scenario, 2, start=NOW + 100)
        _upload(hub, again, identity4, at=NOW + 110)
        assert all(not e["anomalies"] and e["complete"] for e in hub.store.integrity("kiosk-04"))

        # Never uploaded, only heartbeats: the log the hub heard of is listed all the same.
        config8, log8, identity8 = device(tmp_path, "kiosk-08", hub.devices)
        record_many(log8, scenario, 3)
        _heartbeat(hub, config8, log8, identity8, at=NOW + 40)
        gone = log8.log_id
        log8.close()
        config8.audit_db.unlink()
        _, fresh8, _ = device(tmp_path, "kiosk-08", hub.devices)
        _heartbeat(hub, config8, fresh8, identity8, at=NOW + 50)  # an empty new log
        [lost] = hub.store.integrity("kiosk-08")
        assert lost["log_id"] == gone and lost["records"] == 0 and not lost["complete"]
        assert lost["outstanding"] == [[1, 3]]
        assert [(a["kind"], a["seq"]) for a in lost["anomalies"]] == [("new_log", 1)]


@pytest.mark.parametrize("uploaded", [0, 3])
def test_deleting_the_oldest_unacknowledged_records_is_not_pruning(tmp_path, scenario, uploaded):
    with live_hub(tmp_path) as hub:
        config, log, identity = device(tmp_path, "kiosk-05", hub.devices, checkpoint_every=5)
        record_many(log, scenario, 12)
        if uploaded:
            _upload(hub, log, identity, at=NOW + 20, batch_size=uploaded, batches=1)
        log.close()
    _cut_front(config.audit_db, through=5)
    with open_audit_log(config) as cut:
        report = cut.verify()
    assert not report.ok and report.first_bad_seq == 1, str(report)
    assert ("only up to seq 3" if uploaded else "none of them") in str(report)


def test_pruning_after_a_signed_acknowledgement_still_verifies(tmp_path, scenario):
    with live_hub(tmp_path) as hub:
        _, log, identity = device(
            tmp_path, "kiosk-06", hub.devices, checkpoint_every=5, retention_days=1
        )
        record_many(log, scenario, 12, step=3600)
        _upload(hub, log, identity, at=NOW + 13 * 3600, batch_size=8, batches=1)
        assert log.prune(NOW + 40 * 3600) == 8  # only what the hub signed for
        assert log.status()["first_seq"] == 9 and log.verify().ok


def test_record_times_going_backwards_are_an_anomaly_at_the_hub(tmp_path, scenario, hub_dsn):
    with live_hub(tmp_path, hub_dsn) as hub:
        _, log, identity = device(tmp_path, "kiosk-07", hub.devices)
        record_many(log, scenario, 4, start=NOW + 1000)
        _upload(hub, log, identity, at=NOW + 1010)
        record_many(log, scenario, 2, start=NOW)  # back-dated below seq 4
        _upload(hub, log, identity, at=NOW + 1020)
        [held] = hub.store.integrity("kiosk-07")
        assert [(a["kind"], a["seq"]) for a in held["anomalies"]] == [("time_backwards", 5)]
        assert not held["complete"] and hub.store.count() == 6  # kept: it is evidence
