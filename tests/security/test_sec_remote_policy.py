"""Attack replays for remote policy (issue 16, spec LC1 s.4): a lost, stolen or outdated
kiosk is stopped through signed trust data, and the hub stops taking its uploads.

Each test runs the real path: a signed TUF repository served on loopback, the device's
sync client, ``appliance verify --config`` (the kiosk's verification service), and the hub
on a real loopback HTTP server.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import urllib3
from audit_support import Scenario, record_many
from audit_support import device as audit_device
from sync_support import Authority, RepoServer, device
from werkzeug.serving import make_server

from appliance import __version__
from appliance.audit.chain import canonical
from appliance.cli import main
from appliance_hub.server import create_app
from appliance_hub.store import HubStore

LOST = "kiosk-lost-07"


@pytest.fixture
def authority(tmp_path: Path):
    a = Authority.create(tmp_path / "authority")
    server = RepoServer(a.repo)
    yield a, server.url
    server.stop()


def _synced_device(tmp_path: Path, a: Authority, url: str, device_id: str) -> Path:
    """A device configuration whose trust store holds what ``a`` last published."""
    state = tmp_path / device_id
    device(state, url, a.root_file).sync_once()
    config = tmp_path / f"{device_id}.toml"
    config.write_text(
        f'[device]\nid = "{device_id}"\n'
        f'[paths]\nstate_dir = "{state}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
    )
    # Enrolment makes the device key and (for a test device) the audit key; verify never does.
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    return config


def _verify(capsys, *args: str) -> tuple[int, list[dict]]:
    capsys.readouterr()
    status = main(["verify", "--json", *args])
    return status, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_lost_device_disabled_centrally_verifies_nothing(tmp_path, authority, capsys):
    """Before: the policy key was refused at publication, so a lost kiosk kept giving PASS."""
    a, url = authority
    a.editor.set_policy(disabled_devices=[LOST])
    a.publish()
    lost = _synced_device(tmp_path, a, url, LOST)
    other = _synced_device(tmp_path, a, url, "kiosk-08")
    good = a.credential()

    status, out = _verify(capsys, "--config", str(lost), good, "not a licence")
    assert status == 2
    assert [(o["verdict"], o["reason"]) for o in out] == [("UNVERIFIABLE", "DEVICE_DISABLED")] * 2
    status, out = _verify(capsys, "--config", str(other), good)
    assert (status, out[0]["reason"]) == (0, "OK")


def test_a_similar_device_id_is_not_disabled(tmp_path, authority, capsys):
    """Exact ids only: disabling ``kiosk-lost-07`` must not stop ``kiosk-lost-0``."""
    a, url = authority
    a.editor.set_policy(disabled_devices=[LOST])
    a.publish()
    config = _synced_device(tmp_path, a, url, LOST[:-1])
    assert _verify(capsys, "--config", str(config), a.credential())[0] == 0


def test_outdated_software_verifies_nothing_until_updated(tmp_path, authority, capsys):
    """Before: no minimum version could be published; a kiosk with a known verifier bug
    kept deciding."""
    a, url = authority
    a.editor.set_policy(min_software_version="999.0")
    a.publish()
    config = _synced_device(tmp_path, a, url, "kiosk-09")
    status, out = _verify(capsys, "--config", str(config), a.credential())
    assert (status, out[0]["verdict"], out[0]["reason"]) == (2, "UNVERIFIABLE", "SOFTWARE_OUTDATED")
    a.editor.set_policy(min_software_version=__version__)  # equal is new enough
    a.publish()
    device(tmp_path / "kiosk-09", url, a.root_file).sync_once()
    assert _verify(capsys, "--config", str(config), a.credential())[0] == 0


def test_authoring_checks_against_a_trust_source_ignore_device_policy(tmp_path, authority, capsys):
    """Spec LC1 s.4: no device identity in an authoring check, so neither rule applies."""
    a, _ = authority
    a.editor.set_policy(disabled_devices=[LOST], min_software_version="999.0")
    source = tmp_path / "trust.json"
    a.editor.save(source)
    status, out = _verify(capsys, "--trust-source", str(source), a.credential())
    assert (status, out[0]["reason"]) == (0, "OK")


@pytest.mark.parametrize(
    "policy",
    [
        {"disabled_devices": LOST},  # a string: "kiosk-lost-0" in "kiosk-lost-07" would hold
        {"disabled_devices": [LOST, 7]},
        {"disabled_devices": ["kiosk 07; rm -rf /"]},
        {"min_software_version": "latest"},
        {"min_software_version": 2},
    ],
)
def test_a_policy_value_devices_could_misread_is_refused_at_publication(
    tmp_path, authority, policy
):
    from appliance.core.errors import TrustDataError

    a, _ = authority
    a.editor.doc["policy"].update(policy)
    with pytest.raises(TrustDataError, match=f"policy.{next(iter(policy))}"):
        a.publish()


# -- the hub ------------------------------------------------------------------------------


class _Hub:
    def __init__(self, tmp_path: Path, disabled: set[str]) -> None:
        self.devices = tmp_path / "devices"
        self.store = HubStore(tmp_path / "hub.db")
        app = create_app(
            self.store,
            self.devices,
            "auditor-" + "t" * 32,
            disabled_devices=lambda: frozenset(disabled),
        )
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.http = urllib3.PoolManager(retries=False, timeout=30.0)
        self.url = f"http://127.0.0.1:{self.server.port}/v1/batches"

    def post(self, identity, batch: dict) -> tuple[int, dict]:
        from appliance.audit.signed_body import sign_body

        signed = sign_body(identity, batch["device_id"], canonical(batch))
        resp = self.http.request("POST", self.url, body=signed.body, headers=dict(signed.headers))
        return resp.status, json.loads(resp.data)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.store.close()


def _batch(tmp_path: Path, hub: _Hub, device_id: str):
    _, log, identity = audit_device(tmp_path / device_id, device_id, hub.devices)
    record_many(log, Scenario(), 2)
    records, cps = log.pending(10)
    return identity, {
        "type": "appliance-audit-batch-v1",
        "device_id": device_id,
        "log_id": log.log_id,
        "first_seq": 1,
        "last_seq": len(records),
        "records": records,
        "checkpoints": cps,
        "sent_at": 1.5,
    }


def test_the_hub_refuses_uploads_from_a_disabled_device(tmp_path):
    """Before: a disabled (lost, stolen) device's signed batches were stored as any other."""
    disabled = {LOST}
    hub = _Hub(tmp_path, disabled)
    try:
        lost, lost_batch = _batch(tmp_path, hub, LOST)
        ok, ok_batch = _batch(tmp_path, hub, "kiosk-08")
        status, answer = hub.post(lost, lost_batch)
        assert status == 403, answer
        assert answer["status"] == "error" and "disabled" in answer["error"]
        assert hub.store.count() == 0
        assert hub.post(ok, ok_batch)[0] == 200
        disabled.clear()  # re-enabled: its records are taken again
        assert hub.post(lost, lost_batch)[0] == 200
        assert hub.store.count() == 4
    finally:
        hub.close()
