"""systemd readiness and watchdog notifications ($NOTIFY_SOCKET), no extra dependency."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def sd_notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``READY=1``); False when not run under systemd."""
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(1.0)
            s.connect(address)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", address, e)
        return False
    return True


class Watchdog:
    """Pets systemd's watchdog at half its interval, from the loop that must stay alive."""

    def __init__(self, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = env if env is not None else os.environ
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        enabled = usec is not None and (pid is None or pid == str(os.getpid()))
        self.interval_s = int(usec) / 2e6 if enabled and usec and usec.isdigit() else None
        self._env = env
        self._clock = clock
        self._last = float("-inf")

    def pet(self) -> None:
        if self.interval_s is None:
            return
        now = self._clock()
        if now - self._last >= self.interval_s:
            self._last = now
            sd_notify("WATCHDOG=1", self._env)
