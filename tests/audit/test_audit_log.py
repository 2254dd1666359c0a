"""The device audit log: records, chain, checkpoints, tampering, export, retention, privacy."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import stat

import pytest
from audit_support import (
    HOLDER_NAME,
    LICENCE_NO,
    NOW,
    Scenario,
    hub_ack,
    make_config,
    record_many,
)

from appliance.audit.chain import record_hash
from appliance.audit.log import from_config, open_audit_log
from appliance.cli import main
from appliance.core.errors import AuditError, AuditFull, AuditUnavailable
from appliance.core.verifier import Checkpoint
from appliance.kiosk.verification import VerificationService
from appliance.trust.clock import FixedClock


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path, checkpoint_every=10, checkpoint_interval_s=3600)


@pytest.fixture
def audit(config):
    log = open_audit_log(config)
    yield log
    log.close()


def test_record_fields_durability_settings_and_secrets(audit, config, scenario):
    audit.record(scenario.verdict(), now=NOW, source="camera", trust=scenario.trust)
    [row] = _rows(config)
    assert row["seq"] == 1 and row["verdict"] == "PASS" and row["reason"] == "OK"
    assert row["time"] == "2027-01-15T08:00:00.000000Z"
    assert row["device_id"] == "kiosk-01" and row["source"] == "camera"
    assert row["profile"] == "LC1" and row["iss"] == "th.go.dlt" and row["licence_type"] == "car"
    assert row["trust_version"] == 42 and row["live"] == 0 and row["software_version"]
    assert len(row["licence_hash"]) == 64 and len(row["cti_hash"]) == 64
    assert len(audit.log_id) == 32
    status = audit.status()
    assert status["journal_mode"] == "wal" and status["synchronous"] == "FULL"
    for name in ("audit_hmac_key", "device_ed25519.pem"):
        mode = (config.paths.secrets_dir / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    assert (config.paths.state_dir / "device_ed25519.pub").read_text().startswith("-----BEGIN")


def test_same_licence_same_keyed_hash_across_devices_with_the_fleet_key(tmp_path, scenario):
    a = make_config(tmp_path / "a", device_id="a")
    b = make_config(tmp_path / "b", device_id="b")
    for c in (a, b):
        c.paths.secrets_dir.mkdir(parents=True)
        (c.paths.secrets_dir / "audit_hmac_key").write_text("11" * 32)
    verdict = scenario.verdict(scenario.text())
    hashes = []
    for c in (a, b):
        with open_audit_log(c) as log:
            hashes.append(log.fields(verdict, "web", scenario.trust)["licence_hash"])
    assert hashes[0] == hashes[1]


def test_checkpoints_every_n_records_and_every_t_seconds(tmp_path, scenario):
    config = make_config(tmp_path, checkpoint_every=10, checkpoint_interval_s=60)
    with open_audit_log(config) as log:
        record_many(log, scenario, 25, step=0.1)  # 25 records in 2.5 s: by count
        cps = [r[0] for r in _db(config).execute("SELECT seq FROM checkpoints ORDER BY seq")]
        assert cps[-2:] == [11, 21] or cps[-2:] == [10, 20]
        record_many(log, scenario, 1, start=NOW + 3600)  # an hour later: by time
        assert _db(config).execute("SELECT max(seq) FROM checkpoints").fetchone()[0] == 26
        assert log.verify().ok


def test_verify_ok_and_cli_status_verify_export(audit, config, scenario, tmp_path, capsys):
    record_many(audit, scenario, 30)
    cfg = _config_file(tmp_path, config)
    assert main(["audit", "verify", "--config", str(cfg)]) == 0
    assert "OK: 30 records" in capsys.readouterr().out
    assert main(["audit", "status", "--config", str(cfg), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["records"] == 30 and status["pending_upload"] == 30
    assert (
        main(
            [
                "audit",
                "export",
                "--config",
                str(cfg),
                "--format",
                "jsonl",
                "--since",
                "2027-01-15T08:00:20Z",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    first = json.loads(lines[0])
    assert first["seq"] == 21 and {"time", "verdict", "reason"} <= set(first)
    assert main(["audit", "export", "--config", str(cfg), "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("seq,time,") and len(csv_lines) == 31
    assert main(["audit", "export", "--config", str(cfg), "--since", "yesterday"]) == 64
    assert main(["audit", "export", "--config", str(cfg), "--format", "xml"]) == 64


def test_cli_without_a_log_and_device_keygen(tmp_path, capsys):
    config = make_config(tmp_path)
    cfg = _config_file(tmp_path, config)
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    assert "no audit log" in capsys.readouterr().err
    assert main(["device", "keygen", "--config", str(cfg)]) == 0
    first = capsys.readouterr()
    assert first.out.startswith("-----BEGIN PUBLIC KEY-----") and "created" in first.err
    assert main(["device", "keygen", "--config", str(cfg)]) == 0
    again = capsys.readouterr()
    assert again.out == first.out and again.err == ""  # idempotent for Ansible


@pytest.mark.parametrize(
    "tamper, bad_seq, word",
    [
        ("edit", 7, "edited"),
        ("delete", 7, "missing"),
        ("delete_tail", 20, "missing"),
        ("reorder", 7, "seq 7"),
        ("insert", 9, "seq 9"),  # the forged 8 chains on 7; the shifted old 8 breaks
        ("rewrite_chain", 7, "checkpoint"),
        ("forge_checkpoint", 10, "signature"),
    ],
)
def test_tampering_is_detected_and_first_bad_record_named(
    audit, config, scenario, tmp_path, capsys, tamper, bad_seq, word
):
    record_many(audit, scenario, 25)  # checkpoints at seq 1?, 10/11, 20/21
    audit.close()
    db = _db(config)
    cps = [r[0] for r in db.execute("SELECT seq FROM checkpoints")]
    if tamper == "edit":
        db.execute("UPDATE records SET verdict = 'FAIL' WHERE seq = 7")
    elif tamper == "delete":
        db.execute("DELETE FROM records WHERE seq = 7")
    elif tamper == "delete_tail":
        db.execute("DELETE FROM records WHERE seq >= 20")
        db.execute("UPDATE meta SET value = '19' WHERE key = 'head_seq'")
        bad_seq = 20
    elif tamper == "reorder":
        rows = {r["seq"]: r for r in _rows(config) if r["seq"] in (7, 8)}
        for seq, other in ((7, 8), (8, 7)):
            row = dict(rows[other], seq=seq)
            row["hash"] = record_hash(row)  # even with a consistent hash of its own
            _replace(db, row)
    elif tamper == "insert":
        db.execute("UPDATE records SET seq = seq + 1000 WHERE seq >= 8")
        db.execute("UPDATE records SET seq = seq - 999 WHERE seq >= 1000")
        forged = dict(
            next(r for r in _rows(config) if r["seq"] == 7),
            seq=8,
            verdict="PASS",
            prev_hash=next(r["hash"] for r in _rows(config) if r["seq"] == 7),
        )
        forged["hash"] = record_hash(forged)
        _replace(db, forged)
    elif tamper == "rewrite_chain":
        prev = None
        for row in _rows(config):
            if row["seq"] == 7:
                row["reason"] = "REVOKED"
            if prev is not None:
                row["prev_hash"] = prev
            if row["seq"] >= 7:
                row["hash"] = record_hash(row)
                _replace(db, row)
            prev = row["hash"]
        db.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (prev,))
        bad_seq = min(s for s in cps if s >= 7)
    elif tamper == "forge_checkpoint":
        bad_seq = min(s for s in cps if s >= 10)
        db.execute("UPDATE checkpoints SET signature = ? WHERE seq = ?", ("A" * 86 + "==", bad_seq))
    db.close()
    with from_config(config, create_key=False) as log:
        report = log.verify()
    assert not report.ok and report.first_bad_seq == bad_seq, report
    assert word in report.problem
    cfg = _config_file(tmp_path, config)
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    assert f"seq {bad_seq}" in capsys.readouterr().out


def test_retention_prunes_only_uploaded_and_keeps_the_chain_verifiable(tmp_path, scenario):
    config = make_config(tmp_path, retention_days=1, checkpoint_every=7)
    with open_audit_log(config) as log:
        record_many(log, scenario, 40, step=3600)  # 40 hours of records
        assert log.prune(NOW + 40 * 3600) == 0  # nothing uploaded: nothing pruned
        log.mark_uploaded(1, 30, NOW + 40 * 3600)
        assert log.prune(NOW + 40 * 3600) == 0  # no acknowledgement signed by the hub
        log.mark_uploaded(1, 30, NOW + 40 * 3600, ack=hub_ack(log, 30))
        pruned = log.prune(NOW + 40 * 3600)
        status = log.status()
        assert pruned == 16 and status["first_seq"] == 17  # older than 24 h and uploaded
        assert status["pending_upload"] == 10
        assert log.verify().ok
        record_many(log, scenario, 5, start=NOW + 41 * 3600)
        assert log.verify().ok
    db = _db(config)
    db.execute("DELETE FROM checkpoints WHERE seq = 16")  # the signed anchor
    db.close()
    with from_config(config, create_key=False) as log:
        report = log.verify()
    assert not report.ok and report.first_bad_seq == 17


def test_size_cap_prunes_uploaded_then_refuses_without_dropping(tmp_path, scenario):
    config = make_config(tmp_path)
    log = from_config(config)
    log.max_db_bytes = 96 * 1024
    with log:
        seqs = []
        with pytest.raises(AuditFull, match="not yet uploaded"):
            for _ in range(10_000):
                seqs += record_many(log, scenario, 1)
        n = len(seqs)
        assert n > 50 and log.status()["records"] == n and log.verify().ok
        log.mark_uploaded(1, n, NOW, ack=hub_ack(log, n))
        more = record_many(log, scenario, 20)  # room made by pruning uploaded records early
        assert more[0] == n + 1
        assert log.status()["pending_upload"] == 20 and log.verify().ok


def test_service_refuses_verdict_without_record_when_required(tmp_path, scenario, caplog):
    class Broken:
        def record(self, *a, **k):
            raise AuditError("disk full")

    service = VerificationService(
        lambda: scenario.trust, FixedClock(NOW), Checkpoint(), audit=Broken(), audit_required=True
    )
    with pytest.raises(AuditUnavailable):
        service.verify(scenario.text(), source="camera")
    service = VerificationService(
        lambda: scenario.trust, FixedClock(NOW), Checkpoint(), audit=Broken(), audit_required=False
    )
    assert service.verify(scenario.text(), source="camera") is not None
    assert service.audit_fault == "disk full"


def test_privacy_no_name_number_or_qr_text_in_db_or_logs(tmp_path, scenario, caplog):
    caplog.set_level(logging.DEBUG)
    config = make_config(tmp_path, checkpoint_every=3)
    texts = [scenario.text(number=f"{LICENCE_NO}{i}", name=f"{HOLDER_NAME} {i}") for i in range(5)]
    with open_audit_log(config) as log:
        for i, text in enumerate(texts):
            log.record(scenario.verdict(text), now=NOW + i, source="web", trust=scenario.trust)
        out = io.StringIO()
        log.export(out, fmt="csv")
        log.export(out, fmt="jsonl")
    blobs = [p.read_bytes() for p in config.paths.state_dir.iterdir() if p.is_file()]
    blobs += [out.getvalue().encode(), caplog.text.encode()]
    needles = [LICENCE_NO, HOLDER_NAME, "Privatename", *texts, *(t[4:40] for t in texts)]
    for blob in blobs:
        for needle in needles:
            assert needle.encode() not in blob


def test_read_only_database_raises_audit_error_without_corruption(tmp_path, scenario):
    config = make_config(tmp_path)
    with open_audit_log(config) as log:
        record_many(log, scenario, 5)
    db_uri = f"file:{config.audit_db}?mode=ro"
    log = from_config(config)
    log._connect = lambda: sqlite3.connect(db_uri, uri=True, isolation_level=None)
    with pytest.raises(AuditError, match="not written"):
        record_many(log, scenario, 1)
    with open_audit_log(config) as log:
        assert log.verify().ok and log.status()["records"] == 5
        assert record_many(log, scenario, 1) == [6]


# helpers


def _db(config) -> sqlite3.Connection:
    return sqlite3.connect(config.audit_db, isolation_level=None)


def _rows(config) -> list[dict]:
    conn = _db(config)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM records ORDER BY seq")]
    conn.close()
    return rows


def _replace(db: sqlite3.Connection, row: dict) -> None:
    names = list(row)
    db.execute(
        f"INSERT OR REPLACE INTO records ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})",
        [row[n] for n in names],
    )


def _config_file(tmp_path, config):
    path = tmp_path / "appliance.toml"
    path.write_text(
        f'[device]\nid = "{config.device.id}"\n'
        f'[paths]\nstate_dir = "{config.paths.state_dir}"\n'
        f'secrets_dir = "{config.paths.secrets_dir}"\n'
    )
    return path
