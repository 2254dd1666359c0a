"""Attack replays on the deployment: who may write what, and what a crash loop does.

1. Trust data was writable by every process (all ran as ``appliance`` with the whole state
   directory writable): the units must give trust data one writer (sync, its own user),
   the audit log its writers (kiosk, upload), and the web screen no write access at all.
2. A kiosk crashing on a hostile sticker restarted five times and then rebooted the Pi,
   again and again: a crash loop must leave the kiosk down with its fault shown.

The units and Ansible roles are parsed as files; the fault pattern runs on gpiozero's
MockFactory pins through the real indicator code.
"""

from __future__ import annotations

import threading
from pathlib import Path

import yaml
from gpiozero.pins.mock import MockFactory

from appliance.commands.fault import hold, show_fault
from appliance.config import IndicatorConfig
from appliance.devices.indicator import DeviceState, GpiozeroIndicator, lamp_states

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
STATE = "/var/lib/appliance"
TRUST = f"{STATE}/trust"
SERVICES = (
    "appliance-kiosk",
    "appliance-web",
    "appliance-sync",
    "appliance-upload",
    "appliance-fault",
)


def unit(name: str) -> dict[str, list[str]]:
    """key -> every value given (systemd keys may repeat; values split on blanks)."""
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.setdefault(key, []).extend(value.split() or [""])
    return out


def _strip(path: str) -> str:
    return path.lstrip("-+")


def can_write(u: dict[str, list[str]], path: str) -> bool:
    """Whether the unit's mount namespace leaves ``path`` writable (ProtectSystem=strict:
    only ReadWritePaths / StateDirectory are; the longest matching rule wins)."""
    assert u.get("ProtectSystem") == ["strict"]
    rules = [(_strip(p), True) for p in u.get("ReadWritePaths", [])]
    rules += [(f"/var/lib/{p}", True) for p in u.get("StateDirectory", [])]
    rules += [(_strip(p), False) for p in u.get("ReadOnlyPaths", [])]
    best = None
    for prefix, writable in rules:
        covers = path == prefix or path.startswith(prefix.rstrip("/") + "/")
        if covers and (best is None or len(prefix) >= len(best[0])):
            best = (prefix, writable)
    return bool(best and best[1])


def test_one_writer_for_trust_data_none_for_the_web_screen() -> None:
    units = {name: unit(f"{name}.service") for name in SERVICES}
    users = {name: u["User"][0] for name, u in units.items()}
    trust_writers = {n for n, u in units.items() if can_write(u, f"{TRUST}/v00000042")}
    assert trust_writers == {"appliance-sync"}
    assert can_write(units["appliance-sync"], f"{STATE}/sync_state.json")
    audit_writers = {n for n, u in units.items() if can_write(u, f"{STATE}/audit.db")}
    assert "appliance-web" not in audit_writers and "appliance-kiosk" in audit_writers
    # Users: sync alone owns trust data; the web screen shares no user with a writer.
    assert users["appliance-sync"] not in {users[n] for n in SERVICES if n != "appliance-sync"}
    assert users["appliance-web"] not in {users[n] for n in SERVICES if n != "appliance-web"}
    # No unit may declare the shared directory as its StateDirectory/RuntimeDirectory
    # (systemd would chown it, and everything in it, to that unit's user).
    for name, u in units.items():
        assert "appliance" not in u.get("StateDirectory", []), name
    runtime = [n for n, u in units.items() if "appliance" in u.get("RuntimeDirectory", [])]
    assert runtime == ["appliance-kiosk"]
    # Sync's files are group-readable for the kiosk; everyone else keeps 0077.
    assert units["appliance-sync"]["UMask"] == ["0027"]
    assert units["appliance-sync"]["Group"] == units["appliance-kiosk"]["Group"]


def _tasks(role: str) -> list[dict]:
    return yaml.safe_load((REPO / "ansible/roles" / role / "tasks/main.yml").read_text())


def test_ansible_creates_the_users_and_the_split_directories() -> None:
    tasks = _tasks("state")
    users = {
        t["ansible.builtin.user"]["name"]: t["ansible.builtin.user"]
        for t in tasks
        if "ansible.builtin.user" in t
    }
    assert {"{{ appliance_sync_user }}", "{{ appliance_web_user }}"} <= set(users)
    for name in ("{{ appliance_sync_user }}", "{{ appliance_web_user }}"):
        assert users[name]["group"] == "{{ appliance_user }}"
        assert not users[name].get("groups")  # no camera, no GPIO
    files = {
        t["ansible.builtin.file"]["path"]: t["ansible.builtin.file"]
        for t in tasks
        if "ansible.builtin.file" in t
    }
    state = files["{{ appliance_state_dir }}"]
    assert (state["owner"], state["group"], state["mode"]) == (
        "root",
        "{{ appliance_user }}",
        "1770",
    )
    trust = [
        t
        for t in tasks
        if "ansible.builtin.file" in t
        and t.get("loop") == ["trust", "tuf"]
        and "mode" in t["ansible.builtin.file"]
    ]
    assert len(trust) == 1
    entry = trust[0]["ansible.builtin.file"]
    assert (entry["owner"], entry["mode"]) == ("{{ appliance_sync_user }}", "0750")
    defaults = yaml.safe_load((REPO / "ansible/group_vars/all/appliance.yml").read_text())
    assert defaults["appliance_sync_user"] == unit("appliance-sync.service")["User"][0]
    assert defaults["appliance_web_user"] == unit("appliance-web.service")["User"][0]
    installed = yaml.safe_load((REPO / "ansible/roles/units/vars/main.yml").read_text())
    assert "appliance-fault.service" in installed["units_files"]


def test_a_crash_loop_leaves_the_kiosk_down_with_its_fault_shown() -> None:
    kiosk = unit("appliance-kiosk.service")
    assert kiosk.get("StartLimitAction", ["none"]) == ["none"]
    assert "FailureAction" not in kiosk
    assert kiosk["OnFailure"] == ["appliance-fault.service"]
    assert "appliance-fault.service" in kiosk["Conflicts"]
    fault = unit("appliance-fault.service")
    assert fault["ExecStart"][1:3] == ["fault", "--config"]
    assert fault["Restart"] == ["no"] and "StartLimitAction" not in fault
    assert fault["DeviceAllow"] == ["char-gpiochip", "rw"]
    assert fault["PrivateNetwork"] == ["yes"]


def test_fault_pattern_is_steady_red_and_releases_the_pins() -> None:
    indicator = GpiozeroIndicator(IndicatorConfig(), pin_factory=MockFactory())
    indicator.set_state(DeviceState.IDLE)
    show_fault(indicator)
    assert lamp_states(indicator)["red"] is True
    assert lamp_states(indicator)["green"] is False
    assert not indicator.red._blink_thread  # steady, unlike every kiosk state pattern
    stop = threading.Event()
    done = threading.Thread(target=hold, args=(indicator, stop))
    done.start()
    stop.set()
    done.join(timeout=10)
    assert not done.is_alive()
    assert indicator.red.closed
