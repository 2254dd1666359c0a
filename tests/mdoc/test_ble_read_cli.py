"""appliance mdoc read (spec mdl-reader s.5.2) on a synced, enrolled device: the kiosk's code
path from the command line, over Bumble's emulated link with a simulated phone."""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from holder_sim import TestWallet
from sync_support import Authority, RepoServer, device

from appliance.cli import main
from appliance.commands.mdoc_read import run_read
from appliance.devices.ble_controllers import LocalRadio
from appliance.tools.holder_ble import SimulatedPhone
from appliance.tools.holder_mdoc import Behaviour, Misbehaviour


@pytest.fixture
def enrolled(tmp_path: Path) -> Any:
    """A device synced from an authority that publishes the wallet's IACA, enrolled."""
    wallet = TestWallet(signed=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    authority = Authority.create(tmp_path / "authority")
    authority.editor.add_key("UT-DMV", wallet.iaca.trust_entry(), "Test mDL issuer")
    authority.publish()
    server = RepoServer(authority.repo)
    try:
        device(tmp_path / "state", server.url, authority.root_file).sync_once()
    finally:
        server.stop()
    config = tmp_path / "device.toml"
    config.write_text(_config(tmp_path, first_response_timeout_s=10))
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    return wallet, config, tmp_path


def _config(base: Path, **mdoc: float) -> str:
    timeouts = "".join(f"{key} = {value}\n" for key, value in mdoc.items())
    return (
        f'[paths]\nstate_dir = "{base / "state"}"\nsecrets_dir = "{base / "secrets"}"\n'
        f'[mdoc]\ntransport = "bumble:local"\n{timeouts}'
    )


def _read(config: Path, phone: SimulatedPhone, *extra: str) -> int:
    args = argparse.Namespace(
        config=config, json="--json" in extra, transport=None, engagement=phone.attach()
    )
    return run_read(args, radio=phone.radio)


def _audit_rows(base: Path) -> list[dict]:
    with sqlite3.connect(base / "state" / "audit.db") as db:
        db.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in db.execute(
                "SELECT source, verdict, reason, profile, live FROM records ORDER BY seq"
            )
        ]


def test_read_prints_the_verdict_line_and_audits_as_cli_live(
    enrolled: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet, config, base = enrolled
    assert _read(config, SimulatedPhone(LocalRadio(), wallet)) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["PASS\tOK\tMDOC\tUT-DMV\torg.iso.18013.5.1.mDL\tUT-123"]
    assert "Connecting to phone" in captured.err and "Approve on your phone" in captured.err
    assert _audit_rows(base)[-1] == {
        "source": "cli-live",
        "verdict": "PASS",
        "reason": "OK",
        "profile": "MDOC",
        "live": 1,
    }


def test_read_a_silent_phone_exits_2_with_mdoc_timeout(
    enrolled: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet, config, base = enrolled
    phone = SimulatedPhone(LocalRadio(), wallet, behaviour=Behaviour(Misbehaviour.STALL))
    config.write_text(_config(base, first_response_timeout_s=0.3))
    assert _read(config, phone, "--json") == 2
    assert '"reason": "MDOC_TIMEOUT"' in capsys.readouterr().out
    assert _audit_rows(base)[-1]["reason"] == "MDOC_TIMEOUT"


def test_read_with_mdl_off_answers_no_supported_transport(
    enrolled: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet, config, _ = enrolled
    text = SimulatedPhone(LocalRadio(), wallet).text
    assert (
        main(["mdoc", "read", "--config", str(config), "--transport", "none", "--engagement", text])
        == 2
    )
    assert capsys.readouterr().out.startswith("UNVERIFIABLE\tMDOC_NO_SUPPORTED_TRANSPORT\tMDOC")


def test_read_on_a_device_with_the_radio_split_goes_through_the_radio(
    enrolled: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``radio_socket`` set (a device with mDL on) the command is the kiosk's path:
    through the radio service; ``--transport`` drives that controller here instead."""
    from radio_sim import RadioThread

    wallet, config, base = enrolled
    sock = base / "radio.sock"
    config.write_text(_config(base) + f'radio_socket = "{sock}"\n')
    radio = LocalRadio()
    with RadioThread(sock, radio):
        phone = SimulatedPhone(radio, wallet)
        args = argparse.Namespace(
            config=config, json=False, transport=None, engagement=phone.attach()
        )
        assert run_read(args) == 0  # no LocalRadio given here: the radio has it
    assert capsys.readouterr().out.startswith("PASS\tOK\tMDOC")
    # The radio is gone; --transport bumble:local still reads, in this process.
    phone = SimulatedPhone(LocalRadio(), wallet)
    args = argparse.Namespace(
        config=config, json=False, transport="bumble:local", engagement=phone.attach()
    )
    assert run_read(args, radio=phone.radio) == 0
