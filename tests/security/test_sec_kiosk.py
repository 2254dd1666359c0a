"""Attack replays: one input that makes the verifier, decoder, audit or a screen raise costs
that input (a FAIL verdict, audited, LED red), never the kiosk loop or a scanner reader.

The verifier's own root causes are fixed elsewhere; here a verifier that raises is
injected, so the kiosk's resilience is tested whatever input triggers the fault.
"""

from __future__ import annotations

import logging
import os
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from support import NOW, World, qr_frame

from appliance.audit.log import AuditLog
from appliance.config import IndicatorConfig
from appliance.core.reasons import Outcome
from appliance.core.verifier import Checkpoint, verify
from appliance.devices.camera import Frame
from appliance.devices.hid_scanner import EVENT, read_hid
from appliance.devices.indicator import GpiozeroIndicator, lamp_states
from appliance.devices.reader import read_device
from appliance.devices.scanner import FrameScanner, make_decoder
from appliance.devices.serial_scanner import read_serial
from appliance.kiosk.loop import Kiosk
from appliance.kiosk.verification import VerificationService
from appliance.platform.log_limits import RepeatLimiter
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock

BOOM = "BOOM"


class Monotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Frames:
    """A frame source from a script of QR texts (None: an empty frame)."""

    def __init__(self, texts: list[str | None], clock: Monotonic) -> None:
        self.texts, self.clock = list(texts), clock

    def open(self) -> None:
        pass

    def read(self, timeout_s: float) -> Frame | None:
        self.clock.t += 1.0  # one second per frame: every code counts as new
        if not self.texts:
            return None
        return Frame(qr_frame(self.texts.pop(0)), self.clock.t)

    def close(self) -> None:
        pass


def exploding_verifier(text: str, trust, now, **kw):
    """The real verifier, except that one input makes it raise (quoting the input)."""
    if text == BOOM:
        raise ValueError(f"cannot handle {text}")
    return verify(text, trust, now, **kw)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture
def parts(world: World, tmp_path: Path):
    audit = AuditLog(
        tmp_path / "audit.db", device_id="pi-sec", hmac_key=b"k" * 32, identity=None
    ).open()
    indicator = GpiozeroIndicator(
        IndicatorConfig(backend="mock", verdict_hold_s=60), pin_factory=MockFactory()
    )
    yield audit, indicator
    indicator.close()
    audit.close()


def make_kiosk(world: World, parts, texts: list[str | None], **service_kw):
    audit, indicator = parts
    clock = Monotonic()
    service = VerificationService(
        lambda: world.trust(),
        FixedClock(NOW),
        Checkpoint(check_staleness=False),
        audit=audit,
        **service_kw,
    )
    bus = EventBus()
    seen: list[dict] = []
    bus.listen(seen.append)
    kiosk = Kiosk(
        Frames(texts, clock),
        FrameScanner(make_decoder("zxing", live=True)),
        service,
        indicator,
        bus,
        repeat_after_absent_s=0.5,
        monotonic=clock,
    )
    kiosk._open_camera()
    return kiosk, seen


def records(audit: AuditLog) -> list[dict]:
    import io
    import json

    out = io.StringIO()
    audit.export(out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_code_that_makes_the_verifier_raise_is_one_audited_fail(world, parts, caplog):
    audit, indicator = parts
    good = world.issue()
    kiosk, seen = make_kiosk(world, parts, [BOOM, None, good], verifier=exploding_verifier)
    with caplog.at_level(logging.DEBUG):
        first = kiosk.poll_once(0)
        assert [v.outcome for v in first] == [Outcome.FAIL]
        assert lamp_states(indicator)["red"] is True
        later = kiosk.poll_once(0) + kiosk.poll_once(0)
    assert [v.outcome for v in later] == [Outcome.PASS]
    rows = records(audit)
    assert [r["verdict"] for r in rows] == ["FAIL", "PASS"]
    assert rows[0]["reason"] == str(first[0].reason)
    assert [e["outcome"] for e in seen if e.get("type") == "verdict"] == ["FAIL", "PASS"]
    assert BOOM not in caplog.text  # the fault is named, the input never logged


def test_the_running_loop_survives_a_fault_anywhere_in_one_input(world, parts):
    """kiosk.run (the process's loop) keeps going when showing a verdict raises."""
    audit, indicator = parts
    good = world.issue()
    kiosk, _ = make_kiosk(world, parts, [BOOM, None, good], verifier=exploding_verifier)
    shows = {"n": 0}
    real_show = indicator.show_verdict

    def flaky_show(outcome: Outcome) -> None:
        shows["n"] += 1
        if shows["n"] == 1:
            raise RuntimeError("pin driver bug")
        real_show(outcome)

    indicator.show_verdict = flaky_show  # type: ignore[method-assign]
    stop = threading.Event()
    polls = {"n": 0}
    real_poll = kiosk.poll_once

    def counted(timeout_s: float = 0.2):
        polls["n"] += 1
        if polls["n"] >= 4:
            stop.set()
        return real_poll(0)

    kiosk.poll_once = counted  # type: ignore[method-assign]
    kiosk.run(stop)  # returns only because stop was set, not by an exception
    assert polls["n"] == 4
    assert [r["verdict"] for r in records(audit)] == ["FAIL", "PASS"]


def test_a_screen_listener_that_raises_does_not_stop_the_loop(world, parts):
    kiosk, _ = make_kiosk(world, parts, [world.issue()])

    def broken(event: dict) -> None:
        raise KeyError("screen bug")

    kiosk._events.listen(broken)
    assert [v.outcome for v in kiosk.poll_once(0)] == [Outcome.PASS]


def test_an_audit_sink_bug_is_an_audit_fault_not_a_crash(world, parts):
    class BuggyAudit:
        def record(self, verdict, *, now, source, trust) -> None:
            raise TypeError("bug in the sink")

    _, indicator = parts
    clock = Monotonic()
    service = VerificationService(
        lambda: world.trust(),
        FixedClock(NOW),
        Checkpoint(check_staleness=False),
        audit=BuggyAudit(),
    )
    kiosk = Kiosk(
        Frames([world.issue()], clock),
        FrameScanner(make_decoder("zxing")),
        service,
        indicator,
        EventBus(),
        monotonic=clock,
    )
    kiosk._open_camera()
    assert kiosk.poll_once(0) == []  # audit required: no verdict without a record
    assert service.audit_fault is not None
    assert lamp_states(indicator)["green"] is False


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_serial_scanner_bad_line_costs_one_line(world, parts):
    """A real pty as the serial scanner; the loop verifies BOOM (raises) then a good code."""
    audit, _ = parts
    kiosk, _ = make_kiosk(world, parts, [], verifier=exploding_verifier)
    master, slave = os.openpty()
    stop = threading.Event()
    reader = threading.Thread(
        target=read_serial,
        args=(os.ttyname(slave), kiosk.submit_text, stop),
        kwargs={"poll_s": 0.02},
    )
    reader.start()
    got: list = []
    try:
        # the reader has the line once it set it raw (no echo, no line editing)
        wait_for(lambda: not termios.tcgetattr(slave)[3] & termios.ICANON)
        os.write(master, f"{BOOM}\r\n{world.issue()}\r\n".encode())
        wait_for(lambda: got.extend(kiosk.poll_once(0)) or len(got) >= 2)
        assert reader.is_alive()
    finally:
        stop.set()
        reader.join(5)
        os.close(master)
        os.close(slave)
    assert [(v.outcome) for v in got] == [Outcome.FAIL, Outcome.PASS]
    assert [r["source"] for r in records(audit)] == ["serial", "serial"]


def _typed(text: str) -> bytes:
    codes = {c: code for code, c in zip(range(16, 26), "QWERTYUIOP", strict=True)}
    codes.update({c: code for code, c in zip(range(30, 39), "ASDFGHJKL", strict=True)})
    codes.update({c: code for code, c in zip(range(44, 51), "ZXCVBNM", strict=True)})
    out = b""
    for ch in text:
        out += EVENT.pack(0, 0, 1, 42, 1) + EVENT.pack(0, 0, 1, codes[ch], 1)
        out += EVENT.pack(0, 0, 1, codes[ch], 0) + EVENT.pack(0, 0, 1, 42, 0)
    return out + EVENT.pack(0, 0, 1, 28, 1) + EVENT.pack(0, 0, 1, 28, 0)


def test_hid_scanner_bad_line_costs_one_line(world, parts, tmp_path: Path):
    """A FIFO carrying input_event structs as the keyboard-wedge scanner."""
    audit, _ = parts
    kiosk, _ = make_kiosk(world, parts, [], verifier=exploding_verifier)
    fifo = tmp_path / "event0"
    os.mkfifo(fifo)
    stop = threading.Event()
    reader = threading.Thread(
        target=read_hid, args=(str(fifo), kiosk.submit_text, stop), kwargs={"poll_s": 0.02}
    )
    reader.start()
    got: list = []
    try:
        with fifo.open("wb") as w:
            w.write(_typed(BOOM) + _typed("HELLO"))
            w.flush()
            wait_for(lambda: got.extend(kiosk.poll_once(0)) or len(got) >= 2)
    finally:
        stop.set()
        reader.join(5)
    assert [v.outcome for v in got] == [Outcome.FAIL, Outcome.FAIL]
    assert [r["source"] for r in records(audit)] == ["hid", "hid"]


def test_device_reader_survives_a_consumer_that_raises(tmp_path: Path):
    """A bug in handling one chunk costs that chunk; the reader keeps reading."""
    r, w = os.pipe()
    seen: list[bytes] = []
    stop = threading.Event()

    def consumer():
        def consume(chunk: bytes) -> None:
            if chunk.startswith(b"bad"):
                raise UnicodeError("consumer bug")
            seen.append(chunk)

        return consume

    opened = {"n": 0}

    def open_pipe(_device: str) -> int:
        opened["n"] += 1
        if opened["n"] > 1:
            raise OSError("gone")
        os.set_blocking(r, False)
        return r

    reader = threading.Thread(
        target=read_device,
        args=("pipe", open_pipe, consumer, stop),
        kwargs={"name": "test", "poll_s": 0.02},
    )
    reader.start()
    try:
        os.write(w, b"bad chunk")
        wait_for(lambda: _drained(r))  # the reader took the bad chunk
        os.write(w, b"good")
        wait_for(lambda: seen == [b"good"])
        assert reader.is_alive()
    finally:
        stop.set()
        reader.join(5)
        os.close(w)


def _drained(fd: int) -> bool:
    import select

    return not select.select([fd], [], [], 0)[0]


def test_failing_decoder_is_logged_once_per_minute_with_a_count(world, parts, caplog):
    """4,745 tracebacks in 10 s before: now one line, then one line with the count."""
    kiosk, _ = make_kiosk(world, parts, [None] * 600)

    def broken_scan(grey: np.ndarray) -> list[str]:
        raise RuntimeError("decoder bug")

    kiosk._scanner.scan = broken_scan  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        for _ in range(100):  # 100 frames, one per second of the fake clock
            kiosk.poll_once(0)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert kiosk.stats.decode_errors == 100
    assert len(errors) in (1, 2)
    assert not any(r.exc_info for r in errors)
    assert "more like it" in errors[-1].getMessage()


def test_repeat_limiter_counts_and_reports(caplog):
    clock = Monotonic()
    limiter = RepeatLimiter(logging.getLogger("test.limits"), every_s=10, clock=clock)
    try:
        raise ValueError("secret QR text")
    except ValueError as e:
        error = e
    with caplog.at_level(logging.INFO, logger="test.limits"):
        assert limiter.fault("decode", error) is True
        assert [limiter.fault("decode", error) for _ in range(5)] == [False] * 5
        clock.t += 10
        assert limiter.fault("decode", error) is True
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "5 more like it" in lines[1]
    assert "secret" not in caplog.text
