"""The radio split in one test process (issue 23): the radio service on its own thread and
event loop, driving an emulated controller on a ``LocalRadio`` that a simulated phone joins
(``phone.attach()``), and the kiosk's side talking to it over a real Unix socket.

    radio = LocalRadio()
    with RadioThread(tmp_path / "radio.sock", radio) as service:
        text = SimulatedPhone(radio, wallet).attach()
        result = asyncio.run(read_mdoc(text, client(service.path), SETTINGS, wallet.judge))
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from holder_sim import ROOMY

from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.mdoc_transport import Deadlines, open_controller
from appliance.devices.radio_client import RadioClient
from appliance.devices.radio_service import RadioLink, RadioService

MAX_MESSAGE = 262_144


class RadioThread:
    """``RadioService`` listening on ``path``, its loop on a thread of its own (the
    ``LocalLink`` and the phone live on that loop, as on a device they live in the radio's
    process). ``stop`` closes it as SIGTERM does: the running session ends, the socket goes."""

    def __init__(
        self,
        path: Path,
        radio: LocalRadio | None = None,
        deadlines: Deadlines = ROOMY,
        open_link: Callable[[], RadioLink] | None = None,
    ) -> None:
        self.path = path
        self.radio = radio or LocalRadio()
        self.deadlines = deadlines
        self._open_link = open_link or (
            lambda: open_controller("bumble:local", deadlines, radio=self.radio)
        )
        self.service: RadioService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RadioThread:
        ready = threading.Event()
        failed: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self.service = RadioService(self._open_link, self.deadlines, MAX_MESSAGE)
            try:
                loop.run_until_complete(self.service.listen(self.path))
            except BaseException as e:
                failed.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.service.close())
            loop.close()

        self._thread = threading.Thread(target=main, name="radio-service", daemon=True)
        self._thread.start()
        assert ready.wait(30), "the radio service did not start"
        if failed:
            raise failed[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the radio's loop and return what it gives (read state safely)."""
        assert self._loop is not None
        done = threading.Event()
        out: list[Any] = []
        self._loop.call_soon_threadsafe(lambda: (out.append(fn()), done.set()))
        assert done.wait(30)
        return out[0]

    def __enter__(self) -> RadioThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def client(path: Path, deadlines: Deadlines = ROOMY, **kw: Any) -> Callable[[], RadioClient]:
    """The kiosk's transport factory for one session through the radio at ``path``."""
    return lambda: RadioClient(path, deadlines, MAX_MESSAGE, **kw)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Poll ``predicate`` (state another thread changes) until it holds or time runs out:
    a bound for a hung test, never a measurement."""
    event = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return predicate()


class TcpController:
    """An emulated controller on a ``LocalRadio`` (with the phones), served to another
    process over Bumble's ``tcp-server`` HCI transport: a radio service subprocess drives it
    with ``mdoc.transport = "bumble:tcp-client:127.0.0.1:PORT"``, as it drives the board's
    controller through ``hci-socket`` on a device. Its loop runs on a thread of its own."""

    def __init__(self) -> None:
        self.radio = LocalRadio()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.port = int(self._sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._serve())

    @property
    def transport(self) -> str:
        return f"bumble:tcp-client:127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        from bumble.controller import Controller
        from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

        hci = await open_tcp_server_transport_with_socket(self._sock)
        self._hci = hci
        self.controller = Controller(
            "appliance", host_source=hci.source, host_sink=hci.sink, link=self.radio.link
        )

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(30)

    def phone(self, wallet: Any, **kw: Any) -> Any:
        """A simulated phone on the air (started on this loop); ``stop_phone`` when done."""
        from appliance.tools.holder_ble import SimulatedPhone

        phone = SimulatedPhone(self.radio, wallet, **kw)
        self._run(phone.start())
        return phone

    def stop_phone(self, phone: Any) -> None:
        self._run(phone.stop())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._hci.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._sock.close()
