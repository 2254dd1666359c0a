"""Where the Bumble device of an mdoc session comes from: the board's controller or an
emulated one (spec mdl-reader s.8).

- ``hci_socket_factory("hci-socket:0")``: a fresh Bumble device per session on the board's
  controller (Bumble owns it: bluetoothd is off and the reader has CAP_NET_ADMIN).
- ``LocalRadio``: Bumble's in-process ``LocalLink`` of emulated controllers, which tests and
  the demo share with the holder simulator (no radio, one process, one event loop).

Each factory returns the powered-on device and the coroutine function that releases it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Awaitable, Callable

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from appliance.core.errors import TransportFailed

Release = Callable[[], Awaitable[None]]
DeviceFactory = Callable[[], Awaitable[tuple[Device, Release]]]
# The appliance's own random static address on the board's controller (a device, not a
# person: nothing to hide by rotating it).
READER_ADDRESS = "F0:F1:F2:F3:F4:F5"


class LocalRadio:
    """Bumble's in-process ``LocalLink``: emulated controllers in one process and one event
    loop (the reader's and the holder simulator's), no radio. Each device leaves the link
    when its session closes."""

    def __init__(self) -> None:
        self.link = LocalLink()
        self._numbers = itertools.count(1)
        self._guests: list[Callable[[], Awaitable[Release]]] = []

    def invite(self, start: Callable[[], Awaitable[Release]]) -> None:
        """Have ``start()`` (returning its ``stop``) run in the next reader session's event
        loop, before the reader's device: how a simulated phone joins a session that runs
        on another thread (the kiosk's worker), since the link has one loop."""
        self._guests.append(start)

    async def reader_device(self) -> tuple[Device, Release]:
        """The appliance's device for one session, with the invited guests started first
        (and stopped when the session releases its device)."""
        guests, self._guests = self._guests, []
        stops = [await start() for start in guests]
        device, leave = await self.device("appliance")

        async def leave_all() -> None:
            await leave()
            for stop in stops:
                with contextlib.suppress(Exception):
                    await stop()

        return device, leave_all

    async def device(self, name: str = "appliance") -> tuple[Device, Release]:
        number = next(self._numbers)
        address = ":".join([f"{number % 256:02X}"] * 5 + [f"{(number >> 8) % 256:02X}"])
        controller = Controller(name, link=self.link, public_address=address)
        device = Device(
            name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller))
        )
        await device.power_on()

        async def leave() -> None:
            with contextlib.suppress(Exception):
                await device.power_off()
            if controller in self.link.controllers:
                self.link.remove_controller(controller)

        return device, leave


def hci_socket_factory(spec: str) -> DeviceFactory:
    """A fresh Bumble device per session on the board's controller (``hci-socket:0``), or
    on any HCI transport Bumble opens by name (``tcp-client:HOST:PORT``: a test's emulated
    controller driven by a radio service in another process)."""

    async def make() -> tuple[Device, Release]:
        from bumble.transport import open_transport

        try:
            hci = await open_transport(spec)
        except Exception as e:  # any controller fault is a transport fault
            raise TransportFailed(f"Bluetooth controller {spec}: {e}") from e
        try:
            device = Device.with_hci("appliance", Address(READER_ADDRESS), hci.source, hci.sink)
            await device.power_on()
        except BaseException as e:  # a deadline cancels us here too: never leak the socket
            with contextlib.suppress(Exception):
                await hci.close()
            if isinstance(e, Exception):
                raise TransportFailed(f"Bluetooth controller {spec}: {e}") from e
            raise

        async def release() -> None:
            with contextlib.suppress(Exception):
                await device.power_off()
            with contextlib.suppress(Exception):
                await hci.close()

        return device, release

    return make
