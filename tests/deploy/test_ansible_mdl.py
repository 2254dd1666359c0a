"""The device set-up of the mDL reader, checked without a converge (spec mdl-reader s.8).

- ``appliance_mdl_enabled`` defaults to false; the configuration template then writes
  ``[mdoc] transport = "none"`` and no radio socket (mDL off, every other format works),
  and with it true the board's controller and the radio service's socket, both loaded by
  the appliance's own configuration loader;
- the radio split (issue 23): the radio unit alone holds ``CAP_NET_ADMIN`` and Bluetooth
  sockets, read by systemd itself (``systemd-analyze security``); the kiosk with its mDL
  drop-in has no capability, no Bluetooth socket and no network namespace, and only joins
  the group of the radio's socket; both verify without a word;
- the roles install the radio unit, its user and the kiosk's drop-in, mask bluetoothd and
  add the Pi's Bluetooth boot block only when mDL is enabled, and take them away again
  (with the kiosk's drop-in of earlier versions) when it is not.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_templates import ansible_env, resolve
from systemd_support import exposure, make_verify_root, security_checks, verify_output

from appliance.config import load_config

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
UNITS = REPO / "systemd"
RADIO = UNITS / "appliance-mdl-radio.service"
DROPIN = UNITS / "kiosk-mdl-radio.conf"
KIOSK_DROPIN = "/etc/systemd/system/appliance-kiosk.service.d/mdl-radio.conf"
RADIO_SOCKET = "/run/appliance-mdl-radio/radio.sock"

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


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


def _values(path: Path, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", path.read_text(), re.MULTILINE)


# -- the configuration ----------------------------------------------------------------------


def test_mdl_is_off_by_default_and_the_configuration_says_none(tmp_path: Path) -> None:
    assert (
        yaml.safe_load((ANSIBLE / "group_vars/all/appliance.yml").read_text())[
            "appliance_mdl_enabled"
        ]
        is False
    )
    config = _config(tmp_path)
    assert config.mdoc.transport == "none"
    assert config.mdoc.radio_socket == ""  # no radio service to talk to
    assert config.mdoc.request == "age" and config.mdoc.age_threshold == 20  # walk-up kiosk


def test_mdl_enabled_drives_the_controller_through_the_radio_service(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        appliance_mdl_enabled=True,
        appliance_mdl_hci_index=1,
        appliance_device_mode="inspector",
    )
    assert config.mdoc.transport == "bumble:hci-socket:1"
    assert config.mdoc.radio_socket == RADIO_SOCKET
    assert config.mdoc.request == "checkpoint"  # a staffed checkpoint reads the details


def test_the_radio_socket_is_in_the_radio_units_runtime_directory() -> None:
    """The path the kiosk is given is the folder systemd makes for the radio (0750, its
    group), and the radio reads the configuration the config role writes."""
    assert _values(RADIO, "RuntimeDirectory") == ["appliance-mdl-radio"]
    assert _values(RADIO, "RuntimeDirectoryMode") == ["0750"]
    assert RADIO_SOCKET.startswith("/run/appliance-mdl-radio/")
    config_file = yaml.safe_load((ANSIBLE / "group_vars/all/appliance.yml").read_text())[
        "appliance_config_file"
    ]
    assert _values(RADIO, "LoadCredential") == [f"appliance.toml:{config_file}"]
    assert _values(RADIO, "ExecStart") == [
        "/opt/appliance/venv/bin/appliance mdl-radio --config %d/appliance.toml"
    ]


# -- the units ------------------------------------------------------------------------------


def test_the_kiosk_drop_in_only_joins_the_radio_group() -> None:
    assert _lines(DROPIN) == [
        "[Unit]",
        "Wants=appliance-mdl-radio.service",
        "[Service]",
        "SupplementaryGroups=appliance-radio",
    ]
    assert _values(RADIO, "User") == ["appliance-radio"]
    assert _values(RADIO, "Group") == ["appliance-radio"]
    assert _values(RADIO, "SupplementaryGroups") == []  # not in group appliance: no state


def test_only_the_radio_unit_grants_a_capability() -> None:
    for unit in UNITS.glob("*.service"):
        granted = re.findall(
            r"^(?:CapabilityBoundingSet|AmbientCapabilities)=(\S+)", unit.read_text(), re.MULTILINE
        )
        if unit == RADIO:
            assert granted == ["CAP_NET_ADMIN", "CAP_NET_ADMIN"]
        else:
            assert not granted, f"{unit.name} grants {granted}"
    assert _values(RADIO, "RestrictAddressFamilies") == ["AF_UNIX AF_BLUETOOTH"]
    for line in ("PrivateNetwork=no", "IPAddressDeny=any", "Type=notify", "NoNewPrivileges=yes"):
        assert line in RADIO.read_text().splitlines(), line
    assert _values(RADIO, "WatchdogSec") and _values(RADIO, "Restart") == ["on-failure"]
    assert not re.search(r"^Condition", RADIO.read_text(), re.MULTILINE)  # starts and says why


# benchmarks/results/mdoc_session.json: appliance mdl-radio's VmHWM over 200 sessions, and
# what the kiosk still loads for mDL (its mDL path and one session through the radio client).
RADIO_PEAK_MIB = 46.4
KIOSK_MDL_MIB = 1.9


def test_memory_the_radio_its_peak_and_a_fifth_the_kiosk_its_own_budget() -> None:
    """The radio's budget clears its measured peak by a fifth; the kiosk, rid of Bumble,
    keeps its own MemoryHigh, which clears its booted peak plus the mdoc core."""
    from test_systemd import MEASURED_PEAK_MIB

    def mib(path: Path, key: str) -> int:
        [value] = _values(path, key)
        assert value.endswith("M"), value
        return int(value[:-1])

    assert mib(RADIO, "MemoryHigh") >= RADIO_PEAK_MIB * 1.2
    assert mib(RADIO, "MemoryMax") >= RADIO_PEAK_MIB * 1.25
    kiosk = UNITS / "appliance-kiosk.service"
    assert mib(kiosk, "MemoryHigh") > MEASURED_PEAK_MIB["appliance-kiosk.service"] + KIOSK_MDL_MIB
    assert not re.search(r"^Memory", DROPIN.read_text(), re.MULTILINE)


def _kiosk_with_drop_in(folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(UNITS / "appliance-kiosk.service", folder)
    (folder / "appliance-kiosk.service.d").mkdir()
    shutil.copy(DROPIN, folder / "appliance-kiosk.service.d" / "mdl-radio.conf")
    return folder / "appliance-kiosk.service"


@needs_systemd
def test_the_kiosk_with_its_drop_in_has_no_capability_and_no_bluetooth(tmp_path: Path) -> None:
    checks = security_checks(_kiosk_with_drop_in(tmp_path / "kiosk"))
    capabilities = {k: v for k, v in checks.items() if k.startswith("CapabilityBoundingSet=~")}
    assert capabilities and all(capabilities.values()), capabilities
    for name in (
        "AmbientCapabilities=",
        "PrivateNetwork=",
        "IPAddressDeny=",
        "RestrictAddressFamilies=~…",  # exotic families, AF_BLUETOOTH among them
        "RestrictAddressFamilies=~AF_(INET|INET6)",
        "RestrictAddressFamilies=~AF_NETLINK",
        "RestrictAddressFamilies=~AF_PACKET",
    ):
        assert checks[name], name


@needs_systemd
def test_the_radio_unit_has_exactly_cap_net_admin_and_no_ip(tmp_path: Path) -> None:
    checks = security_checks(RADIO)
    capabilities = {k: v for k, v in checks.items() if k.startswith("CapabilityBoundingSet=~")}
    assert [k for k, v in capabilities.items() if not v] == ["CapabilityBoundingSet=~CAP_NET_ADMIN"]
    assert not checks["AmbientCapabilities="]  # CAP_NET_ADMIN, ambient for a non-root user
    assert not checks["RestrictAddressFamilies=~…"]  # AF_BLUETOOTH
    assert not checks["PrivateNetwork="]  # Bluetooth sockets need the host's namespace
    for name in (
        "IPAddressDeny=",
        "RestrictAddressFamilies=~AF_(INET|INET6)",
        "RestrictAddressFamilies=~AF_NETLINK",
        "RestrictAddressFamilies=~AF_PACKET",
        "PrivateDevices=",
        "NoNewPrivileges=",
        "ProtectSystem=",
        "SystemCallFilter=~@privileged",
        "RestrictNamespaces=~user",
    ):
        assert checks[name], name


@needs_systemd
def test_the_kiosk_with_its_drop_in_and_the_radio_verify_silently(tmp_path: Path) -> None:
    units = ("appliance-kiosk.service", "appliance-fault.service", "appliance-mdl-radio.service")
    root = make_verify_root(tmp_path / "root", {u: (UNITS / u).read_text() for u in units})
    dropins = root / "etc/systemd/system/appliance-kiosk.service.d"
    dropins.mkdir()
    shutil.copy(DROPIN, dropins / "mdl-radio.conf")
    for unit in ("appliance-kiosk.service", "appliance-mdl-radio.service"):
        status, output = verify_output(root, unit)
        assert status == 0 and not output, output


@needs_systemd
def test_mdl_leaves_the_kiosks_exposure_as_it_was(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(UNITS / "appliance-kiosk.service", plain)
    without = exposure(plain / "appliance-kiosk.service")
    with_mdl = exposure(_kiosk_with_drop_in(tmp_path / "mdl"))
    print(f"kiosk exposure: {without} without mDL, {with_mdl} with; radio {exposure(RADIO)}")
    assert with_mdl == without


# -- the roles ------------------------------------------------------------------------------


def _tasks(role: str) -> dict[str, dict[str, Any]]:
    tasks = yaml.safe_load((ANSIBLE / f"roles/{role}/tasks/main.yml").read_text())
    return {t["name"]: t for t in tasks}


ON, OFF = "appliance_mdl_enabled | bool", "not appliance_mdl_enabled | bool"


def test_the_units_role_installs_the_radio_only_with_mdl_on() -> None:
    units = _tasks("units")
    group = units["Create the radio's system group (mDL reader)"]
    assert group["ansible.builtin.group"] == {"name": "appliance-radio", "system": True}
    user = units["Create the radio's system user (mDL reader; no login, no other group)"]
    assert user["ansible.builtin.user"]["group"] == "appliance-radio"
    assert "groups" not in user["ansible.builtin.user"]
    unit = units["Install the radio unit (mDL reader)"]["ansible.builtin.copy"]
    assert unit["src"].endswith("/appliance-mdl-radio.service")
    assert unit["dest"] == "/etc/systemd/system/appliance-mdl-radio.service"
    dropin = units["Let the kiosk reach the radio's socket (mDL reader)"]["ansible.builtin.copy"]
    assert dropin["src"].endswith("/kiosk-mdl-radio.conf") and dropin["dest"] == KIOSK_DROPIN
    for name in (
        "Create the radio's system group (mDL reader)",
        "Create the radio's system user (mDL reader; no login, no other group)",
        "Install the radio unit (mDL reader)",
        "Let the kiosk reach the radio's socket (mDL reader)",
        "Keep bluetoothd off the controller (mDL reader)",
    ):
        assert units[name]["when"] == ON, name
    enabled = yaml.safe_load((ANSIBLE / "roles/units/vars/main.yml").read_text())["units_enabled"]
    assert "['appliance-mdl-radio.service'] if appliance_mdl_enabled | bool else []" in enabled


def test_the_units_role_takes_the_radio_away_with_mdl_off() -> None:
    units = _tasks("units")
    stop = units["Stop and disable that radio unit"]
    assert stop["ansible.builtin.systemd_service"] == {
        "name": "appliance-mdl-radio.service",
        "state": "stopped",
        "enabled": False,
    }
    assert stop["when"].startswith(OFF) and stop["when"].endswith("units_radio_unit.stat.exists")
    remove = units["Remove the radio unit and the kiosk's drop-in where mDL is off"]
    assert remove["when"] == OFF
    assert sorted(remove["loop"]) == sorted(
        [
            "/etc/systemd/system/multi-user.target.wants/appliance-mdl-radio.service",
            "/etc/systemd/system/appliance-mdl-radio.service",
            KIOSK_DROPIN,
        ]
    )
    old = units["Remove the kiosk's Bluetooth drop-in of earlier versions"]
    assert old["ansible.builtin.file"] == {
        "path": "/etc/systemd/system/appliance-kiosk.service.d/mdl-bluetooth.conf",
        "state": "absent",
    }
    assert "when" not in old  # whatever mDL is now: the kiosk never holds the controller


def test_bluetoothd_masked_boot_block_and_stack_follow_mdl() -> None:
    units = _tasks("units")
    mask = units["Keep bluetoothd off the controller (mDL reader)"]
    assert mask["ansible.builtin.file"] == {  # as `systemctl mask`, which a chroot cannot run
        "src": "/dev/null",
        "dest": "/etc/systemd/system/bluetooth.service",
        "state": "link",
        "force": True,
    }
    stop = units["Stop a running bluetoothd (mDL reader)"]
    assert stop["when"].endswith("units_bluetoothd.stat.exists")
    boot = _tasks("boot")["Merge the Bluetooth block into the boot configuration (mDL reader)"]
    assert "appliance_mdl_enabled" in boot["ansible.builtin.blockinfile"]["state"]
    venv = _tasks("venv")["Install the appliance into its virtual environment"]
    assert "[mdl]" in venv["ansible.builtin.pip"]["name"]


def test_a_new_configuration_restarts_the_radio_and_a_new_drop_in_the_kiosk() -> None:
    """On a running device: the radio restarts with the kiosk and the web on a new
    configuration; the kiosk restarts, after a reload, when its mDL drop-in comes or goes
    (else it would run on without the radio's group)."""
    handlers = yaml.safe_load((ANSIBLE / "roles/units/handlers/main.yml").read_text())
    by_name = {h["name"]: h for h in handlers}
    restart = by_name["Restart the mDL radio"]
    venv = yaml.safe_load((ANSIBLE / "roles/venv/handlers/main.yml").read_text())
    assert restart["listen"] == venv[0]["name"] == "Restart appliance services"
    assert restart["ansible.builtin.systemd_service"]["daemon_reload"] is True
    assert restart["when"] == "appliance_booted | bool and appliance_mdl_enabled | bool"
    kiosk = by_name["Restart the kiosk with its new drop-ins"]["ansible.builtin.systemd_service"]
    assert kiosk == {"name": "appliance-kiosk.service", "state": "restarted", "daemon_reload": True}
    assert list(by_name).index("Reload systemd") < list(by_name).index(
        "Restart the kiosk with its new drop-ins"
    )
    units = _tasks("units")
    for name in (
        "Let the kiosk reach the radio's socket (mDL reader)",
        "Remove the kiosk's Bluetooth drop-in of earlier versions",
        "Remove the radio unit and the kiosk's drop-in where mDL is off",
    ):
        assert "Restart the kiosk with its new drop-ins" in units[name]["notify"], name


def test_bluetooth_boot_fragment_opens_with_all_and_enables_the_kernel_driver() -> None:
    lines = _lines(REPO / "firmware" / "bluetooth.txt")
    assert lines == ["[all]", "dtparam=krnbt=on"]
    regexp = _tasks("boot")[
        "Drop any overlay that switches the onboard Bluetooth off (mDL reader)"
    ]["ansible.builtin.lineinfile"]["regexp"]
    for line in ("dtoverlay=disable-bt", "dtoverlay=pi3-disable-bt", " dtoverlay = disable-bt"):
        assert re.search(regexp, line), line
    assert not re.search(regexp, "dtoverlay=miniuart-bt")
