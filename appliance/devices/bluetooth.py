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
# (extra 'mdl') is not installed, or the board has no controller at that index.
OFF_CONFIG, OFF_TRANSPORT, OFF_STACK, OFF_CONTROLLER = "config", "transport", "stack", \
    "controller"


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
        off = OFF_CONFIG if transport == "none" else OFF_TRANSPORT \
            if not transport.startswith("bumble:") else OFF_STACK
        return MdlState(transport, off, None, why_not)
    if transport == "bumble:local":
        return MdlState(transport, None, "emulated", "emulated controller (tests, demo)")
    match = _HCI_SOCKET.fullmatch(transport)
    if match is None:
        return MdlState(transport, None, None, f"controller {transport} (not probed)")
    name = f"hci{int(match.group(1))}"
    if not (sys_bluetooth / name).exists():
        return MdlState(transport, OFF_CONTROLLER, None,
                        f"no Bluetooth controller {name}: mDL is off, other formats work")
    return MdlState(transport, None, name, f"Bluetooth controller {name} present")
