"""The radio split (issue 23, RADIO.md): the kiosk's sessions through the radio service over
a real Unix socket, the service on its own thread and loop driving an emulated controller that
the simulated phone shares. A phone, a radio or a socket that misbehaves costs that session
only; the kiosk never sees an exception and the next session works."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import stat
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from holder_sim import ROOMY, TestWallet, stalled
from issuer_support import NOW
from radio_sim import MAX_MESSAGE, RadioThread, client, wait_for

from appliance.config import Config, MdocConfig
from appliance.core.credential.mdoc.engagement import BleMode, choose_ble, parse_engagement
from appliance.core.credential.mdoc.session import ReaderSession
from appliance.core.errors import TransportFailed
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint
from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.mdoc_transport import Deadlines, open_controller
from appliance.devices.radio_client import RadioClient
from appliance.devices.radio_wire import encode
from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc
from appliance.kiosk.mdoc_session import mdoc_reader, run_session
from appliance.kiosk.verification import VerificationService
from appliance.tools.holder_ble import SimulatedPhone
from appliance.tools.holder_mdoc import Behaviour, Misbehaviour
from appliance.trust.clock import FixedClock

PERIPHERAL, CENTRAL = BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT
SETTINGS = SessionSettings(deadlines=ROOMY, max_response_bytes=MAX_MESSAGE)


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def record(self, verdict: Any, *, now: float, source: str, trust: Any) -> None:
        self.records.append(verdict)


@pytest.fixture(scope="module")
def wallet() -> TestWallet:
    return TestWallet()


@pytest.fixture()
def sock(tmp_path: Path) -> Path:
    return tmp_path / "radio.sock"


def _verdict(result: Any) -> tuple[Outcome, Reason]:
    return result.verdict.outcome, result.verdict.reason


def _read(text: str, transport: Any, wallet: Any, settings: SessionSettings = SETTINGS) -> Any:
    return asyncio.run(read_mdoc(text, transport, settings, wallet.judge))


def _config(sock: Path, transport: str = "bumble:local") -> Config:
    return Config(
        mdoc=MdocConfig(
            transport=transport,
            radio_socket=str(sock),
            scan_timeout_s=ROOMY.scan_s,
            connect_timeout_s=ROOMY.connect_s,
            connect_retries=ROOMY.connect_retries,
            discovery_timeout_s=ROOMY.discovery_s,
            first_response_timeout_s=ROOMY.first_response_s,
            session_timeout_s=ROOMY.session_s,
        )
    )


def _service(wallet: TestWallet) -> tuple[VerificationService, RecordingAudit]:
    audit = RecordingAudit()
    service = VerificationService(
        wallet.trust, FixedClock(NOW.timestamp()), Checkpoint(check_staleness=False), audit=audit
    )
    return service, audit


# -- sessions through the radio --------------------------------------------------------------


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_kiosk_session_through_the_radio_passes_in_both_modes(
    wallet: TestWallet, sock: Path, mode: BleMode
) -> None:
    radio = LocalRadio()
    with RadioThread(sock, radio) as radio_thread:
        phone = SimulatedPhone(radio, wallet, modes=(mode,))
        reader = mdoc_reader(_config(sock))  # the kiosk's reader from configuration
        service, audit = _service(wallet)
        result = run_session(phone.attach(), reader, service, "camera")
        assert _verdict(result) == (Outcome.PASS, Reason.OK)
        assert result.facts.document_number == "UT-123"
        assert [(v.outcome, v.profile) for v in audit.records] == [(Outcome.PASS, "MDOC")]
        # The kiosk's goodbye went through the radio: status 20, State 0x02, hang-up.
        assert phone.events[-3:] == ["termination", "state end", "disconnected"]
        assert phone.mtu == 515
        assert radio_thread.call(lambda: radio_thread.service.busy) is False


def test_holder_stall_is_a_timeout_on_the_radios_deadline(
    wallet: TestWallet, sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")
    radio = LocalRadio()
    with RadioThread(sock, radio, stalled(first_response_s=0.3)):
        phone = SimulatedPhone(radio, wallet, behaviour=Behaviour(Misbehaviour.STALL))
        result = _read(phone.attach(), client(sock), wallet)
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TIMEOUT)
    assert "first response chunk not within 0.3 s" in caplog.text
    assert "termination" in phone.events  # the kiosk's close still reached the phone


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_holder_disconnect_mid_transfer_is_transport_failed(
    wallet: TestWallet, sock: Path, mode: BleMode
) -> None:
    radio = LocalRadio()
    with RadioThread(sock, radio):
        behaviour = Behaviour(Misbehaviour.DISCONNECT_MID)
        phone = SimulatedPhone(radio, wallet, modes=(mode,), behaviour=behaviour)
        result = _read(phone.attach(), client(sock), wallet)
        assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)
        # The radio is free again at once: the next phone reads.
        again = SimulatedPhone(radio, wallet, modes=(mode,))
        assert _verdict(_read(again.attach(), client(sock), wallet)) == (Outcome.PASS, Reason.OK)


def test_the_kiosks_whole_session_deadline_hangs_up_and_the_radio_lets_the_phone_go(
    wallet: TestWallet, sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")
    radio = LocalRadio()
    with RadioThread(sock, radio) as radio_thread:
        phone = SimulatedPhone(radio, wallet, behaviour=Behaviour(Misbehaviour.STALL))
        settings = dataclasses.replace(SETTINGS, deadlines=stalled(session_s=0.5))
        result = _read(phone.attach(), client(sock, settings.deadlines), wallet, settings)
        assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TIMEOUT)
        assert "whole session over 0.5 s" in caplog.text
        assert wait_for(lambda: "disconnected" in phone.events)
        if "state start" in phone.events:  # the deadline came after the session started
            assert "state end" in phone.events
        assert wait_for(lambda: not radio_thread.call(lambda: radio_thread.service.busy))


def test_oversized_response_is_too_large_from_the_radios_limit(
    wallet: TestWallet, sock: Path
) -> None:
    radio = LocalRadio()
    with RadioThread(sock, radio):
        behaviour = Behaviour(Misbehaviour.OVERSIZED, oversized_bytes=40_000)
        phone = SimulatedPhone(radio, wallet, behaviour=behaviour)
        settings = dataclasses.replace(SETTINGS, max_response_bytes=16_384)
        result = _read(phone.attach(), client(sock), wallet, settings)
    assert _verdict(result) == (Outcome.FAIL, Reason.TOO_LARGE)


def test_radio_stopped_mid_session_costs_that_session_and_the_next_one_works(
    wallet: TestWallet, sock: Path
) -> None:
    radio = LocalRadio()
    radio_thread = RadioThread(sock, radio).start()
    phone = SimulatedPhone(radio, wallet, behaviour=Behaviour(Misbehaviour.STALL))
    text = phone.attach()
    results: list[Any] = []
    kiosk = threading.Thread(target=lambda: results.append(_read(text, client(sock), wallet)))
    kiosk.start()
    try:
        assert wait_for(lambda: "request" in phone.events)  # the session is mid-air
        radio_thread.stop()  # as SIGTERM: the running session ends, the socket goes
    finally:
        kiosk.join(30)
    assert _verdict(results[0]) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)
    assert "state end" in phone.events and phone.events[-1] == "disconnected"
    assert not sock.exists()
    # While the radio is away the kiosk says mDL is unavailable, not a crash.
    assert _verdict(_read(SimulatedPhone(radio, wallet).text, client(sock), wallet)) == (
        Outcome.UNVERIFIABLE,
        Reason.MDOC_NO_SUPPORTED_TRANSPORT,
    )
    with RadioThread(sock, radio):  # back (systemd restarted it)
        again = SimulatedPhone(radio, wallet)
        assert _verdict(_read(again.attach(), client(sock), wallet)) == (Outcome.PASS, Reason.OK)


def test_kiosk_hanging_up_mid_session_ends_the_ble_session(wallet: TestWallet, sock: Path) -> None:
    """The kiosk's connection drops while the radio waits for the phone: the radio cancels
    the step, ends the BLE session (State 0x02, disconnect) and is free for the next."""
    radio = LocalRadio()
    with RadioThread(sock, radio) as radio_thread:
        phone = SimulatedPhone(radio, wallet, behaviour=Behaviour(Misbehaviour.STALL))
        text = phone.attach()

        async def hang_up() -> None:
            engagement = parse_engagement(text)
            option = choose_ble(engagement, central_client_mode=True)
            session = ReaderSession.start(engagement, "checkpoint")
            link = RadioClient(sock, ROOMY, MAX_MESSAGE)
            await link.connect(engagement, option)
            await link.send(session.establishment())
            waiting = asyncio.ensure_future(link.receive(MAX_MESSAGE))
            await asyncio.sleep(0.05)
            assert link._writer is not None
            link._writer.transport.abort()  # the kiosk process dies
            with pytest.raises(TransportFailed):
                await waiting

        asyncio.run(hang_up())
        assert wait_for(lambda: "disconnected" in phone.events)
        assert "state end" in phone.events
        assert wait_for(lambda: not radio_thread.call(lambda: radio_thread.service.busy))
        again = SimulatedPhone(radio, wallet)
        assert _verdict(_read(again.attach(), client(sock), wallet)) == (Outcome.PASS, Reason.OK)


def test_a_second_kiosk_connection_while_a_session_runs_is_busy(
    wallet: TestWallet, sock: Path
) -> None:
    radio = LocalRadio()
    with RadioThread(sock, radio):
        phone = SimulatedPhone(radio, wallet)
        text = phone.attach()

        async def two_kiosks() -> tuple[Any, Any]:
            engagement = parse_engagement(text)
            session = ReaderSession.start(engagement, "checkpoint")
            first = RadioClient(sock, ROOMY, MAX_MESSAGE)
            await first.connect(engagement, choose_ble(engagement, central_client_mode=True))
            # The radio is connected to the first phone: another kiosk connection is busy.
            other = SimulatedPhone(radio, wallet).text
            second = await read_mdoc(other, client(sock), SETTINGS, wallet.judge)
            # ... and the first session carries on undisturbed.
            await first.send(session.establishment())
            reply = session.receive(await first.receive(MAX_MESSAGE))
            await first.close(session.termination())
            assert reply.response is not None
            return second, wallet.judge(reply.response, session)

        second, result = asyncio.run(two_kiosks())
    assert _verdict(second) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)
    assert _verdict(result) == (Outcome.PASS, Reason.OK)


# -- mDL off -------------------------------------------------------------------------------


def test_no_radio_socket_is_no_supported_transport(wallet: TestWallet, sock: Path) -> None:
    reader = mdoc_reader(_config(sock, transport="bumble:hci-socket:0"))
    assert reader.off is None  # the radio decides per session
    service, audit = _service(wallet)
    result = run_session(SimulatedPhone(LocalRadio(), wallet).text, reader, service, "camera")
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_NO_SUPPORTED_TRANSPORT)
    assert [v.reason for v in audit.records] == [Reason.MDOC_NO_SUPPORTED_TRANSPORT]


def test_radio_without_a_controller_answers_unavailable(
    wallet: TestWallet, sock: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The radio checks the controller every session (sysfs): none on this board means mDL
    is off for the session, with why, not MDOC_TRANSPORT_FAILED on every scan."""
    empty_sysfs = tmp_path / "sys-class-bluetooth"
    empty_sysfs.mkdir()

    def board_without_bluetooth() -> Any:
        return open_controller("bumble:hci-socket:0", ROOMY, sys_bluetooth=empty_sysfs)

    with RadioThread(sock, open_link=board_without_bluetooth):
        result = _read(SimulatedPhone(LocalRadio(), wallet).text, client(sock), wallet)
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_NO_SUPPORTED_TRANSPORT)
    assert "no Bluetooth controller hci0" in caplog.text


# -- a hostile radio -----------------------------------------------------------------------


async def _fake_radio(path: Path, answer: Any) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        finally:
            writer.close()

    return await asyncio.start_unix_server(handle, path=str(path))


async def _garbage(reader: Any, writer: Any) -> None:
    await reader.read(100)
    writer.write(b"HTTP/1.1 200 OK\r\n\r\n" * 10)
    await writer.drain()


async def _huge_prefix(reader: Any, writer: Any) -> None:
    await reader.read(100)
    writer.write(struct.pack(">II", 16, 2**31) + b"{}")
    await writer.drain()
    await asyncio.sleep(30)


async def _unknown_kind(reader: Any, writer: Any) -> None:
    await reader.read(100)
    writer.write(encode({"op": "error", "kind": "sulking"}))
    await writer.drain()


async def _hang_up(reader: Any, writer: Any) -> None:
    return


async def _silent(reader: Any, writer: Any) -> None:
    await asyncio.sleep(30)


async def _silent_on_receive(reader: Any, writer: Any) -> None:
    """Answers connect and send, then never again (a radio stuck in a session)."""
    for _ in range(2):
        header = await reader.readexactly(8)
        head, body = struct.unpack(">II", header)
        await reader.readexactly(head + body)
        writer.write(encode({"op": "ok"}))
        await writer.drain()
    await asyncio.sleep(30)


# Short client deadlines: the radio's for each step (connect ~1.5 s, a step 0.5 s).
SHORT = Deadlines(
    scan_s=0.1,
    connect_s=0.1,
    connect_retries=0,
    discovery_s=0.1,
    first_response_s=0.5,
    chunk_gap_s=0.5,
    session_s=0.5,
    close_s=0.1,
)


@pytest.mark.parametrize(
    ("answer", "reason", "logged"),
    [
        (_garbage, Reason.MDOC_TRANSPORT_FAILED, "header of"),
        (_huge_prefix, Reason.MDOC_TRANSPORT_FAILED, "body of 2147483648 bytes"),
        (_unknown_kind, Reason.MDOC_TRANSPORT_FAILED, "unknown kind"),
        (_hang_up, Reason.MDOC_TRANSPORT_FAILED, "transport failed"),
        (_silent, Reason.MDOC_TIMEOUT, "no answer to connect within"),
        (_silent_on_receive, Reason.MDOC_TIMEOUT, "no answer to receive within"),
    ],
)
def test_a_hostile_radio_costs_the_session_only(
    wallet: TestWallet,
    sock: Path,
    answer: Any,
    reason: Reason,
    logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")
    text = SimulatedPhone(LocalRadio(), wallet).text
    # The kiosk's own deadline for the whole session is long: the client's per-call
    # deadline is what ends a silent radio.
    settings = dataclasses.replace(SETTINGS, deadlines=dataclasses.replace(SHORT, session_s=30))

    async def go() -> Any:
        server = await _fake_radio(sock, answer)
        try:
            link = lambda: RadioClient(sock, SHORT, MAX_MESSAGE, margin_s=0.1)  # noqa: E731
            return await read_mdoc(text, link, settings, wallet.judge)
        finally:
            server.close()

    result = asyncio.run(go())
    assert _verdict(result) == (Outcome.UNVERIFIABLE, reason)
    assert logged in caplog.text
    assert "whole session over" not in caplog.text  # the call's own deadline ended it


def test_a_socket_file_nobody_listens_on_is_transport_failed(
    wallet: TestWallet, sock: Path
) -> None:
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))  # bound, never listening: connect is refused
    try:
        result = _read(SimulatedPhone(LocalRadio(), wallet).text, client(sock), wallet)
    finally:
        stale.close()
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)


def test_the_radio_survives_garbage_and_serves_the_next_kiosk(
    wallet: TestWallet, sock: Path
) -> None:
    radio = LocalRadio()
    with RadioThread(sock, radio) as radio_thread:

        async def hostile_kiosks() -> list[bytes]:
            answers = []
            for junk in (
                b"\x00" * 8,
                struct.pack(">II", 4, 2**31) + b"{}{}",
                struct.pack(">II", 5, 0) + b"hello",
                encode({"op": "receive", "max_bytes": 5}),  # before any connect
                encode({"op": "connect", "mode": "peripheral_server", "service_uuid": "00"}),
                encode({"op": "send"}, b"x") + b"\xff" * 3,
            ):
                reader, writer = await asyncio.open_unix_connection(str(sock))
                writer.write(junk)
                await writer.drain()
                answers.append(await reader.read(4096))
                writer.close()
            return answers

        answers = asyncio.run(hostile_kiosks())
        assert all(b'"op":"error"' in a and b'"kind":"failed"' in a for a in answers), answers
        assert radio_thread.call(lambda: radio_thread.service.sessions) == 6
        phone = SimulatedPhone(radio, wallet)
        assert _verdict(_read(phone.attach(), client(sock), wallet)) == (Outcome.PASS, Reason.OK)


def test_the_kiosk_loads_no_bluetooth_code_with_a_radio_socket(
    wallet: TestWallet, sock: Path, tmp_path: Path
) -> None:
    """A whole kiosk session through the radio, in a fresh interpreter: PASS, and Bumble
    never imported there (the radio, in this process, has it)."""
    import json
    import subprocess
    import sys

    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(wallet.iaca.trust_document()))
    radio = LocalRadio()
    with RadioThread(sock, radio):
        phone = SimulatedPhone(radio, wallet)
        text = phone.attach()
        code = f"""
import json, sys
from appliance.config import Config, MdocConfig
from appliance.core.verifier import Checkpoint
from appliance.kiosk.mdoc_session import mdoc_reader, run_session
from appliance.kiosk.verification import VerificationService
from appliance.trust.clock import FixedClock
from appliance.trust.source import snapshot_from_document

class Audit:
    def record(self, verdict, *, now, source, trust):
        pass

snapshot = snapshot_from_document(json.loads(open({str(trust)!r}).read()))
service = VerificationService(lambda: snapshot, FixedClock({NOW.timestamp()!r}),
                              Checkpoint(check_staleness=False), audit=Audit())
reader = mdoc_reader(Config(mdoc=MdocConfig(transport="bumble:hci-socket:0",
                                            radio_socket={str(sock)!r})))
result = run_session({text!r}, reader, service, "camera")
print(result.verdict.outcome.value, result.verdict.reason.value)
print(sorted(m for m in sys.modules if m.split(".")[0] == "bumble"))
"""
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
        ).stdout.splitlines()
    assert out == ["PASS OK", "[]"]


def test_the_radio_replaces_a_stale_socket_but_no_live_one_nor_other_file(
    sock: Path, tmp_path: Path
) -> None:
    import socket

    from appliance.core.errors import ConfigError
    from appliance.devices.radio_service import RadioService

    def never() -> Any:
        raise AssertionError("no session here")

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))  # left behind by a radio that was killed
    stale.close()
    with RadioThread(sock, open_link=never):
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        with pytest.raises(ConfigError, match="another radio service is already listening"):
            asyncio.run(RadioService(never, ROOMY, MAX_MESSAGE).listen(sock))
        assert stat.S_ISSOCK(sock.stat().st_mode)  # the live radio keeps its socket
    assert not sock.exists()
    for other in (tmp_path / "file", tmp_path / "link"):
        if other.name == "file":
            other.write_text("not a socket")
        else:
            other.symlink_to(tmp_path / "file")
        with pytest.raises(ConfigError, match="not a socket"):
            asyncio.run(RadioService(never, ROOMY, MAX_MESSAGE).listen(other))
        assert other.exists()  # left alone
