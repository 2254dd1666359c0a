"""The boot job's virtual phone (tests/boot/virtual_phone.py) on the host, without /dev/vhci:
the camera of the booted image loads its pictures once, so the phone must answer reader after
reader on the one QR it showed, each with a fresh session (the kernel's half, hci_vhci, is
proven only in the guest by make test-boot)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mdoc"))
from holder_sim import ROOMY, TestWallet, reader_transport
from virtual_phone import ReusablePhone, load_identity, new_identity, write_png

from appliance.core.reasons import Outcome, Reason
from appliance.devices.ble_controllers import LocalRadio
from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc

SETTINGS = SessionSettings(deadlines=ROOMY, max_response_bytes=16_384)


def test_one_qr_made_ahead_serves_reader_after_reader(tmp_path: Path) -> None:
    wallet = TestWallet()
    made = new_identity(tmp_path / "phone.json")  # on the build host, at the converge
    assert oct((tmp_path / "phone.json").stat().st_mode & 0o777) == "0o600"

    async def run() -> tuple[list[tuple[Outcome, Reason]], int]:
        radio = LocalRadio()
        phone = ReusablePhone(radio, wallet, load_identity(tmp_path / "phone.json"))
        assert phone.text == ReusablePhone(radio, wallet, made).text
        verdicts = []
        async with phone:
            for _ in range(3):
                result = await read_mdoc(
                    phone.text, reader_transport(radio), SETTINGS, wallet.judge
                )
                verdicts.append((result.verdict.outcome, result.verdict.reason))
        return verdicts, phone.sessions

    verdicts, sessions = asyncio.run(run())
    assert verdicts == [(Outcome.PASS, Reason.OK)] * 3
    assert sessions == 3


def test_the_qr_picture_decodes_to_the_engagement(tmp_path: Path) -> None:
    from appliance.devices.scanner import decode_image_file

    phone = ReusablePhone(LocalRadio(), TestWallet())
    png = tmp_path / "camera" / "6-phone.png"
    write_png(phone.text, png)
    assert decode_image_file(png) == [phone.text]
