"""Verdicts and device states on LEDs, buzzer and relay, through gpiozero.

PASS green, FAIL red, UNVERIFIABLE amber (or red and green together where there is no
amber LED), per spec LC1 s.5. Device states are blink patterns that cannot be mistaken
for a verdict or for each other:

=============  ==========================================================
idle           green heartbeat: 0.1 s on every 3 s
trust stale    amber (or red+green) slow blink, 1 s on / 1 s off
camera lost    red slow blink, 0.5 s on / 1.5 s off
audit failing  red fast blink, 0.1 s on / 0.1 s off (no verdict is shown)
kiosk down     steady red (``appliance fault``, while the kiosk unit is down)
=============  ==========================================================

The patterns are a table (``appliance.devices.blink``) read against a clock: one driver
thread sets the pins at each change and sleeps until the next, so tests pass a manual
clock, call ``tick()`` and see exactly the pin states a Pi would show at that moment.

Pins, polarity and timings come from ``[indicator]``. The pin factory is passed in, so
tests and the demo use gpiozero's own ``MockFactory`` and a Pi uses lgpio.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from appliance.config import IndicatorConfig
from appliance.core.reasons import Outcome
from appliance.devices.blink import (
    STATE_PATTERNS,
    DeviceState,
    Pattern,
    verdict_pattern,
    verdict_pulses,
)

log = logging.getLogger(__name__)


class Indicator(Protocol):
    def show_verdict(self, outcome: Outcome) -> None:
        """Show a verdict for the configured hold time, then return to the device state."""
        ...

    def set_state(self, state: DeviceState) -> None: ...

    @property
    def state(self) -> DeviceState:
        """The device state last set (shown whenever no verdict is)."""
        ...

    def close(self) -> None: ...


class NullIndicator:
    """No lights (``backend = "none"``): a web-only or headless checkpoint."""

    def __init__(self) -> None:
        self._state = DeviceState.IDLE

    def show_verdict(self, outcome: Outcome) -> None:
        return None

    def set_state(self, state: DeviceState) -> None:
        self._state = state

    @property
    def state(self) -> DeviceState:
        return self._state

    def close(self) -> None:
        return None


class GpiozeroIndicator:
    """Lamps, buzzer and relay driven from the pattern table by one clock.

    ``clock`` is injected (monotonic seconds); with ``background=False`` no thread runs
    and the caller drives the pins with ``tick()`` (tests, with a manual clock).
    """

    def __init__(
        self,
        config: IndicatorConfig,
        pin_factory: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        from gpiozero import LED, Buzzer, DigitalOutputDevice

        def led(pin: int | None) -> Any:
            if pin is None:
                return None
            return LED(pin, active_high=config.active_high, pin_factory=pin_factory)

        self._config = config
        self._clock = clock
        self.green = led(config.green_pin)
        self.red = led(config.red_pin)
        self.amber = led(config.amber_pin)
        self.buzzer = (
            Buzzer(config.buzzer_pin, pin_factory=pin_factory)
            if config.buzzer_pin is not None
            else None
        )
        self.relay = (
            DigitalOutputDevice(
                config.relay_pin, active_high=True, initial_value=False, pin_factory=pin_factory
            )
            if config.relay_pin is not None
            else None
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._state = DeviceState.IDLE
        self._pattern: Pattern = STATE_PATTERNS[self._state]
        self._started = clock()
        self._verdict_until: float | None = None
        self._pulses: Pattern = {}
        self._pulses_started = self._started
        self._written: dict[int, bool] = {}
        self.tick()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="indicator", daemon=True)
            self._thread.start()

    # -- public -------------------------------------------------------------------------

    def show_verdict(self, outcome: Outcome) -> None:
        with self._lock:
            now = self._clock()
            self._pattern = verdict_pattern(outcome, self._config)
            self._started = now
            self._verdict_until = now + self._config.verdict_hold_s
            self._pulses, self._pulses_started = verdict_pulses(outcome, self._config), now
        self._changed()

    def set_state(self, state: DeviceState) -> None:
        with self._lock:
            if state is self._state:
                return
            log.info("device state %s -> %s", self._state, state)
            self._state = state
            if self._verdict_until is None:
                self._pattern, self._started = STATE_PATTERNS[state], self._clock()
        self._changed()

    @property
    def state(self) -> DeviceState:
        """The device state last set (its pattern shows once a verdict's hold ends)."""
        return self._state

    def tick(self) -> float | None:
        """Set every output for the clock's now; seconds until the next change (or None)."""
        with self._lock:
            if self._closed:
                return None
            now = self._clock()
            if self._verdict_until is not None and now >= self._verdict_until:
                # the state pattern starts when the verdict ends, however late this tick is
                self._pattern, self._started = STATE_PATTERNS[self._state], self._verdict_until
                self._verdict_until = None
            levels: dict[str, bool] = {}
            changes: list[float] = []
            for pattern, started in (
                (self._pattern, self._started),
                (self._pulses, self._pulses_started),
            ):
                t = now - started
                for name, blink in pattern.items():
                    levels[name] = levels.get(name, False) or blink.lit(t)
                    change = blink.next_change(t)
                    if change is not None:
                        changes.append(started + change)
            self._drive(levels)
            if self._verdict_until is not None:
                changes.append(self._verdict_until)
            return max(0.0, min(changes) - now) if changes else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for device in (self.green, self.red, self.amber, self.buzzer, self.relay):
                if device is not None:
                    device.close()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # -- internals ----------------------------------------------------------------------

    def _changed(self) -> None:
        """Apply a new pattern now (the caller sees it at once) and re-time the driver."""
        self.tick()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.clear()  # before tick: a change made meanwhile wakes the wait
            self._wake.wait(self.tick())

    def _outputs(self, name: str) -> list[Any]:
        if name == "amber":  # red and green together where there is no amber LED
            return [self.amber] if self.amber is not None else [self.red, self.green]
        return [getattr(self, name)]

    def _drive(self, levels: dict[str, bool]) -> None:
        lit: dict[int, tuple[Any, bool]] = {
            id(d): (d, False)
            for d in (self.green, self.red, self.amber, self.buzzer, self.relay)
            if d is not None
        }
        for name, on in levels.items():
            for device in self._outputs(name):
                if device is not None and on:
                    lit[id(device)] = (device, True)
        for key, (device, on) in lit.items():
            if self._written.get(key) is not on:
                device.on() if on else device.off()
                self._written[key] = on


def open_indicator(config: IndicatorConfig) -> Indicator:
    """Chosen by name: ``gpiozero`` (real pins, gpiozero picks lgpio on a Pi), ``mock``
    (gpiozero's MockFactory: the demo and tests), ``none``."""
    if config.backend == "none":
        return NullIndicator()
    if config.backend == "mock":
        from gpiozero.pins.mock import MockFactory

        return GpiozeroIndicator(config, pin_factory=MockFactory())
    if config.backend == "gpiozero":
        return GpiozeroIndicator(config)
    from appliance.core.errors import ConfigError

    raise ConfigError(f"indicator.backend must be gpiozero, mock or none, not {config.backend!r}")


def lamp_states(indicator: Indicator) -> dict[str, bool]:
    """Which lamps are lit now (for the demo's terminal line and the status page)."""
    if not isinstance(indicator, GpiozeroIndicator):
        return {}
    return {
        name: bool(lamp.is_lit)
        for name, lamp in (
            ("green", indicator.green),
            ("amber", indicator.amber),
            ("red", indicator.red),
        )
        if lamp is not None
    }
