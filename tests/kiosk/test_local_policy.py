"""Accepted types set on the admin screen survive a restart of the device."""

from __future__ import annotations

from pathlib import Path

from appliance.config import config_from_mapping
from appliance.kiosk.compose import device_checkpoint
from appliance.kiosk.local_policy import FILE, load_accepted_types, save_accepted_types


def _config(tmp_path: Path):
    return config_from_mapping({"paths": {"state_dir": str(tmp_path)},
                                "policy": {"accepted_types": ["DL"]}})


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
