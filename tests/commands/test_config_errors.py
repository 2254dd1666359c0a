"""A configuration that cannot work stops its unit instead of looping (issue 24).

Without a hub or trust-data URL, upload, heartbeat and sync exit 64, the units do not
restart on 64 (``RestartPreventExitStatus=64``), and the reason shows on /status (the trust
card's last error, the audit card's fault) and in the heartbeat (``last_sync_result``
``config``), instead of a failure in the journal every two minutes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from web_support import make_app, make_kit

from appliance.audit.log import open_audit_log
from appliance.cli import main
from appliance.config import config_from_mapping, not_configured
from appliance.kiosk.status import device_providers
from appliance.trust.sync_state import read_sync_state, write_sync_state
from appliance_sync.heartbeat import HeartbeatSources, collect

REPO = Path(__file__).resolve().parents[2]


def _config_file(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    path = tmp_path / "appliance.toml"
    path.write_text(
        f'[device]\nid = "kiosk-cfg-1"\n[paths]\nstate_dir = "{tmp_path / "state"}"\n'
        f'secrets_dir = "{tmp_path / "secrets"}"\n{extra}'
    )
    return path


@pytest.mark.parametrize("command", [["sync", "--once"], ["upload", "--once"], ["heartbeat"]])
def test_no_url_exits_64(tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]):
    config = _config_file(tmp_path)
    assert main([command[0], "--config", str(config), *command[1:]]) == 64
    assert "url" in capsys.readouterr().err


def test_sync_without_a_pinned_root_exits_64(tmp_path: Path):
    config = _config_file(tmp_path, '[sync]\nurl = "http://127.0.0.1:9/"\n')
    assert main(["sync", "--config", str(config), "--once"]) == 64
    assert "[sync] root" in read_sync_state(tmp_path / "state")["last_error"]


def _sources(state_dir: Path) -> HeartbeatSources:
    return HeartbeatSources(
        device_id="kiosk-cfg-1",
        state_dir=state_dir,
        trust_dir=state_dir / "trust",
        root=None,
        audit_backlog=lambda: 0,
        camera=lambda: "ok",
    )


def test_sync_config_error_recorded_for_status_and_heartbeat(tmp_path: Path):
    config = _config_file(tmp_path)
    assert main(["sync", "--config", str(config), "--once"]) == 64
    state_dir = tmp_path / "state"
    state = read_sync_state(state_dir)
    assert state["last_error"].startswith("no trust-data server: set [sync] url")
    assert state["config_error_at"] == state["last_attempt"] == state["last_error_at"]
    fields, _ = collect(_sources(state_dir))
    assert fields["last_sync_result"] == "config"
    # A later attempt that fails otherwise (the URL set, the server down) is an error again.
    state.update(
        last_attempt="2030-01-01T00:00:00Z",
        last_error="download failed",
        last_error_at="2030-01-01T00:00:00Z",
    )
    write_sync_state(state_dir, state)
    assert collect(_sources(state_dir))[0]["last_sync_result"] == "error"


def test_status_page_shows_both_missing_urls(tmp_path: Path):
    config = config_from_mapping(
        {
            "device": {"id": "kiosk-cfg-1"},
            "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(tmp_path / "s")},
        }
    )
    assert set(not_configured(config)) == {"sync", "upload"}
    assert main(["sync", "--config", str(_config_file(tmp_path)), "--once"]) == 64
    audit = open_audit_log(config)
    try:
        providers = device_providers(config, audit=audit)
        assert providers["audit"]()["upload_error"] == not_configured(config)["upload"]
        assert providers["trust"]()["last_error"] == not_configured(config)["sync"]
        (tmp_path / "kit").mkdir()
        kit = make_kit(tmp_path / "kit", providers=providers)
        page = make_app(kit).test_client().get("/status").get_data(as_text=True)
    finally:
        audit.close()
    assert "no hub to upload to: set [upload] url" in page
    assert "no trust-data server: set [sync] url" in page


def test_configured_device_has_no_upload_error(tmp_path: Path):
    config = config_from_mapping(
        {
            "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(tmp_path / "s")},
            "sync": {"url": "https://trust.example/", "root": str(tmp_path / "root.json")},
            "upload": {"url": "https://hub.example/"},
        }
    )
    assert not_configured(config) == {}
    audit = open_audit_log(config)
    try:
        assert device_providers(config, audit=audit)["audit"]()["upload_error"] is None
    finally:
        audit.close()


@pytest.mark.parametrize("name", ["sync", "upload", "heartbeat"])
def test_units_do_not_restart_on_a_configuration_error(name: str):
    text = (REPO / "systemd" / f"appliance-{name}.service").read_text()
    assert re.search(r"^Restart=on-failure$", text, re.MULTILINE)
    assert re.search(r"^RestartPreventExitStatus=64$", text, re.MULTILINE)
