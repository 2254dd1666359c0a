"""Device heartbeats (issue 16) end to end: a synced device, its audit log and its kiosk
socket, signed with its enrolled key, over real HTTP on loopback to the hub, read back
from ``GET /v1/devices``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from audit_support import Scenario, hub_key_file, record_many
from hub_fleet_support import ADMIN, live_hub
from support import NOW, World
from sync_support import Authority, RepoServer, device

from appliance import __version__
from appliance.audit.identity import ensure_identity
from appliance.audit.log import open_audit_log
from appliance.cli import main
from appliance.config import load_config
from appliance.core.verifier import Checkpoint
from appliance.kiosk.bridge import BridgeServer
from appliance.kiosk.camera_probe import camera_state
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock
from appliance_hub.server import DeviceRegistry
from appliance_sync.errors import ClockNotTrusted
from appliance_sync.heartbeat import Heartbeat, read_state, sources_from_config
from appliance_sync.upload import HubClient


@pytest.fixture
def authority(tmp_path: Path):
    a = Authority.create(tmp_path / "authority")
    a.version = a.publish()  # type: ignore[attr-defined]
    server = RepoServer(a.repo)
    yield a, server.url
    server.stop()


@pytest.fixture
def hub(tmp_path):
    with live_hub(tmp_path / "hub") as live:
        live.clock.now = time.time()  # the device dates heartbeats by its own system clock
        yield live


def _device(tmp_path: Path, a: Authority, url: str, hub, device_id: str) -> Path:
    """A synced device (trust data installed), its key enrolled at the hub; its config."""
    state = tmp_path / device_id
    device(state, url, a.root_file).sync_once()
    config = tmp_path / f"{device_id}.toml"
    config.write_text(
        f'[device]\nid = "{device_id}"\n'
        f'[paths]\nstate_dir = "{state}"\nsecrets_dir = "{tmp_path / device_id / "secrets"}"\n'
        f'[sync]\nroot = "{a.root_file}"\n'
        f'[upload]\nurl = "{hub.url}"\ntimeout_s = 5\n'
        f'hub_key = "{hub_key_file(tmp_path)}"\n'
        f'[web]\nkiosk_socket = "{tmp_path / device_id / "kiosk.sock"}"\n'
    )
    identity, _ = ensure_identity(load_config(config))
    DeviceRegistry(hub.devices).enrol(device_id, identity.public.pem)
    return config


def _listed(hub) -> dict[str, dict]:
    status, body = hub.get_json("/v1/devices", token=ADMIN)
    assert status == 200
    return {d["device_id"]: d for d in body["devices"]}


def test_appliance_heartbeat_reaches_the_fleet_view(tmp_path, authority, hub, capsys):
    a, url = authority
    config = _device(tmp_path, a, url, hub, "kiosk-01")
    with open_audit_log(load_config(config)) as log:
        record_many(log, Scenario(), 4, start=time.time() - 60)

    assert main(["heartbeat", "--config", str(config)]) == 0
    assert "heartbeat stored" in capsys.readouterr().out
    seen = _listed(hub)["kiosk-01"]
    assert seen["trust_version"] == a.version
    assert seen["software_version"] == __version__
    assert seen["audit_backlog"] == 4
    assert seen["last_sync_result"] == "ok"
    assert seen["clock_trusted"] is True
    assert seen["camera"] == "kiosk-down", "no kiosk answers on its socket"
    assert seen["failing"] is True and seen["stale"] is False
    assert seen["out_of_service"] is None
    assert seen["disk_free_bytes"] > 0 and seen["uptime_s"] > 0
    assert read_state(tmp_path / "kiosk-01")["last_error"] is None


def test_a_device_stopped_by_policy_says_so(tmp_path, authority, hub):
    a, url = authority
    a.editor.set_policy(disabled_devices=["kiosk-lost"])
    a.publish()
    lost = _device(tmp_path, a, url, hub, "kiosk-lost")
    other = _device(tmp_path, a, url, hub, "kiosk-02")
    assert main(["heartbeat", "--config", str(lost)]) == 0
    assert main(["heartbeat", "--config", str(other)]) == 0
    listed = _listed(hub)
    assert listed["kiosk-lost"]["out_of_service"] == "DEVICE_DISABLED"
    assert listed["kiosk-02"]["out_of_service"] is None


def test_every_upload_ends_with_a_heartbeat(tmp_path, authority, hub, capsys):
    a, url = authority
    config = _device(tmp_path, a, url, hub, "kiosk-03")
    with open_audit_log(load_config(config)) as log:
        record_many(log, Scenario(), 7, start=time.time() - 60)
    assert main(["upload", "--config", str(config), "--once"]) == 0
    assert "uploaded 7 records" in capsys.readouterr().out
    seen = _listed(hub)["kiosk-03"]
    assert seen["audit_backlog"] == 0, "the heartbeat follows the upload"
    assert hub.store.count() == 7


def test_a_recent_heartbeat_makes_the_timer_run_a_no_op(tmp_path, authority, hub, capsys):
    a, url = authority
    config = _device(tmp_path, a, url, hub, "kiosk-04")
    assert main(["heartbeat", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["heartbeat", "--config", str(config), "--unless-sent-within", "10"]) == 0
    assert "not needed" in capsys.readouterr().out
    history = hub.get_json("/v1/devices?device_id=kiosk-04", token=ADMIN)[1]
    assert len(history["devices"][0]["history"]) == 1


def test_an_untrusted_clock_sends_nothing_and_records_why(tmp_path, authority, hub):
    a, url = authority
    config = load_config(_device(tmp_path, a, url, hub, "kiosk-05"))
    # A clock a year behind the trust data's publication: below the trusted-time floor.
    sources = sources_from_config(
        config, audit_backlog=lambda: 0, camera=lambda: "ok", wall=lambda: time.time() - 365 * 86400
    )
    beat = Heartbeat(
        sources, ensure_identity(config)[0], HubClient(hub.url, timeout_s=5).post_heartbeat
    )
    with pytest.raises(ClockNotTrusted):
        beat.send()
    assert "kiosk-05" not in _listed(hub)
    assert "clock is not trusted" in read_state(config.paths.state_dir)["last_error"]
    assert beat.send_quietly() is False


def _kiosk(path: Path, camera_ok: bool) -> BridgeServer:
    world = World()
    snapshot = world.trust()
    service = VerificationService(
        trust=lambda: snapshot,
        clock=FixedClock(NOW),
        checkpoint=Checkpoint(check_staleness=False),
        audit=None,
        audit_required=False,
    )
    port = LocalKioskPort(
        service,
        EventBus(),
        device={"id": "k", "camera": "picamera2"},
        trust=lambda: snapshot,
        clock=FixedClock(NOW),
        providers={"camera": lambda: {"camera_ok": camera_ok}},
    )
    return BridgeServer(port, path).start()


@pytest.mark.parametrize(("camera_ok", "word"), [(True, "ok"), (False, "failed")])
def test_the_camera_state_is_asked_of_the_running_kiosk(tmp_path, camera_ok, word):
    path = tmp_path / "kiosk.sock"
    assert camera_state(path, "picamera2", timeout_s=2) == "kiosk-down"
    server = _kiosk(path, camera_ok)
    try:
        assert camera_state(path, "picamera2", timeout_s=2) == word
    finally:
        server.close()
    assert camera_state(path, "none") == "none", "no camera fitted: nothing to ask"
