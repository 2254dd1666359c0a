"""Remote policy (issue 16, spec LC1 s.4): parsing, version order, the verifier's place for
it, the kiosk's status, the trust-source commands and the hub's policy file."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import urllib3
from support import NOW, World
from werkzeug.serving import make_server

from appliance import __version__
from appliance.cli import main
from appliance.core.errors import TrustDataError
from appliance.core.reasons import Outcome, Reason
from appliance.core.remote_policy import is_outdated, out_of_service
from appliance.core.snapshot import Policy
from appliance.core.verifier import Checkpoint, verify
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock
from appliance.trust.policy import parse_policy
from appliance_hub.policy import DisabledDevices
from appliance_hub.wsgi import app_from_environment

DEVICE = Checkpoint(device_id="kiosk-01", software_version="1.4.2")


@pytest.mark.parametrize(
    ("own", "minimum", "outdated"),
    [
        ("1.4.2", "1.4.2", False),
        ("1.4.2", "1.4.10", True),  # numeric, not text, order: "1.4.10" > "1.4.2"
        ("1.4.10", "1.4.9", False),
        ("1.4", "1.4.0", False),  # equal under PEP 440
        ("1.5.0rc1", "1.5.0", True),  # a pre-release is below its release
        ("1.5.0.post1", "1.5.0", False),
        ("1.5.0.dev3", "1.5.0rc1", True),
        ("2!0.1", "9.9", False),  # epoch
        ("not-a-version", "0.0.1", True),  # an unreadable own version fails closed
    ],
)
def test_software_versions_compare_by_pep_440(own: str, minimum: str, outdated: bool) -> None:
    assert is_outdated(own, minimum) is outdated


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"min_software_version": "latest"}, "policy.min_software_version"),
        ({"min_software_version": ""}, "policy.min_software_version"),
        ({"min_software_version": ["1.0"]}, "policy.min_software_version"),
        ({"min_software_version": "1." + "0" * 100}, "policy.min_software_version"),
        ({"disabled_devices": "kiosk-01"}, "policy.disabled_devices"),
        ({"disabled_devices": {"kiosk-01": True}}, "policy.disabled_devices"),
        ({"disabled_devices": [None]}, r"policy.disabled_devices\[0\]"),
        ({"disabled_devices": ["ok", ""]}, r"policy.disabled_devices\[1\]"),
        ({"disabled_devices": ["-x"]}, r"policy.disabled_devices\[0\]"),
        ({"disabled_devices": ["a" * 65]}, r"policy.disabled_devices\[0\]"),
    ],
)
def test_a_bad_value_refuses_the_trust_data_naming_the_field(policy, field) -> None:
    with pytest.raises(TrustDataError, match=field):
        parse_policy(policy)


def test_good_values_are_read_and_absent_ones_stop_nothing() -> None:
    policy = parse_policy(
        {"min_software_version": "1.4.2", "disabled_devices": ["kiosk-01", "kiosk-02"]}
    )
    assert policy.min_software_version == "1.4.2"
    assert policy.disabled_devices == {"kiosk-01", "kiosk-02"}
    assert out_of_service(parse_policy({}), "kiosk-01", "0.0.1") is None


def test_a_disabled_device_is_named_before_outdated_software() -> None:
    policy = Policy(min_software_version="9.0", disabled_devices=frozenset({"kiosk-01"}))
    assert out_of_service(policy, "kiosk-01", "1.0") is Reason.DEVICE_DISABLED
    assert out_of_service(policy, "kiosk-02", "1.0") is Reason.SOFTWARE_OUTDATED
    assert out_of_service(policy, None, None) is None  # no device identity: authoring


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_the_verifier_applies_policy_only_with_a_device_identity(world: World) -> None:
    world.editor.doc["policy"]["disabled_devices"] = ["kiosk-01"]
    try:
        trust = world.trust()
        good = world.issue()
        assert (
            verify(good, trust, NOW, checkpoint=Checkpoint(check_staleness=False)).reason
            is Reason.OK
        )
        for text in (good, "garbage", ""):  # before step 1: even an undecodable input
            v = verify(text, trust, NOW, checkpoint=DEVICE)
            assert (v.outcome, v.reason) == (Outcome.UNVERIFIABLE, Reason.DEVICE_DISABLED)
    finally:
        world.editor.doc["policy"].pop("disabled_devices")


def test_the_kiosk_status_shows_the_out_of_service_reason(world: World) -> None:
    world.editor.doc["policy"]["min_software_version"] = "99.0"
    try:
        trust = replace(world.trust(), published_at=NOW)  # as sync installs it: fresh
    finally:
        world.editor.doc["policy"].pop("min_software_version")
    current = {"trust": trust}
    service = VerificationService(lambda: current["trust"], FixedClock(NOW), DEVICE)
    port = LocalKioskPort(service, EventBus(), trust=service.trust)
    status = port.status()["trust"]
    assert status["out_of_service"] == "SOFTWARE_OUTDATED"
    assert status["min_software_version"] == "99.0"
    event = port.verify_text(world.issue())
    assert (event["outcome"], event["reason"]) == ("UNVERIFIABLE", "SOFTWARE_OUTDATED")
    current["trust"] = replace(world.trust(), published_at=NOW)  # the next sync lifts it
    assert port.status()["trust"]["out_of_service"] is None
    assert port.verify_text(world.issue())["reason"] == "OK"


def _policy(path: Path) -> dict:
    return json.loads(path.read_text())["policy"]


def test_trust_source_set_policy_sets_and_clears_both(tmp_path: Path, world: World) -> None:
    path = tmp_path / "trust.json"
    world.editor.save(path)
    base = ["trust-source", "set-policy", str(path)]
    assert (
        main(
            [
                *base,
                "--min-software-version",
                "1.4.2",
                "--disable-device",
                "kiosk-01",
                "--disable-device",
                "kiosk-02",
            ]
        )
        == 0
    )
    assert _policy(path)["min_software_version"] == "1.4.2"
    assert _policy(path)["disabled_devices"] == ["kiosk-01", "kiosk-02"]
    assert main([*base, "--disable-device", "kiosk-01", "--enable-device", "kiosk-02"]) == 0
    assert _policy(path)["disabled_devices"] == ["kiosk-01"]
    assert main([*base, "--min-software-version", ""]) == 0
    assert "min_software_version" not in _policy(path)
    assert _policy(path)["max_age_hours"] == 72  # other values untouched


@pytest.mark.parametrize(
    "args",
    [
        ["--min-software-version", "newest"],
        ["--disable-device", "kiosk 01"],
        ["--disable-device", "kiosk-01", "--enable-device", "kiosk-01"],
    ],
)
def test_trust_source_set_policy_refuses_what_devices_would(
    tmp_path: Path, world: World, args: list[str]
) -> None:
    path = tmp_path / "trust.json"
    world.editor.save(path)
    before = path.read_bytes()
    assert main(["trust-source", "set-policy", str(path), *args]) == 64
    assert path.read_bytes() == before


def test_the_hub_policy_file_is_reread_and_a_bad_one_keeps_the_last_list(tmp_path: Path):
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"policy": {"disabled_devices": ["kiosk-01"]}}))
    disabled = DisabledDevices(path)
    assert disabled() == {"kiosk-01"}
    path.write_text(json.dumps({"policy": {"disabled_devices": ["kiosk-01", "kiosk-02"]}}))
    os.utime(path, ns=(1, 10**18))  # a new mtime without waiting for the clock to tick
    assert disabled() == {"kiosk-01", "kiosk-02"}
    path.write_text(json.dumps({"policy": {"disabled_devices": "kiosk-01"}}))
    os.utime(path, ns=(1, 2 * 10**18))
    assert disabled() == {"kiosk-01", "kiosk-02"}  # never re-enables the fleet by mistake
    path.unlink()
    assert disabled() == {"kiosk-01", "kiosk-02"}
    with pytest.raises(TrustDataError, match="policy file"):
        DisabledDevices(tmp_path / "missing.json")  # the hub does not start on it


def test_the_hub_under_its_wsgi_settings_answers_403_json(tmp_path: Path) -> None:
    """APPLIANCE_HUB_POLICY wires the file in; the refusal is read over real HTTP."""
    from audit_support import Scenario, device, record_many

    from appliance.audit.chain import canonical

    policy = tmp_path / "trust.json"
    policy.write_text(json.dumps({"policy": {"disabled_devices": ["kiosk-lost"]}}))
    app = app_from_environment(
        {
            "APPLIANCE_HUB_DB": str(tmp_path / "hub.db"),
            "APPLIANCE_HUB_DEVICES": str(tmp_path / "devices"),
            "APPLIANCE_HUB_POLICY": str(policy),
        }
    )
    _, log, identity = device(tmp_path, "kiosk-lost", tmp_path / "devices")
    record_many(log, Scenario(), 1)
    records, cps = log.pending(10)
    payload = canonical(
        {
            "type": "appliance-audit-batch-v1",
            "device_id": "kiosk-lost",
            "log_id": log.log_id,
            "first_seq": 1,
            "last_seq": 1,
            "records": records,
            "checkpoints": cps,
            "sent_at": 1.5,
        }
    )
    from appliance.audit.signed_body import sign_body

    signed = sign_body(identity, "kiosk-lost", payload)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        resp = urllib3.PoolManager(retries=False, timeout=30.0).request(
            "POST",
            f"http://127.0.0.1:{server.port}/v1/batches",
            body=signed.body,
            headers=dict(signed.headers),
        )
    finally:
        server.shutdown()
        thread.join()
    assert resp.status == 403
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "disabled" in json.loads(resp.data)["error"]


def test_this_software_reports_a_pep_440_version() -> None:
    assert not is_outdated(__version__, __version__)
