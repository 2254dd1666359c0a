"""The radio under an mdoc session: one small interface, backends chosen by name.

``MdocTransport`` moves whole messages (SessionEstablishment out, SessionData in) between
the reader and the phone, over BLE in either 18013-5 mode (spec mdl-reader s.3.2); each call
runs under its deadline from ``[mdoc]`` configuration. Failures are exceptions of three kinds
that the session maps one-to-one onto reasons: ``TransportTimeout`` (MDOC_TIMEOUT),
``TransportFailed`` (MDOC_TRANSPORT_FAILED) and ``MessageTooLarge`` (TOO_LARGE).

The 18013-5 framing is here too, pure: a message goes in chunks of at most (MTU - 3) bytes,
each starting 0x01 (more follows) or 0x00 (last); ``Reassembler`` puts them back together
and refuses to hold more than the configured limit. Bumble, the one backend, is imported
only by ``open_controller``, so the kiosk loads no Bluetooth code until a phone shows a QR;
with ``mdoc.radio_socket`` set it loads none at all: ``open_transport`` then gives the client
of the radio service (``radio_client``), the process that owns the controller.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from appliance.core.errors import (
    MessageTooLarge,
    TransportFailed,
    TransportUnavailable,
)

if TYPE_CHECKING:
    from appliance.config import MdocConfig
    from appliance.core.credential.mdoc.engagement import BleOption, Engagement
    from appliance.devices.ble_bumble import BumbleTransport

MORE, LAST = 0x01, 0x00
ATT_HEADER = 3  # opcode + handle: an ATT value holds at most MTU - 3 bytes
MIN_MTU, WANTED_MTU = 23, 515


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds per step (spec s.3.2 defaults); tests shorten them, never sleep through them."""

    scan_s: float = 10.0
    connect_s: float = 5.0
    connect_retries: int = 1
    discovery_s: float = 5.0
    first_response_s: float = 45.0
    chunk_gap_s: float = 5.0
    session_s: float = 90.0
    close_s: float = 2.0

    @classmethod
    def from_config(cls, config: MdocConfig) -> Deadlines:
        return cls(
            config.scan_timeout_s,
            config.connect_timeout_s,
            config.connect_retries,
            config.discovery_timeout_s,
            config.first_response_timeout_s,
            config.chunk_gap_timeout_s,
            config.session_timeout_s,
        )

    @property
    def connect_bound_s(self) -> float:
        """The longest ``connect`` can take in either mode: open the controller, scan (or
        advertise and wait), every connection attempt, discovery."""
        attempts = (self.connect_s + 1.0) * (self.connect_retries + 1)
        return self.connect_s + self.scan_s + attempts + self.connect_s + self.discovery_s

    @property
    def close_bound_s(self) -> float:
        """The longest ``close`` takes: the goodbye, then releasing the controller."""
        return 2 * self.close_s


class MdocTransport(Protocol):
    """One BLE session with one phone; ``close`` is always called, whatever happened."""

    async def connect(self, engagement: Engagement, option: BleOption) -> None:
        """Find the phone (scan, or advertise in central client mode), connect, discover
        the service, subscribe and start (State 0x01)."""

    async def send(self, message: bytes) -> None:
        """One whole message to the phone, chunked to the link's MTU."""

    async def receive(self, max_bytes: int) -> bytes:
        """One whole message from the phone: the first chunk within ``first_response_s``,
        each next one within ``chunk_gap_s``."""

    async def close(self, termination: bytes | None = None) -> None:
        """Send ``termination`` if the link is up, State 0x02, disconnect; never raises."""


def chunks(message: bytes, mtu: int) -> list[bytes]:
    """The ATT values carrying ``message``: (MTU - 3) bytes each, prefix included."""
    size = max(mtu, MIN_MTU) - ATT_HEADER - 1
    parts = [message[i : i + size] for i in range(0, len(message), size)] or [b""]
    return [bytes((MORE,)) + part for part in parts[:-1]] + [bytes((LAST,)) + parts[-1]]


class Reassembler:
    """Chunks in, one message out; bounded by ``max_bytes`` before anything is kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def started(self) -> bool:
        return bool(self._parts)

    def feed(self, value: bytes) -> bytes | None:
        """The whole message after its last chunk, else None; ``TransportFailed`` for a
        chunk without a valid prefix, ``MessageTooLarge`` past the limit."""
        if not value or value[0] not in (MORE, LAST):
            raise TransportFailed("chunk without a 0x00/0x01 prefix")
        self._size += len(value) - 1
        if self._size > self.max_bytes:
            raise MessageTooLarge(f"message over {self.max_bytes} bytes")
        self._parts.append(value[1:])
        if value[0] == MORE:
            return None
        message = b"".join(self._parts)
        self._parts, self._size = [], 0
        return message


def mdl_available(transport: str, *, remote: bool = False) -> str | None:
    """None when ``transport`` can be used here, else why mDL is off (said at start);
    ``remote``: another process (the radio service) drives it, so no stack is needed here."""
    if transport == "none":
        return "mDL reading is off (mdoc.transport = none)"
    if not transport.startswith("bumble:"):
        return f"unknown mdoc.transport {transport!r}"
    if not remote and importlib.util.find_spec("bumble") is None:
        return "mDL reading is off: the Bluetooth stack is not installed (extra 'mdl')"
    return None


def open_transport(
    transport: str,
    deadlines: Deadlines,
    *,
    radio: Any = None,
    radio_socket: str = "",
    max_message_bytes: int = 262_144,
    sys_bluetooth: Path | None = None,
) -> MdocTransport:
    """One session's transport: with ``radio_socket`` (``mdoc.radio_socket``) the client of
    the radio service listening there, else the controller driven here (``open_controller``)."""
    if radio_socket:
        from appliance.devices.radio_client import RadioClient

        return RadioClient(radio_socket, deadlines, max_message_bytes)
    return open_controller(transport, deadlines, radio=radio, sys_bluetooth=sys_bluetooth)


def open_controller(
    transport: str, deadlines: Deadlines, *, radio: Any = None, sys_bluetooth: Path | None = None
) -> BumbleTransport:
    """The backend named by ``mdoc.transport``: ``bumble:hci-socket:N`` on a device,
    ``bumble:local`` in tests and the demo (``radio``: the ``LocalRadio`` it shares).
    The controller is checked first, every session (sysfs, ``bluetooth.mdl_state``): a
    board without one, or with its radio blocked, is ``TransportUnavailable`` with why."""
    from appliance.devices.bluetooth import SYS_BLUETOOTH, mdl_state

    state = mdl_state(transport, sys_bluetooth or SYS_BLUETOOTH)
    if not state.enabled:
        raise TransportUnavailable(state.detail)
    from appliance.devices import ble_bumble

    return ble_bumble.BumbleTransport.open(
        transport.removeprefix("bumble:"), deadlines, radio=radio
    )
