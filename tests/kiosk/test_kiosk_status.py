"""Status providers from real parts: a kiosk loop on pictures, sync_state.json, the audit log."""

from __future__ import annotations

import time
from pathlib import Path

import segno
from support import NOW, World

from appliance.audit.log import open_audit_log
from appliance.config import config_from_mapping
from appliance.core.verifier import Checkpoint
from appliance.devices.camera import ImageFolderSource
from appliance.devices.indicator import NullIndicator
from appliance.devices.scanner import FrameScanner, make_decoder
from appliance.kiosk.loop import Kiosk
from appliance.kiosk.status import device_providers, epoch, trust_provider, wall_time
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock
from appliance.trust.sync_state import write_sync_state


def make_config(tmp_path: Path, **sections: dict):
    raw = {
        "device": {"id": "pi-status-1"},
        "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(tmp_path / "secrets")},
        "camera": {"source": "images", "images_dir": str(tmp_path / "frames")},
        "sync": {"interval_minutes": 15},
        "audit": {"required": True},
    }
    raw.update(sections)
    return config_from_mapping(raw)


def test_wall_time_converts_monotonic() -> None:
    assert wall_time(None) is None
    assert wall_time(90.0, wall=lambda: 1000.0, monotonic=lambda: 100.0) == 990.0
    assert epoch("2027-01-15T08:00:00Z") == NOW
    assert epoch("2027-01-15T08:00:00.500000Z") == NOW + 0.5
    assert epoch(None) is None and epoch("yesterday") is None


def test_trust_from_sync_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    provider = trust_provider(state, 15, wall=lambda: NOW + 600.0)
    empty = provider()
    assert empty["last_sync_at"] is None and empty["next_sync_at"] is None  # never synced
    state.mkdir()
    write_sync_state(
        state,
        {
            "last_attempt": "2027-01-15T08:00:00Z",
            "last_success": "2027-01-15T07:45:00Z",
            "last_error": "download failed (SlowRetrievalError): too slow",
            "last_error_at": "2027-01-15T08:00:00Z",
            "bytes_fetched": 120,
            "bytes_fetched_total": 9000,
            "version": 7,
            "published": "2027-01-15T07:00:00Z",
            "expires": "2027-01-18T07:00:00Z",
            "age_s": 1.0,
        },
    )
    s = provider()
    assert s["last_attempt_at"] == NOW
    assert s["last_sync_at"] == NOW - 900
    assert s["next_sync_at"] == NOW + 900
    assert s["last_error"].startswith("download failed")
    assert s["last_error_at"] == NOW
    assert (s["bytes_fetched"], s["bytes_fetched_total"]) == (120, 9000)
    assert s["synced_version"] == 7
    assert s["synced_published_at"] == NOW - 3600
    assert s["synced_age_s"] == 3600 + 600  # now, not when the sync ran
    assert s["metadata_expires_at"] == NOW + 3 * 86400 - 3600


def test_camera_and_audit_from_a_running_kiosk(tmp_path: Path) -> None:
    world = World()
    frames = tmp_path / "frames"
    frames.mkdir()
    segno.make(world.issue(), error="m", micro=False).save(frames / "a.png", scale=4, border=4)
    config = make_config(tmp_path)
    audit = open_audit_log(config)
    try:
        service = VerificationService(
            lambda: world.trust(), FixedClock(NOW), Checkpoint(check_staleness=False), audit=audit
        )
        source = ImageFolderSource(frames, fps=100, frames_per_image=3)
        kiosk = Kiosk(
            source, FrameScanner(make_decoder("zxing")), service, NullIndicator(), EventBus()
        )
        providers = device_providers(config, kiosk=kiosk, audit=audit)
        assert set(providers) == {"camera", "trust", "audit", "mdl"}
        assert providers["mdl"]()["transport"] == config.mdoc.transport
        before = providers["camera"]()
        assert before["frames"] == 0 and before["last_frame_at"] is None
        assert before["camera_ok"] is False and before["source"] == "images"

        kiosk._open_camera()
        verdicts = []
        for _ in range(4):
            verdicts += kiosk.poll_once(0.2)
        assert [str(v.outcome) for v in verdicts] == ["PASS"]
        cam = providers["camera"]()
        assert cam["frames"] == 4 and cam["camera_ok"] is True
        assert cam["decode_errors"] == 0 and cam["fps"] > 0
        assert abs(cam["last_frame_at"] - time.time()) < 5  # wall time, not monotonic

        a = providers["audit"]()
        assert a["pending"] == 1 and a["head_seq"] == 1 and a["last_upload_at"] is None
        assert "fault" not in a  # the service's own fault stays authoritative
        audit.mark_uploaded(1, 1, NOW)
        a = providers["audit"]()
        assert a["pending"] == 0 and a["last_upload_at"] == NOW
    finally:
        audit.close()


def test_providers_without_kiosk_or_audit(tmp_path: Path) -> None:
    providers = device_providers(make_config(tmp_path))
    assert set(providers) == {"trust", "mdl"}
    assert providers["trust"]()["last_error"] is None
