"""LED patterns through gpiozero's own MockFactory: pin states over time."""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.config import IndicatorConfig
from appliance.core.reasons import Outcome
from appliance.devices.indicator import DeviceState, GpiozeroIndicator, lamp_states


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


def make(factory: MockFactory, **kw: object) -> GpiozeroIndicator:
    cfg = IndicatorConfig(backend="mock", verdict_hold_s=0.3, **kw)  # type: ignore[arg-type]
    return GpiozeroIndicator(cfg, pin_factory=factory)


def lit(ind: GpiozeroIndicator) -> tuple[bool, bool, bool]:
    s = lamp_states(ind)
    return s["green"], s.get("amber", False), s["red"]


@pytest.mark.parametrize(("outcome", "expected"), [
    (Outcome.PASS, (True, False, False)),
    (Outcome.FAIL, (False, False, True)),
    (Outcome.UNVERIFIABLE, (False, True, False)),
])
def test_verdict_lamps_then_back_to_state(factory: MockFactory, outcome: Outcome,
                                          expected: tuple[bool, bool, bool]) -> None:
    ind = make(factory)
    ind.set_state(DeviceState.CAMERA_LOST)
    ind.show_verdict(outcome)
    assert lit(ind) == expected
    time.sleep(0.45)
    # back to the device state: camera lost blinks red, never green
    seen_green = False
    for _ in range(20):
        seen_green |= lit(ind)[0]
        time.sleep(0.1)
    assert not seen_green
    ind.close()


def test_unverifiable_without_amber_lights_red_and_green(factory: MockFactory) -> None:
    ind = make(factory, amber_pin=None)
    ind.show_verdict(Outcome.UNVERIFIABLE)
    assert lit(ind) == (True, False, True)
    ind.close()


def test_active_low_polarity(factory: MockFactory) -> None:
    ind = make(factory, active_high=False)
    ind.show_verdict(Outcome.PASS)
    assert factory.pin(17).state is False  # active low: lit means driven low
    assert factory.pin(27).state is True
    ind.close()


def test_states_are_distinguishable_blink_patterns(factory: MockFactory) -> None:
    def on_fractions(state: DeviceState) -> tuple[float, float, float]:
        f = MockFactory()
        ind = GpiozeroIndicator(IndicatorConfig(backend="mock"), pin_factory=f)
        ind.set_state(state)
        samples = []
        for _ in range(40):
            samples.append(lit(ind))
            time.sleep(0.05)
        ind.close()
        return tuple(sum(s[i] for s in samples) / len(samples) for i in range(3))  # type: ignore[return-value]

    stale = on_fractions(DeviceState.TRUST_STALE)
    camera = on_fractions(DeviceState.CAMERA_LOST)
    audit = on_fractions(DeviceState.AUDIT_FAILING)
    assert stale[1] > 0.2 and stale[2] == 0 and stale[0] == 0
    assert camera[1] == 0 and camera[2] > 0 and camera[0] == 0
    assert audit[2] > 0 and 0.2 < audit[2] < 0.8  # fast blink toggles within 2 s
    assert camera[2] <= 0.5


def test_relay_pulses_on_pass_only(factory: MockFactory) -> None:
    ind = make(factory, relay_pin=5, relay_pulse_s=0.2)
    relay = factory.pin(5)
    ind.show_verdict(Outcome.FAIL)
    time.sleep(0.05)
    assert relay.state is False
    ind.show_verdict(Outcome.PASS)
    time.sleep(0.05)
    assert relay.state is True
    time.sleep(0.3)
    assert relay.state is False
    ind.close()


def test_buzzer_beeps_three_times_on_fail(factory: MockFactory) -> None:
    ind = make(factory, buzzer_pin=6)
    buzzer = factory.pin(6)
    buzzer.clear_states()
    ind.show_verdict(Outcome.FAIL)
    time.sleep(0.6)
    rises = sum(1 for a, b in zip(buzzer.states, buzzer.states[1:], strict=False)
                if not a.state and b.state)
    assert rises == 3
    ind.close()
