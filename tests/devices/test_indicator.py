"""LED patterns through gpiozero's own MockFactory: pin states over time.

Time is a manual clock: ``advance`` moves it from one pattern change to the next and lets
the indicator set its pins at each, exactly as its driver thread does on a Pi, so the
tests read the pins at any instant without waiting for it.
"""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory
from support import FakeClock

from appliance.commands.fault import hold, show_fault
from appliance.config import IndicatorConfig
from appliance.core.reasons import Outcome
from appliance.devices.blink import STATE_PATTERNS, Blink
from appliance.devices.indicator import (
    DeviceState,
    GpiozeroIndicator,
    Indicator,
    NullIndicator,
    lamp_states,
)


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(factory: MockFactory, clock: FakeClock, **kw: object) -> GpiozeroIndicator:
    cfg = IndicatorConfig(backend="mock", verdict_hold_s=0.3, **kw)  # type: ignore[arg-type]
    return GpiozeroIndicator(cfg, pin_factory=factory, clock=clock, background=False)


def advance(ind: GpiozeroIndicator, clock: FakeClock, seconds: float) -> None:
    """Run the indicator's clock forward, stopping at every change it schedules."""
    target = clock.now + seconds
    while (delay := ind.tick()) is not None and clock.now + delay <= target:
        clock.now += max(delay, 1e-9)
    clock.now = target
    ind.tick()


def lit(ind: GpiozeroIndicator) -> tuple[bool, bool, bool]:
    s = lamp_states(ind)
    return s["green"], s.get("amber", False), s["red"]


def samples(
    ind: GpiozeroIndicator, clock: FakeClock, seconds: float, step: float = 0.05
) -> list[tuple[bool, bool, bool]]:
    out = []
    for _ in range(round(seconds / step)):
        out.append(lit(ind))
        advance(ind, clock, step)
    return out


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.PASS, (True, False, False)),
        (Outcome.FAIL, (False, False, True)),
        (Outcome.UNVERIFIABLE, (False, True, False)),
    ],
)
def test_verdict_lamps_then_back_to_state(
    factory: MockFactory, clock: FakeClock, outcome: Outcome, expected: tuple[bool, bool, bool]
) -> None:
    ind = make(factory, clock)
    ind.set_state(DeviceState.CAMERA_LOST)
    ind.show_verdict(outcome)
    assert lit(ind) == expected
    advance(ind, clock, 0.29)
    assert lit(ind) == expected  # held for the whole hold time
    advance(ind, clock, 0.02)
    # back to the device state: camera lost blinks red, never green
    seen = samples(ind, clock, 2.0)
    assert not any(s[0] or s[1] for s in seen)
    assert any(s[2] for s in seen) and not all(s[2] for s in seen)
    ind.close()


def test_unverifiable_without_amber_lights_red_and_green(
    factory: MockFactory, clock: FakeClock
) -> None:
    ind = make(factory, clock, amber_pin=None)
    ind.show_verdict(Outcome.UNVERIFIABLE)
    assert lit(ind) == (True, False, True)
    ind.close()


def test_active_low_polarity(factory: MockFactory, clock: FakeClock) -> None:
    ind = make(factory, clock, active_high=False)
    ind.show_verdict(Outcome.PASS)
    assert factory.pin(17).state is False  # active low: lit means driven low
    assert factory.pin(27).state is True
    ind.close()


def test_states_are_distinguishable_blink_patterns(clock: FakeClock) -> None:
    def on_fractions(state: DeviceState) -> tuple[float, ...]:
        ind = GpiozeroIndicator(
            IndicatorConfig(backend="mock"),
            pin_factory=MockFactory(),
            clock=clock,
            background=False,
        )
        ind.set_state(state)
        seen = samples(ind, clock, 4.0)
        ind.close()
        return tuple(sum(s[i] for s in seen) / len(seen) for i in range(3))

    idle = on_fractions(DeviceState.IDLE)
    stale = on_fractions(DeviceState.TRUST_STALE)
    camera = on_fractions(DeviceState.CAMERA_LOST)
    audit = on_fractions(DeviceState.AUDIT_FAILING)
    down = on_fractions(DeviceState.KIOSK_DOWN)
    near = pytest.approx  # 80 samples: one sample either side of an edge is 0.0125
    assert 0 < idle[0] < 0.1 and idle[1] == idle[2] == 0  # green heartbeat
    assert stale == near((0, 0.5, 0), abs=0.03)  # amber 1 s on / 1 s off
    assert camera == near((0, 0, 0.25), abs=0.03)  # red 0.5 s on / 1.5 s off
    assert audit == near((0, 0, 0.5), abs=0.03)  # red 0.1 s on / 0.1 s off
    assert down == (0, 0, 1)  # steady red
    assert len({idle, stale, camera, audit, down}) == 5


def test_fast_blink_toggles_at_its_table_times(factory: MockFactory, clock: FakeClock) -> None:
    ind = make(factory, clock)
    ind.set_state(DeviceState.AUDIT_FAILING)
    red = factory.pin(27)
    red.clear_states()
    advance(ind, clock, 0.95)  # lit at 0: falls at 0.1, 0.3 .. 0.9, rises at 0.2 .. 0.8
    pairs = list(zip(red.states, red.states[1:], strict=False))
    assert sum(1 for a, b in pairs if not a.state and b.state) == 4
    assert sum(1 for a, b in pairs if a.state and not b.state) == 5
    assert STATE_PATTERNS[DeviceState.AUDIT_FAILING]["red"] == Blink(0.1, 0.1)
    ind.close()


def test_relay_pulses_on_pass_only(factory: MockFactory, clock: FakeClock) -> None:
    ind = make(factory, clock, relay_pin=5, relay_pulse_s=0.2)
    relay = factory.pin(5)
    ind.show_verdict(Outcome.FAIL)
    advance(ind, clock, 0.05)
    assert relay.state is False
    ind.show_verdict(Outcome.PASS)
    advance(ind, clock, 0.05)
    assert relay.state is True
    advance(ind, clock, 0.16)
    assert relay.state is False
    ind.close()


def test_buzzer_beeps_three_times_on_fail(factory: MockFactory, clock: FakeClock) -> None:
    ind = make(factory, clock, buzzer_pin=6)
    buzzer = factory.pin(6)
    buzzer.clear_states()
    ind.show_verdict(Outcome.FAIL)
    advance(ind, clock, 0.6)
    rises = sum(
        1 for a, b in zip(buzzer.states, buzzer.states[1:], strict=False) if not a.state and b.state
    )
    assert rises == 3
    assert buzzer.state is False
    ind.close()


def test_fault_pattern_stays_steady_red_past_the_idle_heartbeat(
    factory: MockFactory, clock: FakeClock
) -> None:
    """``appliance fault`` over a running driver: its next change must not relight green."""
    ind = make(factory, clock)
    show_fault(ind)
    seen = samples(ind, clock, 7.0, step=0.1)
    assert set(seen) == {(False, False, True)}
    ind.close()


def test_the_driver_thread_ends_a_verdict_on_its_own(factory: MockFactory) -> None:
    """The real thread and clock: the verdict ends after its hold without any tick()."""
    cfg = IndicatorConfig(backend="mock", verdict_hold_s=0.05)
    ind = GpiozeroIndicator(cfg, pin_factory=factory)
    ind.set_state(DeviceState.KIOSK_DOWN)
    ind.show_verdict(Outcome.PASS)
    back = threading.Event()
    for _ in range(1000):  # a deadline, not a duration: returns as soon as it is back
        if lit(ind) == (False, False, True):
            back.set()
            break
        back.wait(0.01)
    assert back.is_set()
    stop = threading.Event()
    stop.set()
    hold(ind, stop)  # releases the pins and stops the thread
    assert ind.red.closed
    assert ind._thread is not None and not ind._thread.is_alive()


def test_every_indicator_says_its_device_state(factory: MockFactory, clock: FakeClock) -> None:
    """The state is on the ``Indicator`` interface: no lights at all still answers it."""
    indicators: list[Indicator] = [NullIndicator(), make(factory, clock)]
    for ind in indicators:
        assert ind.state is DeviceState.IDLE
        ind.set_state(DeviceState.CAMERA_LOST)
        assert ind.state is DeviceState.CAMERA_LOST
        ind.close()
