"""Failed logins slow down per client, exponentially and with a cap; never a lockout.

The old limiter refused everyone (every screen client is 127.0.0.1) for five minutes after
five failures, the right password included, and any local process could keep that up. Here a
client may fail ``free`` times at once; after that each failure doubles the wait before its
next try, from ``base_s`` up to ``cap_s``. Once the wait is over the right password works.
Tries during the wait are refused without checking the password (no faster guessing). Time
comes from an injected clock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 4096  # bounded memory under a flood of addresses


@dataclass
class _Record:
    failures: int
    last: float
    allowed_at: float


class LoginThrottle:
    """Per-client delay after failed logins (see module doc)."""

    def __init__(self, *, free: int = 5, base_s: float = 1.0, cap_s: float = 60.0,
                 forget_after_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free = max(0, free)
        self.base_s = max(0.0, base_s)
        self.cap_s = max(self.base_s, cap_s)
        self.forget_after_s = max(forget_after_s, self.cap_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Record] = OrderedDict()

    def _record(self, client: str, now: float) -> _Record | None:
        rec = self._clients.get(client)
        if rec is not None and now - rec.last >= self.forget_after_s:
            del self._clients[client]
            return None
        return rec

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            rec = self._record(client, now)
            if rec is None or rec.allowed_at <= now:
                return 0
            return max(1, int(rec.allowed_at - now + 0.999))

    def delay_after(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row."""
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** min(over - 1, 32))

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            rec = self._record(client, now)
            failures = (rec.failures if rec else 0) + 1
            self._clients[client] = _Record(failures, now, now + self.delay_after(failures))
            self._clients.move_to_end(client)
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
