"""Parts of the web screens: event shapes, the port, host health, the command (translations:
test_i18n_catalogue.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from web_support import NOW, make_kit

from appliance.cli import main
from appliance.platform.systemd_notify import sd_notify
from appliance.port.events import EventBus, holder_details_allowed, verdict_event
from appliance_web import system


def test_verdict_event_without_holder_has_no_personal_data(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    verdict = kit.service.verify(kit.pass_text(), source="camera")
    event = verdict_event(verdict, show_holder=False, at=NOW)
    assert event["holder"] is None and event["at"] == NOW
    text = json.dumps(event, ensure_ascii=False)
    for personal in ("สมชาย", "Somchai", "1234/2566", "1990-04-01"):
        assert personal not in text
    full = verdict_event(verdict, show_holder=True, at=NOW)
    assert full["holder"]["nm"] == "สมชาย ใจดี" and full["holder"]["photo"]["type"] == "image/jpeg"
    json.dumps(full)  # a Unix socket can carry it


def test_holder_details_rule() -> None:
    assert holder_details_allowed("inspector", False)
    assert holder_details_allowed("kiosk", True)
    assert not holder_details_allowed("kiosk", False)


def test_bus_listener_is_immediate_and_removable() -> None:
    bus, seen = EventBus(), []
    unlisten = bus.listen(seen.append)
    bus.publish({"type": "x"})
    unlisten()
    bus.publish({"type": "y"})
    assert seen == [{"type": "x"}]


def test_port_history_is_bounded_and_events_stream_registers_at_once(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, history_size=2)
    stream = kit.port.events(timeout_s=0.01)
    for _ in range(3):
        kit.port.verify_text(kit.fail_text())
    assert len(kit.port.recent_verdicts(10)) == 2
    assert kit.port.verdict_totals() == {"PASS": 0, "FAIL": 3, "UNVERIFIABLE": 0}
    assert next(stream)["outcome"] == "FAIL"
    stream.close()
    assert kit.bus._listeners == [kit.port._record]


def test_status_provider_failure_is_contained(tmp_path: Path) -> None:
    def broken() -> dict:
        raise OSError("camera gone")

    kit = make_kit(
        tmp_path, providers={"camera": broken, "trust": lambda: {"last_sync_at": NOW - 60}}
    )
    status = kit.port.status()
    assert status["camera"]["error"] == "camera gone"
    assert status["trust"]["last_sync_at"] == NOW - 60 and status["trust"]["version"] == 42


def test_cpu_temperature_and_throttling(tmp_path: Path) -> None:
    thermal = tmp_path / "temp"
    thermal.write_text("48312\n")
    assert system.cpu_temperature_c(thermal) == pytest.approx(48.312)
    assert system.cpu_temperature_c(tmp_path / "absent") is None
    tool = tmp_path / "vcgencmd"
    tool.write_text("#!/bin/sh\necho throttled=0x50005\n")
    tool.chmod(0o755)
    info = system.throttled(str(tool))
    assert info["value"] == 0x50005
    assert "under-voltage now" in info["flags"] and "throttling has occurred" in info["flags"]
    assert system.throttled(str(tmp_path / "none")) is None
    disk = system.disk(tmp_path / "not" / "yet")
    assert disk["path"] == str(tmp_path) and disk["free_bytes"] > 0
    snap = system.snapshot(tmp_path)
    assert set(snap) == {"disk", "cpu_temperature_c", "throttled", "load_1m"}


def test_sd_notify(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert s.recv(64) == b"READY=1"
    assert not sd_notify("READY=1", {})
    assert not sd_notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_web_command_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web"]) == 64
    # a configuration fault is bad usage (ConfigError exits 64)
    assert main(["web", "--config", str(tmp_path / "missing.toml")]) == 64
    assert "cannot read configuration" in capsys.readouterr().err
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    assert main(["web", "--config", str(cfg), "--port", "70000"]) == 64


def test_web_command_builds_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.commands import web as web_command
    from appliance.config import config_from_mapping
    from appliance.kiosk import compose

    kit = make_kit(tmp_path)
    monkeypatch.setattr(compose, "build_service", lambda config, **_: kit.service)
    config = config_from_mapping({"paths": {"state_dir": str(tmp_path / "state")}})
    app = web_command.build_app(config, standalone=True)
    client = app.test_client()
    assert client.get("/kiosk").status_code == 200
    assert app.config["TRUSTED_HOSTS"] == ["127.0.0.1", "localhost"]
    # The port reads the service's own trust (built once, in compose), not a second
    # CurrentTrust over the empty configured directory.
    assert "trust_data_unreadable" not in client.get("/healthz").get_json()["problems"]
