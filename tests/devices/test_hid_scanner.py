"""Keyboard-wedge scanners: key events (the kernel's input_event layout) to QR texts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from support import World

from appliance.devices.hid_scanner import EVENT, KeyboardDecoder, read_hid

# code of each key of a US keyboard, for typing texts the way a scanner does
_CODES = {c: i for i, c in enumerate("1234567890", start=2)}
_CODES.update({c: code for code, c in zip(range(16, 26), "QWERTYUIOP", strict=True)})
_CODES.update({c: code for code, c in zip(range(30, 39), "ASDFGHJKL", strict=True)})
_CODES.update({c: code for code, c in zip(range(44, 51), "ZXCVBNM", strict=True)})
_SHIFTED = {"$": 5, "%": 6, "*": 9, "+": 13, ":": 39}
_PLAIN = {" ": 57, "-": 12, ".": 52, "/": 53}


def type_events(text: str) -> list[tuple[int, int, int]]:
    """(type, code, value) events a US-layout keyboard-wedge scanner sends for ``text``."""
    events = []
    for ch in text:
        shift = ch in _SHIFTED or ch.isalpha()
        code = _SHIFTED.get(ch) or _CODES.get(ch) or _PLAIN[ch]
        if shift:
            events.append((1, 42, 1))
        events += [(1, code, 1), (0, 0, 0), (1, code, 0)]
        if shift:
            events.append((1, 42, 0))
    return [*events, (1, 28, 1), (1, 28, 0)]


def test_a_typed_credential_comes_out_exactly() -> None:
    text = World().issue()
    decoder = KeyboardDecoder()
    out = [line for e in type_events(text) if (line := decoder.feed(*e)) is not None]
    assert out == [text]


def test_unmapped_key_drops_the_line_not_alters_it() -> None:
    decoder = KeyboardDecoder()
    events = type_events("AB")
    events.insert(2, (1, 183, 1))  # F13: no character
    assert [x for e in events if (x := decoder.feed(*e))] == []
    assert decoder.dropped_lines == 1
    assert [x for e in type_events("CD") if (x := decoder.feed(*e))] == ["CD"]


def test_overlong_line_is_dropped() -> None:
    decoder = KeyboardDecoder(max_line=5)
    assert [x for e in type_events("ABCDEFG") if (x := decoder.feed(*e))] == []


def test_reader_over_a_device_like_stream(tmp_path: Path) -> None:
    """read_hid on a FIFO carrying packed input_event structs, as /dev/input does."""
    fifo = tmp_path / "event0"
    os.mkfifo(fifo)
    got: list[tuple[str, str]] = []
    stop = threading.Event()
    reader = threading.Thread(
        target=read_hid,
        args=(str(fifo), lambda t, s: got.append((t, s)), stop),
        kwargs={"poll_s": 0.05},
    )
    reader.start()
    with fifo.open("wb") as w:
        for text in ("LC1:ABC", "HELLO"):
            for ev_type, code, value in type_events(text):
                w.write(EVENT.pack(0, 0, ev_type, code, value))
            w.flush()
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    stop.set()
    reader.join(5)
    assert got == [("LC1:ABC", "hid"), ("HELLO", "hid")]
