"""systemd readiness and watchdog notifications ($NOTIFY_SOCKET), no extra dependency."""

from __future__ import annotations

import http.client
import logging
import os
import socket
import threading
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

    def __init__(
        self, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        env = env if env is not None else os.environ
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        enabled = usec is not None and (pid is None or pid == str(os.getpid()))
        self.interval_s = int(usec) / 2e6 if enabled and usec and usec.isdigit() else None
        self._env = env
        self._clock = clock
        self._last = float("-inf")

    def pet(self) -> None:
        """Ping at most once per interval (callers in a busy loop call this every turn)."""
        if self.interval_s is None:
            return
        now = self._clock()
        if now - self._last >= self.interval_s:
            self.ping()

    def ping(self) -> None:
        """Ping now (a caller that already waits the interval itself)."""
        if self.interval_s is not None:
            self._last = self._clock()
            sd_notify("WATCHDOG=1", self._env)


PROBE_MAX_BYTES = 1 << 20  # a probe reads at most this much of the answer


def http_answers(host: str, port: int, path: str, timeout_s: float) -> bool:
    """True when the server at ``host:port`` answers ``GET path`` below 500 (a full
    answer: its accept loop, a worker thread and the application all work)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read(PROBE_MAX_BYTES)
        return response.status < 500
    except (OSError, http.client.HTTPException) as e:
        log.warning("watchdog probe of http://%s:%d%s failed: %s", host, port, path, e)
        return False
    finally:
        conn.close()


def loopback_for(host: str) -> str:
    """The address a probe on this host reaches a server bound to ``host`` at."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - the wildcard is read, not bound
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


class ProbeWatchdog:
    """Pings systemd's watchdog from a thread, only while ``probe()`` succeeds.

    For a server whose main thread sits in an accept loop that cannot pet the watchdog
    itself: a hung or dead server stops the pings and systemd restarts it. Probes every
    half watchdog interval (the probe's own timeout is below that); nothing when the
    unit has no ``WatchdogSec=``.
    """

    def __init__(self, probe: Callable[[], bool], watchdog: Watchdog | None = None) -> None:
        self.watchdog = watchdog or Watchdog()
        self._probe = probe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def probe_timeout_s(self) -> float:
        interval = self.watchdog.interval_s
        return 5.0 if interval is None else max(0.05, min(5.0, interval / 2))

    def start(self) -> bool:
        """Start probing; False (nothing started) without a watchdog."""
        if self.watchdog.interval_s is None:
            return False
        self._thread = threading.Thread(target=self._run, name="watchdog-probe", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = self.watchdog.interval_s or 1.0
        while not self._stop.is_set():
            if self._probe():
                self.watchdog.ping()
            if self._stop.wait(interval):
                return
