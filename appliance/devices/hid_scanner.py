"""Keyboard-wedge (USB HID) QR scanners: key events from /dev/input to QR texts.

Many kiosks already have a scanner that "types" what it reads, ending with Enter. Such
a scanner appears as a keyboard under /dev/input; we read its raw events (struct
input_event), take the device exclusively (EVIOCGRAB, so the keystrokes never reach a
console or the kiosk browser) and turn key presses into text with a US layout, which is
what these scanners emulate by default. No python-evdev needed: the event format is a
stable kernel ABI of a few fields.

The key map covers what QR payloads of our profiles use (Base45, ``shc:/`` digits,
URLs) plus common punctuation. A key without a mapping is counted, and the line it was
in is dropped rather than passed on altered.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
from collections.abc import Callable

from appliance.devices.reader import read_device

log = logging.getLogger(__name__)

EVENT = struct.Struct("llHHi")  # timeval (native longs), type, code, value
EV_KEY = 1
KEY_PRESS, KEY_REPEAT = 1, 2
EVIOCGRAB = 0x40044590
MAX_LINE = 8192

SHIFT_KEYS = {42, 54}
ENTER_KEYS = {28, 96}
# key code -> (plain, shifted), US layout
_KEYS: dict[int, tuple[str, str]] = {
    2: ("1", "!"),
    3: ("2", "@"),
    4: ("3", "#"),
    5: ("4", "$"),
    6: ("5", "%"),
    7: ("6", "^"),
    8: ("7", "&"),
    9: ("8", "*"),
    10: ("9", "("),
    11: ("0", ")"),
    12: ("-", "_"),
    13: ("=", "+"),
    26: ("[", "{"),
    27: ("]", "}"),
    39: (";", ":"),
    40: ("'", '"'),
    41: ("`", "~"),
    43: ("\\", "|"),
    51: (",", "<"),
    52: (".", ">"),
    53: ("/", "?"),
    57: (" ", " "),
    # keypad
    55: ("*", "*"),
    74: ("-", "-"),
    78: ("+", "+"),
    98: ("/", "/"),
    83: (".", "."),
    71: ("7", "7"),
    72: ("8", "8"),
    73: ("9", "9"),
    75: ("4", "4"),
    76: ("5", "5"),
    77: ("6", "6"),
    79: ("1", "1"),
    80: ("2", "2"),
    81: ("3", "3"),
    82: ("0", "0"),
}
for _codes, _letters in (
    (range(16, 26), "qwertyuiop"),
    (range(30, 39), "asdfghjkl"),
    (range(44, 51), "zxcvbnm"),
):
    for _code, _letter in zip(_codes, _letters, strict=True):
        _KEYS[_code] = (_letter, _letter.upper())


class KeyboardDecoder:
    """Key events in, finished lines out. Pure: no IO."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._shift = False
        self._chars: list[str] = []
        self._bad = False
        self._max_line = max_line
        self.dropped_lines = 0

    def feed(self, ev_type: int, code: int, value: int) -> str | None:
        """One input event; returns a line when Enter ends a complete, clean one."""
        if ev_type != EV_KEY:
            return None
        if code in SHIFT_KEYS:
            self._shift = value != 0
            return None
        if value not in (KEY_PRESS, KEY_REPEAT):
            return None
        if code in ENTER_KEYS:
            line, bad = "".join(self._chars), self._bad
            self._chars, self._bad = [], False
            if bad:
                self.dropped_lines += 1
                return None
            return line or None
        mapped = _KEYS.get(code)
        if mapped is None or len(self._chars) >= self._max_line:
            self._bad = True
            return None
        self._chars.append(mapped[1] if self._shift else mapped[0])
        return None


def read_hid(
    device: str, submit: Callable[[str, str], None], stop: threading.Event, *, poll_s: float = 0.25
) -> None:
    """Lines from a keyboard-wedge scanner to ``submit(text, "hid")`` until ``stop``.

    The device is reopened with backoff when it disappears. Texts are never logged.
    """

    def new_consumer() -> Callable[[bytes], None]:
        decoder = KeyboardDecoder()
        pending = b""

        def consume(chunk: bytes) -> None:
            nonlocal pending
            pending += chunk
            whole = len(pending) - len(pending) % EVENT.size
            for _sec, _usec, ev_type, code, value in EVENT.iter_unpack(pending[:whole]):
                line = decoder.feed(ev_type, code, value)
                if line is not None:
                    submit(line, "hid")
            pending = pending[whole:]

        return consume

    read_device(
        device,
        _open_grabbed,
        new_consumer,
        stop,
        name="HID scanner",
        poll_s=poll_s,
        chunk_bytes=EVENT.size * 64,
    )


def _open_grabbed(device: str) -> int:
    """Open the event device and take it exclusively, so its keys reach nothing else."""
    fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, EVIOCGRAB, 1)
    except OSError as e:
        log.warning("HID scanner %s: cannot take it exclusively (%s)", device, e.strerror)
    return fd
