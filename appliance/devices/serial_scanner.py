"""CDC/serial QR scanners: lines of text from a tty to QR texts.

Such a scanner appears as ``/dev/ttyACM0`` (``[scanner] serial_device``) and sends what it
reads as one line, ended by CR or LF. The line is set raw (no echo, no line editing) so
the kernel hands over bytes as they come; CDC-ACM ignores the baud rate. A lost device is
reopened with backoff by ``appliance.devices.reader``, like the HID scanner.
"""

from __future__ import annotations

import logging
import os
import termios
import threading
import tty
from collections.abc import Callable

from appliance.devices.reader import Consumer, read_device
from appliance.devices.scanner import bytes_to_text

log = logging.getLogger(__name__)

MAX_SERIAL_LINE = 8192


def _open_serial(device: str) -> int:
    fd = os.open(device, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if os.isatty(fd):
            tty.setraw(fd)  # no echo, no line editing; CDC-ACM ignores the baud rate
            attrs = termios.tcgetattr(fd)
            attrs[4] = attrs[5] = termios.B9600
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error as e:
        os.close(fd)
        raise OSError(f"cannot set the serial line up: {e}") from e
    return fd


def read_serial(
    device: str, submit: Callable[[str, str], None], stop: threading.Event, *, poll_s: float = 0.25
) -> None:
    """Lines from a serial QR scanner to ``submit(text, "serial")`` until ``stop``.

    Lines end in CR or LF; blank lines are skipped; a line longer than MAX_SERIAL_LINE
    bytes is dropped whole. Bytes are UTF-8 where valid, else latin-1 (like the camera
    decoders). A lost device is reopened with backoff. Scanned texts are never logged.
    """

    def new_consumer() -> Consumer:
        buf, overlong = bytearray(), False

        def consume(chunk: bytes) -> None:
            nonlocal buf, overlong
            buf += chunk
            *lines, rest = buf.replace(b"\r", b"\n").split(b"\n")
            buf = bytearray(rest)
            for line in lines:
                if overlong:
                    overlong = False  # the tail of a dropped line
                elif line.strip():
                    submit(bytes_to_text(line.strip()), "serial")
            if len(buf) > MAX_SERIAL_LINE:
                log.warning(
                    "serial scanner %s: line over %d bytes dropped", device, MAX_SERIAL_LINE
                )
                buf.clear()
                overlong = True

        return consume

    read_device(device, _open_serial, new_consumer, stop, name="serial scanner", poll_s=poll_s)
