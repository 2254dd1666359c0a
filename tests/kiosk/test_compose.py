"""The one composition of the kiosk (``appliance run`` and ``appliance demo`` alike): the
service with or without trust data yet, the loop and its second inputs, and the port's
audit export over [since, until) (the demo's own export dropped ``until``)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import NOW, World

from appliance.audit.log import AuditLog
from appliance.config import config_from_mapping
from appliance.core.errors import TrustDataError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Verdict
from appliance.kiosk.compose import KioskParts, build_kiosk, build_service, kiosk_port


def make_config(tmp_path: Path, serial: str = ""):
    return config_from_mapping(
        {
            "device": {"id": "pi-compose"},
            "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(tmp_path / "s")},
            "camera": {"source": "images", "images_dir": str(tmp_path / "frames")},
            "scanner": {"serial_device": serial},
            "indicator": {"backend": "mock"},
            "mdoc": {"transport": "none"},
        }
    )


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(
        tmp_path / "audit.db", device_id="pi-compose", hmac_key=b"k" * 32, identity=None
    ).open()
    yield log
    log.close()


@pytest.fixture
def parts(tmp_path: Path, audit: AuditLog) -> Iterator[KioskParts]:
    config = make_config(tmp_path)
    built = build_kiosk(config, build_service(config, audit, wait_for_trust=True), audit)
    yield built
    built.close()


def test_without_trust_data_the_service_fails_early_or_waits(
    tmp_path: Path, audit: AuditLog
) -> None:
    config = make_config(tmp_path)
    with pytest.raises(TrustDataError):
        build_service(config, audit)
    waiting = build_service(config, audit, wait_for_trust=True)
    assert waiting.trust_is_stale()  # amber: no verdicts until sync installs data
    with pytest.raises(TrustDataError):
        waiting.verify("LC1:anything", source="camera")


def test_the_port_exports_records_from_since_until_until(
    parts: KioskParts, audit: AuditLog
) -> None:
    snapshot = World().trust()
    for at in (NOW - 120, NOW - 60, NOW):
        audit.record(
            Verdict(Outcome.FAIL, Reason.UNKNOWN_FORMAT), now=at, source="camera", trust=snapshot
        )
    port = kiosk_port(parts)
    try:
        assert len(port.export_audit().splitlines()) == 3
        window = port.export_audit(NOW - 90, NOW).splitlines()
        assert [json.loads(line)["seq"] for line in window] == [2]
        assert len(port.export_audit(None, NOW).splitlines()) == 2
    finally:
        port.close()


def test_the_port_names_the_camera_and_requests_sync_by_file(parts: KioskParts) -> None:
    port = kiosk_port(parts, camera="demo (simulated camera)")
    try:
        status = port.status()
        assert status["camera"]["source"] == "demo (simulated camera)"
        assert status["device"]["id"] == "pi-compose"
        assert "requested" in port.trigger_upload()
        assert (parts.config.paths.run_dir / "requests" / "upload.request").is_file()
    finally:
        port.close()


def test_a_configured_serial_scanner_feeds_the_composed_loop(
    tmp_path: Path, audit: AuditLog
) -> None:
    master, slave = os.openpty()
    config = make_config(tmp_path, serial=os.ttyname(slave))
    parts = build_kiosk(config, build_service(config, audit, wait_for_trust=True), audit)
    stop, got = threading.Event(), []
    parts.kiosk.submit_text = lambda text, source="scanner": got.append((text, source))
    try:
        parts.start_inputs(stop)
        assert [t.name for t in parts.inputs] == ["serial-scanner"]
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            os.write(master, b"not a licence\r\n")
            time.sleep(0.05)
        assert got and got[0] == ("not a licence", "serial")
    finally:
        stop.set()
        parts.close()
        os.close(master)
        os.close(slave)
    assert not any(t.is_alive() for t in parts.inputs)
