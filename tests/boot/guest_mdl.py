"""The mDL reader in the booted guest (make test-boot): radio unit, kiosk, virtual phone.

Runs inside the guest beside guest_check.py (Python standard library only), which passes
in its helpers (``Guest``). The board's controller is hci0 from ``hci_vhci``, driven by the
virtual phone (appliance-boot-phone.service, tests/boot/virtual_phone.py, started after the
kiosk and the radio: until it is up, mDL scans find no controller); the radio unit
(appliance-mdl-radio.service) holds it through the HCI user channel; the kiosk reads the
phone's QR from the simulated camera and runs the session through the radio's socket.
Checked here:

- an mDL verdict PASS from the camera on the web's API, and its audit record at the hub;
- capabilities (``/proc/PID/status``): the kiosk has none at all, the radio exactly
  CAP_NET_ADMIN (effective, permitted, ambient and bounding);
- the controller blocked by rfkill: mDL scans UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT, and
  a PASS again once unblocked;
- the board without its controller (the phone stopped, hci0 gone): the next mDL verdict is
  UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT, a licence still PASSes, and neither the radio
  nor the kiosk restarts.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIOSK = "appliance-kiosk.service"
RADIO = "appliance-mdl-radio.service"
PHONE = "appliance-boot-phone.service"
CONTROLLER = Path("/sys/class/bluetooth/hci0")
CAP_NET_ADMIN = 1 << 12
CAP_LINES = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


@dataclass
class Guest:
    """guest_check.py's helpers, handed in (this module runs beside it, not imported by it)."""

    show: Callable[[str], dict[str, str]]
    get: Callable[..., bytes]
    wait_for: Callable[..., Any]
    say: Callable[[str], None]
    settings: dict[str, Any]


def capabilities(pid: int) -> dict[str, int]:
    """The capability sets of a process, from /proc/PID/status."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in CAP_LINES:
            found[key] = int(value.strip(), 16)
    return found


def verdicts(guest: Guest) -> list[dict[str, Any]]:
    return json.loads(guest.get("http://127.0.0.1:8080/api/verdicts?limit=50"))["verdicts"]


def mdoc_passes(guest: Guest) -> list[dict[str, Any]]:
    return [v for v in verdicts(guest) if v["profile"] == "MDOC" and v["outcome"] == "PASS"]


def read_from_phone(guest: Guest, result: dict[str, Any]) -> None:
    """The phone's controller up, an mDL PASS on the web's API (the kiosk, through the
    radio, over the kernel's HCI user channel)."""
    facts: dict[str, Any] = {}
    result["mdl"] = facts
    try:
        guest.wait_for("the virtual phone's controller (hci0)", CONTROLLER.exists, 300, 1.0)
    finally:
        facts["phone_unit"] = guest.show(PHONE)["ActiveState"]
    try:
        passes = guest.wait_for("mDL PASS on the web's API", lambda: mdoc_passes(guest), 600, 5.0)
    finally:
        facts["verdicts_seen"] = summary(verdicts(guest))
    facts["first_pass"] = passes[-1]  # newest first: the oldest PASS in view


def summary(events: list[dict[str, Any]]) -> dict[str, int]:
    """How many of each (profile, outcome, reason) are in view."""
    counts: dict[str, int] = {}
    for e in events:
        key = f"{e['profile']} {e['outcome']} {e['reason']}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def hub_mdoc_records(guest: Guest) -> int:
    """The audit records of mDL verdicts at the hub (through nginx and TLS)."""
    body = guest.get(
        f"{guest.settings['hub']}/v1/records?device_id={guest.settings['device_id']}",
        guest.settings["auditor_token"],
    )
    records = [json.loads(line) for line in body.splitlines() if line.strip()]
    return len([r for r in records if r.get("profile") == "MDOC"])


def check_capabilities(guest: Guest, result: dict[str, Any]) -> None:
    """The spec's split (mdl-reader s.8): CAP_NET_ADMIN for the radio alone."""
    found = {}
    for unit in (KIOSK, RADIO):
        pid = int(guest.show(unit)["MainPID"])
        found[unit] = {k: f"{v:#x}" for k, v in capabilities(pid).items()}
    result["mdl"]["capabilities"] = found
    kiosk, radio = found[KIOSK], found[RADIO]
    problems = [f"kiosk {k} {v}" for k, v in kiosk.items() if k != "CapBnd" and int(v, 16)]
    if int(kiosk["CapBnd"], 16):
        problems.append(f"kiosk CapBnd {kiosk['CapBnd']}")
    problems += [
        f"radio {k} {v}" for k, v in radio.items() if k != "CapInh" and int(v, 16) != CAP_NET_ADMIN
    ]
    if problems:
        raise AssertionError("capabilities: " + "; ".join(problems))


def verdict_after(guest: Guest, since: float, profile: str, reason: str) -> dict[str, Any] | None:
    """The newest verdict of ``profile`` with ``reason`` made after ``since`` (epoch)."""
    for v in verdicts(guest):
        if v["at"] > since and v["profile"] == profile and v["reason"] == reason:
            return v
    return None


def blocked_and_back(guest: Guest, result: dict[str, Any]) -> None:
    """The controller switched off by rfkill (software), then on again: while blocked an mDL
    scan is UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT (the radio checks sysfs each session;
    the kernel would refuse the user channel with ERFKILL), and once unblocked the next one
    PASSes again, with no restart."""
    switch = next(CONTROLLER.glob("rfkill*")) / "soft"
    blocked_at = time.time()
    switch.write_text("1")
    try:
        guest.wait_for(
            "mDL verdict with the controller blocked",
            lambda: verdict_after(guest, blocked_at, "MDOC", "MDOC_NO_SUPPORTED_TRANSPORT"),
            120,
            2.0,
        )
    finally:
        switch.write_text("0")
        unblocked_at = time.time()
        result["mdl"]["rfkill"] = {
            "while_blocked": summary(
                [v for v in verdicts(guest) if blocked_at < v["at"] <= unblocked_at]
            )
        }
    guest.wait_for(
        "mDL PASS with the controller unblocked",
        lambda: verdict_after(guest, unblocked_at, "MDOC", "OK"),
        120,
        2.0,
    )
    result["mdl"]["rfkill"]["pass_again_s"] = round(time.time() - unblocked_at, 1)


def without_controller(guest: Guest, result: dict[str, Any]) -> None:
    """A board without Bluetooth: the phone (and with it hci0) stopped; the next mDL scan
    is UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT, a licence still PASSes, nothing restarts."""
    before = {u: guest.show(u) for u in (KIOSK, RADIO)}
    stopped_at = time.time()
    subprocess.run(["systemctl", "stop", PHONE], check=True, timeout=120)
    guest.wait_for("hci0 gone", lambda: not CONTROLLER.exists(), 60, 0.5)

    # A session under way when the phone went may end in a transport failure first: the
    # check is that a scan with no controller gets its own reason, not that none failed.
    try:
        mdoc = guest.wait_for(
            "mDL verdict without a controller",
            lambda: verdict_after(guest, stopped_at, "MDOC", "MDOC_NO_SUPPORTED_TRANSPORT"),
            120,
            2.0,
        )
    finally:
        result["mdl"]["after_stop"] = summary([v for v in verdicts(guest) if v["at"] > stopped_at])
    licence = guest.wait_for(
        "licence PASS without a controller",
        lambda: verdict_after(guest, stopped_at, "LC1", "OK"),
        120,
        2.0,
    )
    now = {u: guest.show(u) for u in (KIOSK, RADIO)}
    facts = {
        "mdoc_outcome": mdoc["outcome"],
        "mdoc_reason": mdoc["reason"],
        "licence": licence["outcome"],
        "seconds": round(time.time() - stopped_at, 1),
        "units": {
            u: {
                "active": now[u]["ActiveState"],
                "restarts": int(now[u]["NRestarts"] or 0),
                "main_pid_same": now[u]["MainPID"] == before[u]["MainPID"],
            }
            for u in now
        },
    }
    result["mdl"]["without_controller"] = facts
    problems = []
    if mdoc["outcome"] != "UNVERIFIABLE" or licence["outcome"] != "PASS":
        problems.append(f"without a controller: mDL {mdoc['outcome']}, {licence['outcome']}")
    for unit, state in facts["units"].items():
        if state["active"] != "active" or not state["main_pid_same"]:
            problems.append(f"{unit} {state}")
    if facts["units"][RADIO]["restarts"]:
        problems.append(f"the radio restarted {facts['units'][RADIO]['restarts']} times")
    if problems:
        raise AssertionError("without a controller: " + "; ".join(problems))
