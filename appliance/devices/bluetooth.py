"""Whether this board can read mDLs: the configured transport and the Bluetooth controller.

A board without Bluetooth (or with ``mdoc.transport = "none"``, the Ansible default) reads
every other format as usual; the status page and ``appliance selftest`` say that mDL is off
and why, from this one reading. The controller is looked up in sysfs only (no socket, no
privilege, no Bumble import), so the web process, selftest and a board without Bluetooth
can all ask.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SYS_BLUETOOTH = Path("/sys/class/bluetooth")
_HCI_SOCKET = re.compile(r"bumble:hci-socket:(\d{1,3})")

# Why mDL is off: the configuration says so, the transport is unknown, the Bluetooth stack
# (extra 'mdl') is not installed, the board has no controller at that index, or its radio
# is switched off (rfkill: `rfkill unblock bluetooth`).
OFF_CONFIG, OFF_TRANSPORT, OFF_STACK, OFF_CONTROLLER, OFF_BLOCKED = (
    "config",
    "transport",
    "stack",
    "controller",
    "blocked",
)


@dataclass(frozen=True)
class MdlState:
    """mDL reading on this board: ``off`` is None when it is on."""

    transport: str
    off: str | None
    controller: str | None  # "hci0", "emulated" (bumble:local) or None (none or unknown)
    detail: str

    @property
    def enabled(self) -> bool:
        return self.off is None

    def as_status(self) -> dict[str, Any]:
        return {"enabled": self.enabled, **asdict(self)}


def mdl_state(transport: str, sys_bluetooth: Path = SYS_BLUETOOTH) -> MdlState:
    """The state of mDL reading for ``mdoc.transport`` on this board."""
    from appliance.devices.mdoc_transport import mdl_available

    why_not = mdl_available(transport)
    if why_not is not None:
        off = (
            OFF_CONFIG
            if transport == "none"
            else OFF_TRANSPORT
            if not transport.startswith("bumble:")
            else OFF_STACK
        )
        return MdlState(transport, off, None, why_not)
    if transport == "bumble:local":
        return MdlState(transport, None, "emulated", "emulated controller (tests, demo)")
    match = _HCI_SOCKET.fullmatch(transport)
    if match is None:
        return MdlState(transport, None, None, f"controller {transport} (not probed)")
    name = f"hci{int(match.group(1))}"
    controller = sys_bluetooth / name
    if not controller.exists():
        return MdlState(
            transport,
            OFF_CONTROLLER,
            None,
            f"no Bluetooth controller {name}: mDL is off, other formats work",
        )
    if _blocked(controller):
        return MdlState(
            transport,
            OFF_BLOCKED,
            name,
            f"Bluetooth controller {name} is blocked (rfkill unblock bluetooth)",
        )
    return MdlState(transport, None, name, f"Bluetooth controller {name} present")


def _blocked(controller: Path) -> bool:
    """The controller's radio switched off by software or a switch (its rfkill entries)."""
    for switch in controller.glob("rfkill*"):
        for kind in ("soft", "hard"):
            try:
                if (switch / kind).read_text().strip() == "1":
                    return True
            except OSError:
                continue
    return False
