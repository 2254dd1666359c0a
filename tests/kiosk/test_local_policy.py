"""Accepted types set on the admin screen: through the service, and kept across restarts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from appliance.config import config_from_mapping
from appliance.kiosk.compose import device_checkpoint
from appliance.kiosk.local_policy import FILE, load_accepted_types, save_accepted_types
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock


def _config(tmp_path: Path):
    return config_from_mapping(
        {"paths": {"state_dir": str(tmp_path)}, "policy": {"accepted_types": ["DL"]}}
    )


def test_configured_types_until_the_admin_changes_them(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert device_checkpoint(config).accepted_types == frozenset({"DL"})
    save_accepted_types(tmp_path, ("BP", "TX"))
    assert device_checkpoint(config).accepted_types == frozenset({"BP", "TX"})
    save_accepted_types(tmp_path, ())
    assert device_checkpoint(config).accepted_types == frozenset()  # any type


def test_unreadable_file_falls_back_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("{broken")
    assert load_accepted_types(tmp_path) is None
    assert device_checkpoint(_config(tmp_path)).accepted_types == frozenset({"DL"})
    (tmp_path / FILE).write_text('{"accepted_types": "DL"}')
    assert load_accepted_types(tmp_path) is None


def test_the_port_changes_types_through_the_service_only(tmp_path: Path) -> None:
    """The admin screen's types reach the service through its method: nothing else may
    write the service's checkpoint."""
    saved: list = []
    service = VerificationService(
        lambda: None,
        FixedClock(0),  # type: ignore[arg-type]
        device_checkpoint(_config(tmp_path)),
    )
    port = LocalKioskPort(service, EventBus(), on_accepted_types=saved.append)
    port.set_accepted_types(["TX", "BP", "TX"])
    assert service.checkpoint.accepted_types == frozenset({"BP", "TX"})
    assert port.accepted_types() == ("BP", "TX") and saved == [("BP", "TX")]
    with pytest.raises(AttributeError):
        service.checkpoint = dataclasses.replace(service.checkpoint)  # type: ignore[misc]
    port.close()
