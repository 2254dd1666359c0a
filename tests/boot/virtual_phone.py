"""A virtual phone and a virtual controller for the booted image (make test-boot).

The guest has no radio. The kernel's ``hci_vhci`` module turns /dev/vhci into a Bluetooth
controller that the kernel registers as ``hciN`` like a board's own; the program on the other
end of /dev/vhci is Bumble's emulated ``Controller``, here on a ``LocalLink`` shared with a
second emulated controller that the holder simulator (``appliance.tools.holder_ble``) drives as
the phone. So the appliance reaches the phone through the real kernel: ``bumble:hci-socket:N``,
the HCI user channel and CAP_NET_ADMIN, exactly its path on a Pi, with Bumble's link in place
of the air.

The phone holds the demo authority's mDL (``appliance.tools.demo_mdl``: the IACA the device's
trust data carries, from the keys copied into the guest) and shows one QR engagement for the
whole boot. The simulated camera loads its pictures once, when the kiosk starts, so the
engagement is made ahead on the build host (``new_identity``: the phone's EDeviceKey and
service UUID, kept in a file the guest's phone loads) and its QR is one of the camera's
pictures from the converge on. The phone itself is started by the guest check once the
system is up, after the kiosk and the radio (its imports then charge no shared file's page
cache to its own cgroup first, and it is off the boot's critical path); until the kernel has
its controller, the kiosk's mDL scans find no controller. Each reader session gets a fresh
``HolderSession`` on the one engagement (the reader's fresh EReaderKey makes each session's
keys new), and the phone advertises again after every disconnection. A real phone would
show a new QR per session; the camera cannot.

Runs as root in the guest under the appliance's venv (it needs Bumble): ``python
virtual_phone.py --keys DIR --identity FILE``. Stopping it (SIGTERM) closes /dev/vhci, and
the kernel drops the controller: a board without Bluetooth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc.engagement import BleMode
from appliance.devices.ble_bumble import advertising_data, bumble_uuid
from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.mdoc_transport import Reassembler
from appliance.tools.holder_ble import ADVERTISING_MS, MAX_INBOUND, SimulatedPhone
from appliance.tools.holder_mdoc import HolderSession, device_engagement, engagement_text

log = logging.getLogger("virtual_phone")
SYS_BLUETOOTH = Path("/sys/class/bluetooth")
BOARD_ADDRESS = "C0:DE:C0:DE:C0:01"  # the virtual board controller's public address


Identity = tuple[ec.EllipticCurvePrivateKey, bytes]  # EDeviceKey, peripheral service UUID


def new_identity(path: Path) -> Identity:
    """A phone's engagement made ahead, kept in ``path`` (private: it holds the key)."""
    key, service = ec.generate_private_key(ec.SECP256R1()), uuid.uuid4().bytes
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_text(json.dumps({"e_device_key": pem.decode(), "uuid": service.hex()}))
    path.chmod(0o600)
    return key, service


def load_identity(path: Path) -> Identity:
    """The identity ``new_identity`` kept (in the guest: the phone shows the QR made ahead)."""
    found = json.loads(path.read_text())
    key = serialization.load_pem_private_key(found["e_device_key"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, bytes.fromhex(found["uuid"])


def engagement_of(identity: Identity) -> bytes:
    """The DeviceEngagement (peripheral server mode) the phone with ``identity`` shows."""
    key, service = identity
    return device_engagement(key.public_key(), peripheral_uuid=service)


class ReusablePhone(SimulatedPhone):
    """A SimulatedPhone that answers session after session on the one engagement it shows
    (``identity``, or one of its own): each connection starts a fresh HolderSession, and it
    advertises again when the reader disconnects (peripheral server mode)."""

    def __init__(self, radio: LocalRadio, wallet: Any, identity: Identity | None = None) -> None:
        super().__init__(radio, wallet, modes=(BleMode.PERIPHERAL_SERVER,))
        if identity is not None:
            self.e_device_key = identity[0]
            self.uuids = {BleMode.PERIPHERAL_SERVER: identity[1]}
            self.engagement = engagement_of(identity)
            self.text = engagement_text(self.engagement)
            self.session = HolderSession(self.e_device_key, self.engagement)
        self.sessions = 0

    def _on_connection(self, connection: Any) -> None:
        super()._on_connection(connection)
        self.sessions += 1
        self.session = HolderSession(self.e_device_key, self.engagement)
        self._inbound = Reassembler(MAX_INBOUND)
        self._answered = False
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self._spawn(self._advertise()))

    async def _advertise(self) -> None:
        if self._device is None:
            return
        service = bumble_uuid(self.uuids[BleMode.PERIPHERAL_SERVER])
        try:
            await self._device.start_advertising(
                advertising_data=advertising_data(service),
                advertising_interval_min=ADVERTISING_MS,
                advertising_interval_max=ADVERTISING_MS,
            )
        except Exception as e:  # logged: the next reader finds no phone
            log.warning("advertising again failed: %s", e)


def write_png(text: str, path: Path) -> None:
    """The phone's screen as the camera sees it (made on the build host, at the converge)."""
    from PIL import Image

    from appliance.tools.demo import render_qr_frame

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    Image.fromarray(render_qr_frame(text)).save(partial, format="PNG")
    partial.chmod(0o644)
    partial.replace(path)


def controllers() -> set[str]:
    return {p.name for p in SYS_BLUETOOTH.glob("hci*")} if SYS_BLUETOOTH.is_dir() else set()


async def wait_for_controller(before: set[str], timeout_s: float) -> str:
    """The hciN the kernel registered for our /dev/vhci (new since ``before``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = sorted(controllers() - before)
        if new:
            return new[0]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no new controller in {SYS_BLUETOOTH} within {timeout_s:.0f} s")


class CommandClock:
    """Between the transport and the controller: when the host last sent a packet. The
    kernel initialises a new controller at once (a score of commands, each with a 2 s
    deadline; one missed and it stays half set up, refusing the HCI user channel): the log
    says when the kernel has gone quiet, and with how many packets."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.last = time.monotonic()
        self.packets = 0

    def on_packet(self, packet: bytes) -> None:
        self.last = time.monotonic()
        self.packets += 1
        self.controller.on_packet(packet)

    async def quiet(self, quiet_s: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() - self.last < quiet_s or not self.packets:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel still setting up the controller ({self.packets})")
            await asyncio.sleep(0.1)


async def run(args: argparse.Namespace) -> None:
    from bumble.controller import Controller
    from bumble.transport import open_transport

    from appliance.tools.demo_mdl import prepare_mdl

    # Everything slow first: once /dev/vhci is open the event loop must answer the kernel.
    mdl = prepare_mdl(args.keys)  # the authority's IACA and signer; a fresh mDL
    radio = LocalRadio()
    phone = ReusablePhone(radio, mdl.wallet, load_identity(args.identity))
    await phone.start()
    before = controllers()
    hci = await open_transport(f"vhci:{args.vhci}")
    board = Controller(
        "board",
        host_source=hci.source,
        host_sink=hci.sink,
        link=radio.link,
        public_address=BOARD_ADDRESS,
    )
    clock = CommandClock(board)
    hci.source.set_packet_sink(clock)
    name = await wait_for_controller(before, args.timeout)
    await clock.quiet(2.5, args.timeout)
    log.info("controller %s set up (%d packets), phone advertising", name, clock.packets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping after %d sessions: %s", phone.sessions, phone.events[-8:])
    await phone.stop()
    await hci.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=Path, required=True, help="the demo authority's keys folder")
    p.add_argument("--identity", type=Path, required=True, help="made by new_identity()")
    p.add_argument("--vhci", default="/dev/vhci")
    p.add_argument("--timeout", type=float, default=30.0, help="for the kernel's controller")
    args = p.parse_args()
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(name)s: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
