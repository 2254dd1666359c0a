"""Blink patterns as data: which outputs are lit at a time ``t`` into a pattern.

A pattern maps an output name (``green``, ``red``, ``amber``, ``buzzer``, ``relay``) to a
``Blink``. Whether an output is lit, and when it next changes, are pure functions of
``t``, so the indicator is driven by any clock and tested without waiting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from appliance.config import IndicatorConfig
from appliance.core.reasons import Outcome

EDGE_S = 1e-6  # clock rounding: an edge this close is reached


class DeviceState(StrEnum):
    IDLE = "idle"
    TRUST_STALE = "trust_stale"
    CAMERA_LOST = "camera_lost"
    AUDIT_FAILING = "audit_failing"
    KIOSK_DOWN = "kiosk_down"  # shown by ``appliance fault`` while the kiosk unit is down


@dataclass(frozen=True)
class Blink:
    """``on_s`` lit then ``off_s`` dark, ``n`` times (``None``: for ever) from t = 0."""

    on_s: float
    off_s: float = 0.0
    n: int | None = None

    @property
    def period(self) -> float:
        return self.on_s + self.off_s

    def _phase(self, t: float) -> float | None:
        """Seconds into the current cycle, or ``None`` before the start or after the end.

        Within ``EDGE_S`` of an edge counts as past it, so ``lit`` and ``next_change``
        agree however the caller's clock rounds.
        """
        if t < 0 or self.period <= 0:
            return None
        if math.isinf(self.period):  # steady: one endless cycle
            return t
        k = math.floor(t / self.period)
        phase = t - k * self.period
        if phase > self.period - EDGE_S:
            k, phase = k + 1, 0.0
        return None if self.n is not None and k >= self.n else phase

    def lit(self, t: float) -> bool:
        phase = self._phase(t)
        return phase is not None and phase < self.on_s - EDGE_S

    def next_change(self, t: float) -> float | None:
        """The first time after ``t`` at which the output may change; ``None``: never."""
        if t < 0:
            return 0.0
        phase = self._phase(t)
        if phase is None or math.isinf(self.on_s):
            return None
        if phase < self.on_s - EDGE_S:
            return t + (self.on_s - phase)
        return t + (self.period - phase)


Pattern = Mapping[str, Blink]
STEADY = Blink(on_s=math.inf)

# idle: green heartbeat; trust stale: amber slow; camera lost: red slow; audit failing:
# red fast (no verdict is shown); kiosk down: steady red. None looks like a verdict.
STATE_PATTERNS: dict[DeviceState, Pattern] = {
    DeviceState.IDLE: {"green": Blink(0.1, 2.9)},
    DeviceState.TRUST_STALE: {"amber": Blink(1.0, 1.0)},
    DeviceState.CAMERA_LOST: {"red": Blink(0.5, 1.5)},
    DeviceState.AUDIT_FAILING: {"red": Blink(0.1, 0.1)},
    DeviceState.KIOSK_DOWN: {"red": STEADY},
}


def verdict_pattern(outcome: Outcome, config: IndicatorConfig) -> Pattern:
    """A verdict's lamps, lit for the hold time (then the device state shows again)."""
    hold = Blink(config.verdict_hold_s, 0.0, 1)
    lamp = {Outcome.PASS: "green", Outcome.FAIL: "red"}.get(outcome, "amber")
    return {lamp: hold}


def verdict_pulses(outcome: Outcome, config: IndicatorConfig) -> Pattern:
    """A verdict's beeps, and the relay pulse on PASS only: they run to their end even
    when the hold time is shorter."""
    if outcome is Outcome.PASS:
        return {"buzzer": Blink(0.08, 0.08, 1), "relay": Blink(config.relay_pulse_s, 0.0, 1)}
    if outcome is Outcome.FAIL:
        return {"buzzer": Blink(0.08, 0.08, 3)}
    return {"buzzer": Blink(0.4, 0.08, 1)}
