"""The device set-up of the mDL reader, checked without a converge (spec mdl-reader s.8).

- ``appliance_mdl_enabled`` defaults to false; the configuration template then writes
  ``[mdoc] transport = "none"`` (mDL off, every other format works), and with it true the
  board's controller, both loaded by the appliance's own configuration loader;
- only the kiosk unit gets ``CAP_NET_ADMIN`` and Bluetooth sockets, through a drop-in that
  ``systemd-analyze verify`` reads without a word, at an exposure still under the kiosk's
  limit; no other unit gets a capability;
- the roles install the drop-in, mask bluetoothd and add the Pi's Bluetooth boot block only
  when mDL is enabled, and take the drop-in and the block away again when it is not.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_templates import ansible_env, resolve
from systemd_support import exposure, make_verify_root, verify_output

from appliance.config import load_config

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
UNITS = REPO / "systemd"
DROPIN = UNITS / "kiosk-mdl-bluetooth.conf"
KIOSK_MAX_EXPOSURE = 2.5  # tests/deploy/test_systemd.py

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is absent (apt-get install systemd)",
)


def _device_vars(**overrides: Any) -> dict[str, Any]:
    """group_vars/all/appliance.yml as Ansible would template it, for a Pi, with overrides."""
    raw = yaml.safe_load((ANSIBLE / "group_vars/all/appliance.yml").read_text())
    values: dict[str, Any] = {
        **raw,
        "playbook_dir": str(ANSIBLE),
        "appliance_is_pi": True,
        "inventory_hostname": "kiosk-01",
        "ansible_managed": "Ansible managed",
        "appliance_board_model": "Raspberry Pi 4 Model B",
        "vault_appliance_audit_hmac_key": "k" * 32,
        "vault_appliance_admin_password_hash": "x",
        "vault_appliance_inspector_password_hash": "",
        **overrides,
    }
    return resolve(values, keep=frozenset(overrides))


def _config(tmp_path: Path, **overrides: Any) -> Any:
    template = (ANSIBLE / "roles/config/templates/appliance.toml.j2").read_text()
    text = ansible_env().from_string(template).render(_device_vars(**overrides))
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return load_config(path)


def test_mdl_is_off_by_default_and_the_configuration_says_none(tmp_path: Path) -> None:
    assert (
        yaml.safe_load((ANSIBLE / "group_vars/all/appliance.yml").read_text())[
            "appliance_mdl_enabled"
        ]
        is False
    )
    config = _config(tmp_path)
    assert config.mdoc.transport == "none"
    assert config.mdoc.request == "age" and config.mdoc.age_threshold == 20  # walk-up kiosk


def test_mdl_enabled_drives_the_configured_controller(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        appliance_mdl_enabled=True,
        appliance_mdl_hci_index=1,
        appliance_device_mode="inspector",
    )
    assert config.mdoc.transport == "bumble:hci-socket:1"
    assert config.mdoc.request == "checkpoint"  # a staffed checkpoint reads the details


def _dropin_lines() -> list[str]:
    return [ln for ln in DROPIN.read_text().splitlines() if ln and not ln.startswith("#")]


def test_only_the_kiosk_drop_in_grants_a_capability() -> None:
    assert _dropin_lines() == [
        "[Service]",
        "PrivateNetwork=no",
        "RestrictAddressFamilies=AF_UNIX AF_BLUETOOTH",
        "CapabilityBoundingSet=CAP_NET_ADMIN",
        "AmbientCapabilities=CAP_NET_ADMIN",
        "MemoryHigh=105M",
    ]
    for unit in UNITS.glob("*.service"):
        granted = re.findall(
            r"^(?:CapabilityBoundingSet|AmbientCapabilities)=(\S+)", unit.read_text(), re.MULTILINE
        )
        assert not granted, f"{unit.name} grants {granted}"
    kiosk = (UNITS / "appliance-kiosk.service").read_text().splitlines()
    assert "IPAddressDeny=any" in kiosk  # still no IP with the drop-in


@needs_systemd
def test_kiosk_with_the_drop_in_verifies_silently(tmp_path: Path) -> None:
    root = make_verify_root(
        tmp_path / "root",
        {
            "appliance-kiosk.service": (UNITS / "appliance-kiosk.service").read_text(),
            "appliance-fault.service": (UNITS / "appliance-fault.service").read_text(),
        },
    )
    dropins = root / "etc/systemd/system/appliance-kiosk.service.d"
    dropins.mkdir()
    shutil.copy(DROPIN, dropins / "mdl-bluetooth.conf")
    status, output = verify_output(root, "appliance-kiosk.service")
    assert status == 0 and not output, output


@needs_systemd
def test_kiosk_exposure_with_bluetooth_stays_under_its_limit(tmp_path: Path) -> None:
    plain, mdl = tmp_path / "plain", tmp_path / "mdl"
    for folder in (plain, mdl):
        folder.mkdir()
        shutil.copy(UNITS / "appliance-kiosk.service", folder)
    (mdl / "appliance-kiosk.service.d").mkdir()
    shutil.copy(DROPIN, mdl / "appliance-kiosk.service.d" / "mdl-bluetooth.conf")
    without, with_mdl = (exposure(f / "appliance-kiosk.service") for f in (plain, mdl))
    print(f"kiosk exposure: {without} without mDL, {with_mdl} with the Bluetooth drop-in")
    assert without < with_mdl <= KIOSK_MAX_EXPOSURE


def _tasks(role: str) -> dict[str, dict[str, Any]]:
    tasks = yaml.safe_load((ANSIBLE / f"roles/{role}/tasks/main.yml").read_text())
    return {t["name"]: t for t in tasks}


def test_roles_follow_appliance_mdl_enabled() -> None:
    units = _tasks("units")
    install = units["Let the kiosk drive the Bluetooth controller (mDL reader)"]
    assert install["ansible.builtin.copy"]["src"].endswith("/kiosk-mdl-bluetooth.conf")
    assert (
        install["ansible.builtin.copy"]["dest"]
        == "/etc/systemd/system/appliance-kiosk.service.d/mdl-bluetooth.conf"
    )
    assert install["when"] == "appliance_mdl_enabled | bool"
    remove = units["Remove the kiosk's Bluetooth drop-in where mDL is off"]
    assert remove["when"] == "not appliance_mdl_enabled | bool"
    mask = units["Keep bluetoothd off the controller (mDL reader)"]
    assert mask["ansible.builtin.systemd_service"] == {
        "name": "bluetooth.service",
        "masked": True,
    }  # no state: bluez
    assert mask["when"] == "appliance_mdl_enabled | bool"  # may be absent (plain Debian)
    stop = units["Stop a running bluetoothd (mDL reader)"]
    assert stop["when"].endswith("units_bluetoothd.stat.exists")
    boot = _tasks("boot")["Merge the Bluetooth block into the boot configuration (mDL reader)"]
    assert "appliance_mdl_enabled" in boot["ansible.builtin.blockinfile"]["state"]
    venv = _tasks("venv")["Install the appliance into its virtual environment"]
    assert "[mdl]" in venv["ansible.builtin.pip"]["name"]


def test_bluetooth_boot_fragment_opens_with_all_and_enables_the_kernel_driver() -> None:
    lines = [
        ln
        for ln in (REPO / "firmware" / "bluetooth.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert lines == ["[all]", "dtparam=krnbt=on"]
    regexp = _tasks("boot")[
        "Drop any overlay that switches the onboard Bluetooth off (mDL reader)"
    ]["ansible.builtin.lineinfile"]["regexp"]
    for line in ("dtoverlay=disable-bt", "dtoverlay=pi3-disable-bt", " dtoverlay = disable-bt"):
        assert re.search(regexp, line), line
    assert not re.search(regexp, "dtoverlay=miniuart-bt")


def test_the_drop_in_budgets_the_radio_stack() -> None:
    """With mDL on, the kiosk carries Bumble and the mdoc verifier (+13.3 MiB measured,
    benchmarks/results/mdoc_session.json) on top of its booted peak: MemoryHigh clears
    both by a fifth, and MemoryMax stays the unit's."""
    from test_systemd import MEASURED_PEAK_MIB

    high = re.search(r"^MemoryHigh=(\d+)M$", DROPIN.read_text(), re.MULTILINE)
    assert high is not None
    radio_mib = 13.3
    assert int(high[1]) >= (MEASURED_PEAK_MIB["appliance-kiosk.service"] + radio_mib) * 1.2
    assert not re.search(r"^MemoryMax=", DROPIN.read_text(), re.MULTILINE)
