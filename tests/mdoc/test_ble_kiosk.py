"""The kiosk's mDL sessions (issue 23): an `mdoc:` code hands off to a worker thread, the
camera loop and the other inputs keep working, one session at a time, screen events, LEDs
and the audit record like every other profile. The phone is the simulator on Bumble's
emulated link, joining the worker's event loop."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from holder_sim import ROOMY, TestWallet, reader_transport, stalled
from issuer_support import NOW

from appliance.config import Config, IndicatorConfig, MdocConfig, PathsConfig
from appliance.core.errors import ConfigError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint, Verdict
from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.indicator import GpiozeroIndicator, lamp_states
from appliance.devices.scanner import FrameScanner, make_decoder
from appliance.kiosk.loop import Kiosk
from appliance.kiosk.mdoc_flow import SessionSettings
from appliance.kiosk.mdoc_session import MdocReader, MdocSessions, mdoc_reader
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.tools.holder_ble import SimulatedPhone
from appliance.trust.clock import FixedClock

SETTINGS = SessionSettings(deadlines=ROOMY)


class NoFrames:
    def open(self) -> None: ...

    def read(self, timeout_s: float) -> None:
        return None

    def close(self) -> None: ...


class RecordingAudit:
    def __init__(self) -> None:
        self.records: list[tuple[Verdict, str]] = []

    def record(self, verdict: Verdict, *, now: float, source: str, trust: Any) -> None:
        self.records.append((verdict, source))


class GatedWallet(TestWallet):
    """A wallet whose holder takes as long as the test wants to approve."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.approve = threading.Event()
        self.asked = threading.Event()

    def __call__(self, *args: Any) -> bytes:
        self.asked.set()
        assert self.approve.wait(30)
        return super().__call__(*args)


@pytest.fixture()
def rig(request: pytest.FixtureRequest) -> Any:
    wallet = GatedWallet()
    radio = LocalRadio()
    audit = RecordingAudit()
    service = VerificationService(
        wallet.trust, FixedClock(NOW.timestamp()), Checkpoint(check_staleness=False), audit=audit
    )
    indicator = GpiozeroIndicator(
        IndicatorConfig(backend="mock", verdict_hold_s=60), pin_factory=MockFactory()
    )
    request.addfinalizer(indicator.close)
    events = EventBus()
    seen: list[dict] = []
    events.listen(seen.append)
    reader = MdocReader(lambda: SETTINGS, reader_transport(radio, SETTINGS.deadlines))
    sessions = MdocSessions(reader, service, indicator, events)
    kiosk = Kiosk(
        NoFrames(),
        FrameScanner(make_decoder("both", live=True)),
        service,
        indicator,
        events,
        mdoc=sessions,
    )
    return kiosk, sessions, wallet, radio, audit, indicator, seen


def test_mdoc_code_runs_on_a_worker_while_other_inputs_keep_working(rig: Any) -> None:
    kiosk, sessions, wallet, radio, audit, indicator, seen = rig
    phone = SimulatedPhone(radio, wallet)
    text = phone.attach()
    kiosk.submit_text(text, "camera")
    assert kiosk.poll_once(0) == []  # handed off: no verdict on the loop thread
    assert wallet.asked.wait(30)  # the phone is "asking its holder" now
    assert sessions.busy
    # The loop keeps verifying other inputs while the phone is still undecided.
    kiosk.submit_text("LC1:not-a-licence", "hid")
    [other] = kiosk.poll_once(0)
    assert other.outcome is Outcome.FAIL  # not a licence: decided at once, on this thread
    # A second mdoc: code while a session runs is ignored (one session at a time).
    kiosk.submit_text(SimulatedPhone(radio, wallet).text, "camera")
    assert kiosk.poll_once(0) == []
    wallet.approve.set()
    sessions.join(30)
    assert not sessions.busy
    verdicts = [e for e in seen if e.get("type") == "verdict"]
    assert [(v["outcome"], v["reason"], v["profile"]) for v in verdicts] == [
        ("FAIL", str(other.reason), other.profile),
        ("PASS", "OK", "MDOC"),
    ]
    states = [e["state"] for e in seen if e.get("type") == "mdoc"]
    assert states == ["connecting", "approve"]
    assert lamp_states(indicator)["green"] is True
    mdoc_records = [(v, s) for v, s in audit.records if v.profile == "MDOC"]
    assert len(mdoc_records) == 1  # the ignored second code made no session and no record
    verdict, source = mdoc_records[0]
    assert source == "camera" and verdict.live and verdict.credential is not None
    assert verdict.credential.typ == "org.iso.18013.5.1.mDL"
    assert "termination" in phone.events


def test_radio_failure_is_unverifiable_and_audited(rig: Any) -> None:
    kiosk, sessions, wallet, radio, audit, indicator, _ = rig
    phone = SimulatedPhone(radio, wallet)  # never attached: nobody answers the scan
    fast = dataclasses.replace(SETTINGS, deadlines=stalled(scan_s=0.2))
    sessions.reader = MdocReader(lambda: fast, reader_transport(radio, fast.deadlines))
    kiosk.submit_text(phone.text, "camera")
    kiosk.poll_once(0)
    sessions.join(30)
    [(verdict, _)] = audit.records
    assert (verdict.outcome, verdict.reason, verdict.profile) == (
        Outcome.UNVERIFIABLE,
        Reason.MDOC_TIMEOUT,
        "MDOC",
    )
    assert lamp_states(indicator)["amber"] is True


def test_mdl_off_says_so_and_answers_no_supported_transport(rig: Any) -> None:
    kiosk, sessions, wallet, radio, audit, _, _ = rig
    sessions.reader = MdocReader(
        lambda: SETTINGS, lambda: pytest.fail("no radio"), off="mDL reading is off"
    )
    kiosk.submit_text(SimulatedPhone(radio, wallet).text, "camera")
    kiosk.poll_once(0)
    sessions.join(30)
    [(verdict, _)] = audit.records
    assert (verdict.outcome, verdict.reason) == (
        Outcome.UNVERIFIABLE,
        Reason.MDOC_NO_SUPPORTED_TRANSPORT,
    )


def test_reader_from_configuration(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    off = mdoc_reader(Config(mdoc=MdocConfig(transport="none")))
    assert off.off is not None and "off" in caplog.text
    on = mdoc_reader(
        Config(
            mdoc=MdocConfig(
                transport="bumble:local",
                request="age",
                age_threshold=18,
                first_response_timeout_s=7,
            )
        )
    )
    assert on.off is None
    assert (on.settings.profile, on.settings.age_threshold) == ("age", 18)
    assert on.settings.deadlines.first_response_s == 7 and on.settings.reader_auth is None
    half = Config(
        paths=PathsConfig(secrets_dir=tmp_path), mdoc=MdocConfig(reader_cert_file="reader.der")
    )
    with pytest.raises(ConfigError):
        mdoc_reader(half)
    missing = Config(
        paths=PathsConfig(secrets_dir=tmp_path),
        mdoc=MdocConfig(reader_cert_file="reader.der", reader_key_file="k.pem"),
    )
    with pytest.raises(ConfigError):
        mdoc_reader(missing)


def test_the_kiosk_loads_no_mdl_code_before_the_first_mdoc_code() -> None:
    """Kiosk start (the loop, the sessions' handoff, the reader from configuration) imports
    neither Bumble nor the mdoc verifier: they cost memory only once a phone shows a QR."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from appliance.config import Config, MdocConfig\n"
        "import appliance.kiosk.loop\n"
        "from appliance.kiosk.mdoc_session import mdoc_reader\n"
        "reader = mdoc_reader(Config(mdoc=MdocConfig(transport='bumble:local')))\n"
        "assert reader.off is None\n"
        "loaded = [m for m in sys.modules if m.startswith('bumble') or m.startswith("
        "'appliance.core.credential.mdoc') or m == 'appliance.kiosk.mdoc_flow']\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == "[]"
