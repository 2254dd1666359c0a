"""``appliance demo``'s terminal: messages and log lines wrapped to at most 80 columns,
and the live status line of the simulated LEDs, what the camera sees and the last verdict.
"""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any


def columns() -> int:
    """The terminal's width, at most 80: the demo is read in the narrowest terminal."""
    return max(40, min(80, shutil.get_terminal_size((80, 24)).columns))


def say(text: str, **kw: Any) -> None:
    """Print a message wrapped to the terminal (never wider than 80 columns)."""
    width = columns()
    print(
        "\n".join(
            textwrap.fill(part, width, subsequent_indent="  ", break_on_hyphens=False)
            if part
            else ""
            for part in text.split("\n")
        ),
        flush=True,
        **kw,
    )


class _WrapFormatter(logging.Formatter):
    """Log lines of the demo wrapped to the terminal width."""

    def __init__(self, fmt: str | None, width: int) -> None:
        super().__init__(fmt)
        self._width = width

    def format(self, record: logging.LogRecord) -> str:
        return textwrap.fill(
            super().format(record), self._width, subsequent_indent="  ", break_on_hyphens=False
        )


def fit_logging(width: int) -> None:
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter is not None else None
        handler.setFormatter(_WrapFormatter(fmt, width))


_LAMP = {True: "\x1b[1m●\x1b[0m", False: "○"}
_COLOURS = {"green": "\x1b[32m", "amber": "\x1b[33m", "red": "\x1b[31m"}


def status_text(lamps: dict[str, bool], in_view: str, verdict: str, fps: float, width: int) -> str:
    """One status line narrower than ``width`` columns (so it never wraps), lamps in colour.

    The lamps are fixed; what the camera sees and the last verdict share what is left (cut
    with "~" when they do not fit), and the frame rate is shown where there is room."""
    leds_plain = " ".join(f"{'●' if on else '○'} {n}" for n, on in lamps.items())
    leds = " ".join(f"{_COLOURS.get(n, '')}{_LAMP[on]}\x1b[0m {n}" for n, on in lamps.items())
    tail = f" {fps:4.1f} fps"
    free = width - 1 - len(f"[{leds_plain}] ")  # columns left after the lamps

    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[: max(0, n - 1)] + "~"

    room = free - len(" -> ")
    if room < 16:  # a narrow terminal: the lamps and the verdict only
        return f"[{leds}] {cut(verdict, max(0, free))}"
    verdict_w = min(len(verdict), room - 12)
    view_w = min(len(in_view), room - verdict_w)
    line = f"[{leds}] {cut(in_view, view_w):<{view_w}} -> {cut(verdict, verdict_w)}"
    pad = room - view_w - len(cut(verdict, verdict_w)) - len(tail)
    return f"{line}{' ' * pad}{tail}" if pad >= 0 else line


def verdict_label(last: dict[str, Any], seen_at: float | None, now: float, hold_s: float) -> str:
    """The verdict the line shows: the last one while its lamp is held, then "-" (the
    LEDs are back to the device state, and a label left over would read as a verdict
    for whatever, or nothing, is in view now)."""
    if not last or seen_at is None or now - seen_at >= hold_s:
        return "-"
    return f"{last.get('outcome', '-')} {last.get('reason', '')}".strip()


def status_line(
    stop: threading.Event,
    kiosk: Any,
    indicator: Any,
    camera: Any,
    bus: Any,
    hold_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """LEDs and the last verdict on one live terminal line (a line per verdict if no TTY)."""
    from appliance.devices.indicator import lamp_states

    last: dict[str, Any] = {}
    seen: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "verdict":
            last.clear()
            last.update(event)
            seen[:] = [clock()]

    bus.listen(on_event)
    tty = sys.stdout.isatty()
    shown = None
    while not stop.wait(0.1):
        if tty:
            verdict = verdict_label(last, seen[0] if seen else None, clock(), hold_s)
        else:
            verdict = f"{last.get('outcome', '-')} {last.get('reason', '')}".strip()
        in_view = camera.current.label if camera.current else "nothing"
        if tty:
            line = status_text(lamp_states(indicator), in_view, verdict, kiosk.stats.fps, columns())
            sys.stdout.write(f"\r\x1b[K{line}")
            sys.stdout.flush()
        elif last.get("id") != shown and last:
            shown = last.get("id")
            say(f"verdict: {verdict} ({in_view})")
