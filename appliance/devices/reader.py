"""Reading a character device that may come and go (USB scanners): one loop for all.

Opens the device, hands every chunk of bytes to a per-connection consumer, and reopens
with backoff when the device is unplugged or cannot be opened, until ``stop``. A consumer
that raises anything but ``OSError`` loses that chunk (and the partial line it was in: a
fresh consumer takes over), never the reader thread.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

from appliance.platform.backoff import Backoff
from appliance.platform.log_limits import RepeatLimiter

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0

Consumer = Callable[[bytes], None]


def read_device(
    device: str,
    open_device: Callable[[str], int],
    new_consumer: Callable[[], Consumer],
    stop: threading.Event,
    *,
    name: str,
    poll_s: float = 0.25,
    chunk_bytes: int = 4096,
) -> None:
    """Feed chunks from ``open_device(device)`` to a fresh ``new_consumer()`` per connection.

    ``open_device`` returns a non-blocking file descriptor or raises ``OSError`` (or an
    ``OSError`` subclass of its own); the consumer may raise ``OSError`` to force a reopen.
    """
    reopen = Backoff(1.0, RETRY_MAX_S)
    faults = RepeatLimiter(log)
    while not stop.is_set():
        try:
            fd = open_device(device)
        except OSError as e:
            delay = reopen.next()
            log.error("%s %s: %s; retrying in %.0f s", name, device, e, delay)
            stop.wait(delay)
            continue
        log.info("%s %s open", name, device)
        reopen.reset()
        consume = new_consumer()
        try:
            while not stop.is_set():
                ready, _, _ = select.select([fd], [], [], poll_s)
                if not ready:
                    continue
                try:
                    chunk = os.read(fd, chunk_bytes)
                except BlockingIOError:
                    continue
                if not chunk:  # hang-up: the device was unplugged
                    raise OSError("device closed")
                try:
                    consume(chunk)
                except OSError:
                    raise
                except Exception as e:  # noqa: BLE001 - one bad input costs that input, not the reader
                    faults.fault(f"{name} {device}: input dropped", e)
                    consume = new_consumer()
        except OSError as e:
            log.error("%s %s lost: %s", name, device, e)
            stop.wait(reopen.base_s)  # a lost device: one base delay, then reopen
        finally:
            os.close(fd)
