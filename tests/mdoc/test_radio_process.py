"""`appliance mdl-radio` as the process it is on a device (RADIO.md): exit 64 on a
configuration with nothing to serve; READY=1 once the socket listens (mode 0660), watchdog
pings, sessions for the kiosk, SIGTERM ends a running session (State 0x02, disconnect) and
exits 0 with the socket gone; after SIGKILL the stale socket costs one session and the next
radio replaces it. The controller is an emulated one in this process, on the phone's link,
that the subprocess drives over Bumble's tcp-client HCI transport, as it drives hci-socket
on the board."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from holder_sim import ROOMY, TestWallet
from radio_sim import TcpController, client, wait_for

from appliance.cli import main
from appliance.core.credential.mdoc.engagement import BleMode
from appliance.core.reasons import Outcome, Reason
from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc
from appliance.tools.holder_mdoc import Behaviour, Misbehaviour

SETTINGS = SessionSettings(deadlines=ROOMY)


@pytest.fixture(scope="module")
def wallet() -> TestWallet:
    return TestWallet()


@pytest.fixture()
def controller() -> Iterator[TcpController]:
    tcp = TcpController()
    yield tcp
    tcp.close()


def _config(tmp_path: Path, **mdoc: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text("[mdoc]\n" + "".join(f'{k} = "{v}"\n' for k, v in mdoc.items()))
    return path


@pytest.mark.parametrize(
    ("mdoc", "why"),
    [
        ({"transport": "bumble:hci-socket:0"}, "radio_socket is empty"),
        ({"transport": "none", "radio_socket": "/tmp/r.sock"}, "mdoc.transport = none"),
        ({"transport": "bleak", "radio_socket": "/tmp/r.sock"}, "unknown mdoc.transport"),
        ({"transport": "bumble:local", "radio_socket": "/tmp/r.sock"}, "in-process only"),
        (
            {"transport": "bumble:hci-socket:0", "radio_socket": "/nonexistent/radio.sock"},
            "cannot listen on mdoc.radio_socket",
        ),
    ],
)
def test_nothing_to_serve_exits_64_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mdoc: dict, why: str
) -> None:
    assert main(["mdl-radio", "--config", str(_config(tmp_path, **mdoc))]) == 64
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1


class Radio:
    """`appliance mdl-radio` in a subprocess, with a NOTIFY_SOCKET of the test's."""

    def __init__(self, tmp_path: Path, transport: str, name: str = "radio") -> None:
        self.sock = tmp_path / "radio.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / f"{name}.notify"))
        config = _config(tmp_path, transport=transport, radio_socket=str(self.sock))
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(tmp_path / f"{name}.notify"),
            "WATCHDOG_USEC": "200000",
        }
        env.pop("WATCHDOG_PID", None)
        appliance = Path(sys.executable).with_name("appliance")
        self.proc = subprocess.Popen(
            [str(appliance), "mdl-radio", "--config", str(config)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.messages: list[str] = []
        # Read notifications as they come, as systemd does: a full datagram queue would
        # make the radio's sd_notify wait and drop what it says.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                self.messages.append(self.notify.recv(256).decode())
        except OSError:
            return

    def expect(self, message: str) -> None:
        """Wait until the radio said ``message`` (a bound for a hung radio, not a timing)."""
        assert wait_for(lambda: message in self.messages, 60), (message, self.messages[-5:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.notify.close()


def _session(wallet: Any, controller: TcpController, sock: Path, **phone: Any) -> Any:
    p = controller.phone(wallet, **phone)
    try:
        result = asyncio.run(read_mdoc(p.text, client(sock), SETTINGS, wallet.judge))
    finally:
        controller.stop_phone(p)
    return result.verdict.outcome, result.verdict.reason


def test_radio_process_serves_sessions_and_stops_cleanly_on_sigterm(
    wallet: TestWallet, controller: TcpController, tmp_path: Path
) -> None:
    radio = Radio(tmp_path, controller.transport)
    try:
        radio.expect("READY=1")
        assert stat.S_IMODE(radio.sock.stat().st_mode) == 0o660
        radio.expect("WATCHDOG=1")  # pets from its loop at half WATCHDOG_USEC
        for mode in (BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT):
            assert _session(wallet, controller, radio.sock, modes=(mode,)) == (
                Outcome.PASS,
                Reason.OK,
            )
        # SIGTERM while a session runs: the session ends, the phone is let go, exit 0.
        phone = controller.phone(wallet, behaviour=Behaviour(Misbehaviour.STALL))
        results: list[Any] = []

        def kiosk() -> None:
            results.append(
                asyncio.run(read_mdoc(phone.text, client(radio.sock), SETTINGS, wallet.judge))
            )

        worker = threading.Thread(target=kiosk)
        worker.start()
        assert wait_for(lambda: "request" in phone.events)
        radio.proc.send_signal(signal.SIGTERM)
        assert radio.proc.wait(30) == 0
        worker.join(30)
        radio.expect("STOPPING=1")
        assert not radio.sock.exists()
        verdict = results[0].verdict
        assert (verdict.outcome, verdict.reason) == (
            Outcome.UNVERIFIABLE,
            Reason.MDOC_TRANSPORT_FAILED,
        )
        assert wait_for(lambda: "disconnected" in phone.events)
        assert "state end" in phone.events  # State 0x02 before the radio hung up
        controller.stop_phone(phone)
        assert "Traceback" not in radio.proc.stderr.read()  # type: ignore[union-attr]
    finally:
        radio.stop()


def test_a_killed_radio_costs_one_session_and_its_successor_takes_the_socket(
    wallet: TestWallet, controller: TcpController, tmp_path: Path
) -> None:
    first = Radio(tmp_path, controller.transport, "first")
    try:
        first.expect("READY=1")
        first.proc.kill()  # SIGKILL: no clean-up, the socket file stays
        first.proc.wait(30)
        assert first.sock.exists()
        assert _session(wallet, controller, first.sock) == (
            Outcome.UNVERIFIABLE,
            Reason.MDOC_TRANSPORT_FAILED,  # a socket nobody listens on refuses
        )
    finally:
        first.stop()
    second = Radio(tmp_path, controller.transport, "second")  # the same socket path
    try:
        second.expect("READY=1")
        assert _session(wallet, controller, second.sock) == (Outcome.PASS, Reason.OK)
    finally:
        second.stop()
