"""Verdicts and device states on LEDs, buzzer and relay, through gpiozero.

PASS green, FAIL red, UNVERIFIABLE amber (or red and green together where there is no
amber LED), per spec LC1 s.5. Device states are blink patterns that cannot be mistaken
for a verdict or for each other:

=============  ==========================================================
idle           green heartbeat: 0.1 s on every 3 s
trust stale    amber (or red+green) slow blink, 1 s on / 1 s off
camera lost    red slow blink, 0.5 s on / 1.5 s off
audit failing  red fast blink, 0.1 s on / 0.1 s off (no verdict is shown)
=============  ==========================================================

Pins, polarity and timings come from ``[indicator]``. The pin factory is passed in, so
tests and the demo use gpiozero's own ``MockFactory`` and a Pi uses lgpio.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from typing import Any, Protocol

from appliance.config import IndicatorConfig
from appliance.core.reasons import Outcome

log = logging.getLogger(__name__)


class DeviceState(StrEnum):
    IDLE = "idle"
    TRUST_STALE = "trust_stale"
    CAMERA_LOST = "camera_lost"
    AUDIT_FAILING = "audit_failing"


class Indicator(Protocol):
    def show_verdict(self, outcome: Outcome) -> None:
        """Show a verdict for the configured hold time, then return to the device state."""
        ...

    def set_state(self, state: DeviceState) -> None: ...

    def close(self) -> None: ...


class NullIndicator:
    """No lights (``backend = "none"``): a web-only or headless checkpoint."""

    def show_verdict(self, outcome: Outcome) -> None:
        return None

    def set_state(self, state: DeviceState) -> None:
        return None

    def close(self) -> None:
        return None


class GpiozeroIndicator:
    def __init__(self, config: IndicatorConfig, pin_factory: Any = None) -> None:
        from gpiozero import LED, Buzzer, DigitalOutputDevice

        def led(pin: int | None) -> Any:
            if pin is None:
                return None
            return LED(pin, active_high=config.active_high, pin_factory=pin_factory)

        self._config = config
        self.green = led(config.green_pin)
        self.red = led(config.red_pin)
        self.amber = led(config.amber_pin)
        self.buzzer = (Buzzer(config.buzzer_pin, pin_factory=pin_factory)
                       if config.buzzer_pin is not None else None)
        self.relay = (DigitalOutputDevice(config.relay_pin, active_high=True, initial_value=False,
                                   pin_factory=pin_factory)
                      if config.relay_pin is not None else None)
        self._lock = threading.Lock()
        self._state = DeviceState.IDLE
        self._restore: threading.Timer | None = None
        self._showing = False
        self._apply_state()

    # -- public -------------------------------------------------------------------------

    def show_verdict(self, outcome: Outcome) -> None:
        with self._lock:
            if self._restore is not None:
                self._restore.cancel()
            self._all_off()
            self._showing = True
            if outcome is Outcome.PASS:
                self.green.on()
                self._beep(1, 0.08)
                if self.relay is not None:
                    self.relay.blink(on_time=self._config.relay_pulse_s, off_time=0, n=1)
            elif outcome is Outcome.FAIL:
                self.red.on()
                self._beep(3, 0.08)
            else:
                for lamp in self._amber_lamps():
                    lamp.on()
                self._beep(1, 0.4)
            self._restore = threading.Timer(self._config.verdict_hold_s, self._end_verdict)
            self._restore.daemon = True
            self._restore.start()

    def set_state(self, state: DeviceState) -> None:
        with self._lock:
            if state is self._state:
                return
            log.info("device state %s -> %s", self._state, state)
            self._state = state
            if not self._showing:
                self._apply_state()

    @property
    def state(self) -> DeviceState:
        return self._state

    def close(self) -> None:
        with self._lock:
            if self._restore is not None:
                self._restore.cancel()
            for device in (self.green, self.red, self.amber, self.buzzer, self.relay):
                if device is not None:
                    device.close()

    # -- internals ----------------------------------------------------------------------

    def _end_verdict(self) -> None:
        with self._lock:
            self._showing = False
            self._apply_state()

    def _amber_lamps(self) -> list[Any]:
        return [self.amber] if self.amber is not None else [self.red, self.green]

    def _all_off(self) -> None:
        for lamp in (self.green, self.red, self.amber):
            if lamp is not None:
                lamp.off()

    def _beep(self, n: int, on_s: float) -> None:
        if self.buzzer is not None:
            self.buzzer.blink(on_time=on_s, off_time=0.08, n=n, background=True)

    def _apply_state(self) -> None:
        self._all_off()
        state = self._state
        if state is DeviceState.IDLE:
            self.green.blink(on_time=0.1, off_time=2.9)
        elif state is DeviceState.TRUST_STALE:
            for lamp in self._amber_lamps():
                lamp.blink(on_time=1.0, off_time=1.0)
        elif state is DeviceState.CAMERA_LOST:
            self.red.blink(on_time=0.5, off_time=1.5)
        elif state is DeviceState.AUDIT_FAILING:
            self.red.blink(on_time=0.1, off_time=0.1)


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
    return {name: bool(lamp.is_lit) for name, lamp in
            (("green", indicator.green), ("amber", indicator.amber), ("red", indicator.red))
            if lamp is not None}
