"""The kiosk loop with a scripted frame source, a fake clock and real decoders, verifier
and gpiozero mock pins: repeat suppression, camera loss and recovery, shutdown, LEDs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from support import NOW, World, qr_frame

from appliance.config import IndicatorConfig
from appliance.core.errors import AuditError, CameraError
from appliance.core.reasons import Outcome
from appliance.core.verifier import Checkpoint
from appliance.devices.camera import Frame
from appliance.devices.indicator import DeviceState, GpiozeroIndicator, lamp_states
from appliance.devices.scanner import FrameScanner, make_decoder
from appliance.kiosk.loop import Kiosk, credential_key
from appliance.kiosk.verification import NullAudit, VerificationService
from appliance.port.events import EventBus
from appliance.tools.holder import cose_key, present
from appliance.tools.issuer import generate_key
from appliance.trust.clock import FixedClock


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class ScriptedSource:
    """Frames from a script; ``"lost"`` raises like a camera unplugged mid-run."""

    def __init__(self, script: list, clock: FakeMonotonic, step_s: float = 1 / 30) -> None:
        self.script = list(script)
        self.clock = clock
        self.step_s = step_s
        self.opens = 0
        self.fail_opens = 0
        self.open_attempts: list[float] = []

    def open(self) -> None:
        self.open_attempts.append(self.clock.t)
        if self.fail_opens:
            self.fail_opens -= 1
            raise CameraError("no camera")
        self.opens += 1

    def read(self, timeout_s: float) -> Frame | None:
        self.clock.t += self.step_s
        if not self.script:
            return None
        item = self.script.pop(0)
        if isinstance(item, str) and item == "lost":
            raise CameraError("camera unplugged")
        grey = item if isinstance(item, np.ndarray) else qr_frame(item)
        return Frame(grey, self.clock.t)

    def close(self) -> None:
        pass


class FailingAudit:
    def record(self, verdict, *, now, source, trust) -> None:
        raise AuditError("disk full")


@pytest.fixture(scope="module")
def world() -> World:
    return World()


_OPEN: list[GpiozeroIndicator] = []


@pytest.fixture(autouse=True)
def _close_indicators():
    yield
    while _OPEN:
        _OPEN.pop().close()


def build(world: World, script: list, audit=None, clock: FakeMonotonic | None = None, **kw):
    clock = clock or FakeMonotonic()

    source = ScriptedSource(script, clock)
    service = VerificationService(
        lambda: world.trust(),
        FixedClock(NOW),
        Checkpoint(check_staleness=False),
        audit=audit or NullAudit(),
    )
    factory = MockFactory()
    indicator = GpiozeroIndicator(
        IndicatorConfig(backend="mock", verdict_hold_s=60), pin_factory=factory
    )
    _OPEN.append(indicator)
    events = EventBus()
    seen: list[dict] = []
    events.listen(seen.append)
    kiosk = Kiosk(
        source,
        FrameScanner(make_decoder("both", live=True)),
        service,
        indicator,
        events,
        repeat_after_absent_s=2.0,
        monotonic=clock,
        **kw,
    )
    return kiosk, source, indicator, seen


def drive(kiosk: Kiosk, n: int) -> list:
    out = []
    for _ in range(n):
        out.extend(kiosk.poll_once(0))
    return out


def test_one_code_held_in_view_gives_one_verdict(world: World) -> None:
    code = world.issue()
    kiosk, _source, ind, seen = build(world, [code] * 10)
    kiosk._open_camera()
    verdicts = drive(kiosk, 10)
    assert [str(v.reason) for v in verdicts] == ["OK"]
    assert lamp_states(ind)["green"] is True
    assert [e["outcome"] for e in seen if e.get("type") == "verdict"] == ["PASS"]


def test_same_code_counts_again_only_after_absence(world: World) -> None:
    code = world.issue()
    empty = qr_frame(None)
    # code, 30 empty frames (1 s) -> still suppressed; 70 empty frames (2.3 s) -> new
    kiosk, *_ = build(world, [code] + [empty] * 30 + [code] + [empty] * 70 + [code])
    kiosk._open_camera()
    verdicts = drive(kiosk, 103)
    assert len(verdicts) == 2


def test_different_code_gives_new_verdict_at_once(world: World) -> None:
    a, b = world.issue(), world.issue(exp=NOW - 99_999)
    kiosk, _, ind, _ = build(world, [a, a, b, b])
    kiosk._open_camera()
    verdicts = drive(kiosk, 4)
    assert [v.outcome for v in verdicts] == [Outcome.PASS, Outcome.FAIL]
    assert lamp_states(ind) == {"green": False, "amber": False, "red": True}


def test_verdict_to_led_for_every_verdict(world: World) -> None:
    w = World()
    w.editor.set_status("u", 1, 0)
    unverifiable = w.issue(status_uri="u", status_idx=999)
    cases = [(w.issue(), "green"), ("LC1:garbage", "red"), (unverifiable, "amber")]
    for code, lamp in cases:
        kiosk, _, ind, _ = build(w, [code])
        kiosk._open_camera()
        assert len(drive(kiosk, 1)) == 1
        states = lamp_states(ind)
        assert [k for k, v in states.items() if v] == [lamp], code[:20]


def test_live_code_refreshing_in_view_is_one_verdict(world: World) -> None:
    holder = generate_key("EdDSA")
    cred = world.issue(holder_cose_key=cose_key(holder.private_key.public_key()))
    frames = [
        present(cred, holder, NOW),
        present(cred, holder, NOW + 3),
        present(cred, holder, NOW + 6),
    ]
    assert len({credential_key(f) for f in frames}) == 1
    kiosk, _, _, seen = build(world, frames)
    kiosk._open_camera()
    verdicts = drive(kiosk, 3)
    assert len(verdicts) == 1 and verdicts[0].live
    assert seen[-1]["live"] is True


def test_camera_lost_then_recovers_without_restart(world: World) -> None:
    """The loop waits with the ``sleep`` it is given: the test's sleep moves the fake clock,
    so the backoff is measured on that clock and no real time passes."""
    code = world.issue()
    clock = FakeMonotonic()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.t += seconds

    kiosk, source, ind, seen = build(world, ["lost", code], clock=clock, sleep=sleep)
    source.fail_opens = 2
    stop = threading.Event()
    # first open fails twice (backoff 1 s, 2 s), then opens; then the camera is lost
    # mid-run, reopens, and the code is verified.
    results: list = []

    def on_event(event: dict) -> None:
        if event.get("type") == "verdict":
            results.append(event["reason"])
            stop.set()

    kiosk._events.listen(on_event)
    kiosk.run(stop)
    gaps = [b - a for a, b in zip(source.open_attempts, source.open_attempts[1:], strict=False)]
    assert gaps[:2] == [pytest.approx(1.0), pytest.approx(2.0)]
    assert slept and max(slept) <= 0.2 + 1e-9  # short steps: stop and texts stay responsive
    assert source.opens == 2
    assert kiosk.stats.camera_failures == 3
    assert results == ["OK"]
    assert any(e.get("fault") == "camera" for e in seen)
    kiosk._next_state_check = 0
    kiosk._check_device_state()
    assert ind.state is DeviceState.IDLE


def test_decoder_exception_costs_one_frame(world: World) -> None:
    code = world.issue()
    kiosk, *_ = build(world, [code, code])
    calls = {"n": 0}
    real: Callable = kiosk._scanner.scan

    def flaky(grey: np.ndarray) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("decoder bug")
        return real(grey)

    kiosk._scanner.scan = flaky  # type: ignore[method-assign]
    kiosk._open_camera()
    verdicts = drive(kiosk, 2)
    assert kiosk.stats.decode_errors == 1 and len(verdicts) == 1


def test_audit_failure_withholds_verdict_and_shows_fault(world: World) -> None:
    kiosk, _, ind, seen = build(world, [world.issue()], audit=FailingAudit())
    kiosk._open_camera()
    assert drive(kiosk, 1) == []
    assert ind.state is DeviceState.AUDIT_FAILING
    assert lamp_states(ind)["green"] is False
    assert any(e.get("fault") == "audit" for e in seen)


def test_event_times_come_from_the_kiosk_clock(world: World) -> None:
    """Verdict and fault events carry the kiosk's injected wall clock, not the machine's."""
    kiosk, _, _, seen = build(world, [world.issue(), "lost"], wall=lambda: NOW + 5.0)
    kiosk._open_camera()
    drive(kiosk, 2)
    times = {e["type"]: e["at"] for e in seen}
    assert times == {"verdict": NOW + 5.0, "fault": NOW + 5.0}


def test_audit_recovery_is_seen_on_the_indicator_interface(world: World) -> None:
    """The loop reads the device state from any ``Indicator`` (here no lights at all): once
    audit works again, the next verdict brings the state check forward."""
    from appliance.devices.indicator import NullIndicator

    service = VerificationService(
        lambda: world.trust(), FixedClock(NOW), Checkpoint(check_staleness=False), audit=NullAudit()
    )
    indicator = NullIndicator()
    kiosk = Kiosk(
        ScriptedSource([world.issue()], FakeMonotonic()),
        FrameScanner(make_decoder("both", live=True)),
        service,
        indicator,
        EventBus(),
        monotonic=FakeMonotonic(),
    )
    kiosk._open_camera()
    kiosk._next_state_check = 1e9
    indicator.set_state(DeviceState.AUDIT_FAILING)
    assert len(drive(kiosk, 1)) == 1
    assert kiosk._next_state_check == 0.0


def test_serial_scanner_text_takes_the_same_path(world: World) -> None:
    kiosk, *_ = build(world, [])
    kiosk._open_camera()
    kiosk.submit_text(world.issue(), source="serial")
    verdicts = drive(kiosk, 1)
    assert [str(v.reason) for v in verdicts] == ["OK"]


def test_clean_stop(world: World) -> None:
    kiosk, *_ = build(world, [qr_frame(None)] * 5)
    stop = threading.Event()
    t = threading.Thread(target=kiosk.run, args=(stop,))
    t.start()
    stop.set()
    t.join(timeout=5)
    assert not t.is_alive()


def test_credential_key_never_raises() -> None:
    for text in ["LP1:", "LP1:%%%", "LP1:" + "0" * 5000, "plain", ""]:
        credential_key(text)
