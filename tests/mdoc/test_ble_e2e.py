"""E2E over emulated BLE (spec mdl-reader s.9): the appliance's reader and a simulated phone,
two Bumble controllers on one in-process LocalLink, no radio. Each misbehaviour of the phone
ends in its reason code, within the (shortened) deadline that names it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest
from holder_sim import ROOMY, TestWallet, reader_transport, stalled

from appliance.core.credential.mdoc.engagement import BleMode
from appliance.core.credential.mdoc.verify import MdocResult
from appliance.core.reasons import Outcome, Reason
from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.mdoc_transport import open_transport
from appliance.kiosk.mdoc_flow import APPROVE, CONNECTING, SessionSettings, read_mdoc
from appliance.tools.holder_ble import SimulatedPhone
from appliance.tools.holder_mdoc import Behaviour, Misbehaviour

PERIPHERAL, CENTRAL = BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT
SETTINGS = SessionSettings(deadlines=ROOMY, max_response_bytes=16_384)


@pytest.fixture(scope="module")
def wallet() -> TestWallet:
    return TestWallet()


async def _settle(phone: SimulatedPhone) -> None:
    """Let the phone's side finish reading what the reader sent before it hung up."""
    for _ in range(200):
        if "disconnected" in phone.events:
            return
        await asyncio.sleep(0.01)


def session(
    wallet: Any,
    *,
    modes: tuple[BleMode, ...] = (PERIPHERAL,),
    behaviour: Behaviour | None = None,
    settings: SessionSettings = SETTINGS,
    replay: tuple[bytes, bytes] | None = None,
    judge: Any = None,
) -> tuple[MdocResult, SimulatedPhone, list[str]]:
    events: list[str] = []

    async def run() -> tuple[MdocResult, SimulatedPhone]:
        radio = LocalRadio()
        phone = SimulatedPhone(radio, wallet, modes=modes, behaviour=behaviour, replay=replay)
        async with phone:
            result = await read_mdoc(
                phone.text,
                reader_transport(radio, settings.deadlines),
                settings,
                judge or wallet.judge,
                events.append,
            )
            await _settle(phone)
        return result, phone

    result, phone = asyncio.run(run())
    return result, phone, events


def _verdict(result: MdocResult) -> tuple[Outcome, Reason]:
    return result.verdict.outcome, result.verdict.reason


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_happy_path_in_both_modes(wallet: TestWallet, mode: BleMode) -> None:
    result, phone, events = session(wallet, modes=(mode,))
    assert _verdict(result) == (Outcome.PASS, Reason.OK)
    assert result.facts.device_auth == "mac" and result.facts.document_number == "UT-123"
    assert events == [CONNECTING, APPROVE]
    assert phone.mtu == 515  # asked by the reader (or granted to the phone), s.3.2
    # The reader ended the session as s.3.2 says: status 20, State 0x02, then hung up.
    assert phone.events[-3:] == ["termination", "state end", "disconnected"]
    if mode is PERIPHERAL:
        assert "state start" in phone.events  # the reader wrote State 0x01


def test_where_both_modes_are_offered_peripheral_server_mode_is_used(wallet: TestWallet) -> None:
    result, phone, _ = session(wallet, modes=(PERIPHERAL, CENTRAL))
    assert _verdict(result) == (Outcome.PASS, Reason.OK)
    assert "state start" in phone.events  # written by the reader as GATT client


def test_age_profile(wallet: TestWallet) -> None:
    settings = dataclasses.replace(SETTINGS, profile="age")
    result, _, _ = session(
        wallet, settings=settings, judge=lambda r, s: wallet.judge(r, s, profile="age")
    )
    assert _verdict(result) == (Outcome.PASS, Reason.OK)
    assert result.facts.elements == ("age_over_20",)


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_mtu_23_many_chunks(wallet: TestWallet, mode: BleMode) -> None:
    result, phone, _ = session(wallet, modes=(mode,), behaviour=Behaviour(mtu=23))
    assert _verdict(result) == (Outcome.PASS, Reason.OK)
    assert phone.mtu == 23 and phone.chunks_sent > 100  # 19 bytes of ~2.5 KB per chunk


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_disconnect_after_the_full_response_is_a_normal_end(
    wallet: TestWallet, mode: BleMode
) -> None:
    result, phone, _ = session(
        wallet, modes=(mode,), behaviour=Behaviour(Misbehaviour.DISCONNECT_AFTER)
    )
    assert _verdict(result) == (Outcome.PASS, Reason.OK)
    assert "termination" not in phone.events  # the link was already gone


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_disconnect_mid_transfer(wallet: TestWallet, mode: BleMode) -> None:
    result, _, _ = session(wallet, modes=(mode,), behaviour=Behaviour(Misbehaviour.DISCONNECT_MID))
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)


@pytest.mark.parametrize(
    ("behaviour", "short", "deadline"),
    [
        (
            Behaviour(Misbehaviour.STALL),
            {"first_response_s": 0.3},
            "first response chunk not within 0.3 s",
        ),
        (Behaviour(Misbehaviour.STALL_MID), {"chunk_gap_s": 0.3}, "next chunk not within 0.3 s"),
        (
            Behaviour(Misbehaviour.DRIP, delay_s=0.6),
            {"first_response_s": 0.3},
            "first response chunk not within 0.3 s",
        ),
    ],
)
@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_silent_or_slow_holder_times_out_on_its_deadline(
    wallet: TestWallet,
    behaviour: Behaviour,
    short: dict,
    deadline: str,
    mode: BleMode,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")
    settings = dataclasses.replace(SETTINGS, deadlines=stalled(**short))
    result, phone, _ = session(wallet, modes=(mode,), behaviour=behaviour, settings=settings)
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TIMEOUT)
    assert deadline in caplog.text
    assert "termination" in phone.events  # the reader still ended the session properly


def test_drip_feed_between_chunks_beyond_the_gap(
    wallet: TestWallet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")
    slow_gap = stalled(chunk_gap_s=0.15)
    result, _, _ = session(
        wallet,
        settings=dataclasses.replace(SETTINGS, deadlines=slow_gap),
        behaviour=Behaviour(Misbehaviour.DRIP, delay_s=0.3),
    )
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TIMEOUT)
    assert "next chunk not within 0.15 s" in caplog.text


def test_drip_feed_within_the_gap_still_passes(wallet: TestWallet) -> None:
    result, _, _ = session(wallet, behaviour=Behaviour(Misbehaviour.DRIP, delay_s=0.01))
    assert _verdict(result) == (Outcome.PASS, Reason.OK)


def test_whole_session_deadline(wallet: TestWallet, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")
    short = stalled(session_s=0.5)
    result, _, _ = session(
        wallet,
        settings=dataclasses.replace(SETTINGS, deadlines=short),
        behaviour=Behaviour(Misbehaviour.STALL),
    )
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TIMEOUT)
    assert "whole session over 0.5 s" in caplog.text


@pytest.mark.parametrize(
    ("misbehaviour", "verdict"),
    [
        (Misbehaviour.STATUS_20, (Outcome.UNVERIFIABLE, Reason.MDOC_DECLINED)),
        (Misbehaviour.STATUS_10, (Outcome.UNVERIFIABLE, Reason.MDOC_HOLDER_ERROR)),
        (Misbehaviour.STATUS_11, (Outcome.UNVERIFIABLE, Reason.MDOC_HOLDER_ERROR)),
        (Misbehaviour.OVERSIZED, (Outcome.FAIL, Reason.TOO_LARGE)),
        (Misbehaviour.MALFORMED, (Outcome.FAIL, Reason.MDOC_SESSION_DECRYPT_FAILED)),
        (Misbehaviour.WRONG_COUNTER, (Outcome.FAIL, Reason.MDOC_SESSION_DECRYPT_FAILED)),
        (Misbehaviour.BAD_CHUNK, (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)),
        (Misbehaviour.WRONG_SERVICE, (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)),
    ],
)
def test_misbehaving_holder_ends_in_its_reason(
    wallet: TestWallet, misbehaviour: Misbehaviour, verdict: tuple[Outcome, Reason]
) -> None:
    result, phone, _ = session(wallet, behaviour=Behaviour(misbehaviour, oversized_bytes=40_000))
    assert _verdict(result) == verdict
    assert phone.events[-1] == "disconnected"  # the reader never keeps the link


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        # Another session's DeviceResponse, sealed with this session's keys: deviceMac fails.
        (Misbehaviour.REPLAY, Reason.MDOC_BAD_DEVICE_AUTH),
        # Another session's SessionData as it was sent: it does not decrypt here.
        (Misbehaviour.REPLAY_SEALED, Reason.MDOC_SESSION_DECRYPT_FAILED),
    ],
)
def test_replayed_response_from_another_session_fails(
    wallet: TestWallet, misbehaviour: Misbehaviour, reason: Reason
) -> None:
    first, earlier, _ = session(wallet)
    assert _verdict(first) == (Outcome.PASS, Reason.OK) and earlier.last is not None
    result, _, _ = session(wallet, behaviour=Behaviour(misbehaviour), replay=earlier.last)
    assert _verdict(result) == (Outcome.FAIL, reason)


def test_malformed_device_response_inside_a_good_session(wallet: TestWallet) -> None:
    result, _, _ = session(lambda *_: b"\xa1\x01", judge=wallet.judge)
    assert _verdict(result) == (Outcome.FAIL, Reason.MDOC_MALFORMED)


@pytest.mark.parametrize("mode", [PERIPHERAL, CENTRAL])
def test_no_phone_on_the_air_times_out(
    wallet: TestWallet, mode: BleMode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.kiosk.mdoc_flow")

    async def run() -> MdocResult:
        radio = LocalRadio()
        phone = SimulatedPhone(radio, wallet, modes=(mode,))  # shows its QR, radio off
        # Central client mode waits scan + connect for the phone to come to the reader.
        deadlines = stalled(scan_s=0.3, connect_s=1.0)
        return await read_mdoc(
            phone.text,
            reader_transport(radio, deadlines),
            dataclasses.replace(SETTINGS, deadlines=deadlines),
            wallet.judge,
        )

    assert _verdict(asyncio.run(run())) == (Outcome.UNVERIFIABLE, Reason.MDOC_TIMEOUT)
    assert (
        "scanning for the phone" if mode is PERIPHERAL else "waiting for the phone to connect"
    ) in caplog.text


def _sysfs(root: Path, *, controller: bool = True, blocked: bool = False) -> Path:
    """A fake /sys/class/bluetooth: hci0, with an rfkill switch soft-blocked or not."""
    if controller:
        switch = root / "hci0" / "rfkill0"
        switch.mkdir(parents=True)
        (switch / "soft").write_text("1\n" if blocked else "0\n")
        (switch / "hard").write_text("0\n")
    return root


@pytest.mark.parametrize(
    ("controller", "blocked", "detail"),
    [(False, False, "no Bluetooth controller hci0"), (True, True, "hci0 is blocked")],
)
def test_no_usable_controller_is_no_supported_transport_with_why(
    wallet: TestWallet,
    tmp_path: Path,
    controller: bool,
    blocked: bool,
    detail: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A board configured for mDL whose controller is missing or rfkill-blocked: mDL is
    off for this session (checked every session, sysfs only), not a radio failure."""
    sysfs = _sysfs(tmp_path, controller=controller, blocked=blocked)
    phone = SimulatedPhone(LocalRadio(), wallet)
    transport = lambda: open_transport("bumble:hci-socket:0", ROOMY, sys_bluetooth=sysfs)  # noqa: E731
    result = asyncio.run(read_mdoc(phone.text, transport, SETTINGS, wallet.judge))
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_NO_SUPPORTED_TRANSPORT)
    assert detail in caplog.text


def test_a_controller_that_fails_to_open_is_transport_failed(
    wallet: TestWallet, tmp_path: Path
) -> None:
    """sysfs lists hci99 but the HCI socket cannot be opened (no such device here)."""
    sysfs = tmp_path / "sys"
    (sysfs / "hci99").mkdir(parents=True)
    phone = SimulatedPhone(LocalRadio(), wallet)
    transport = lambda: open_transport("bumble:hci-socket:99", ROOMY, sys_bluetooth=sysfs)  # noqa: E731
    result = asyncio.run(read_mdoc(phone.text, transport, SETTINGS, wallet.judge))
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)


def test_central_client_mode_off_refuses_a_central_only_phone_without_radio(
    wallet: TestWallet,
) -> None:
    settings = dataclasses.replace(SETTINGS, central_client_mode=False)

    def no_radio() -> Any:
        raise AssertionError("the radio must not be used")

    phone = SimulatedPhone(LocalRadio(), wallet, modes=(CENTRAL,))
    result = asyncio.run(read_mdoc(phone.text, no_radio, settings, wallet.judge))
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_NO_SUPPORTED_TRANSPORT)


def test_a_radio_that_cannot_be_set_up_costs_the_session_only(wallet: TestWallet) -> None:
    phone = SimulatedPhone(LocalRadio(), wallet)
    transport = lambda: open_transport("bumble:local", ROOMY)  # noqa: E731 - no radio given
    result = asyncio.run(read_mdoc(phone.text, transport, SETTINGS, wallet.judge))
    assert _verdict(result) == (Outcome.UNVERIFIABLE, Reason.MDOC_TRANSPORT_FAILED)
