"""Failed logins slow down per client, exponentially and with a cap; never a lockout.

The old limiter refused everyone (every screen client is 127.0.0.1) for five minutes after
five failures, the right password included, and any local process could keep that up. Here a
client may fail ``free`` times at once; after that each failure doubles the wait before its
next try, from ``base_s`` up to ``cap_s``. Once the wait is over the right password works.
Tries during the wait are refused without checking the password (no faster guessing). Time
comes from an injected clock.

The rule (``ThrottlePolicy``) is one; where the counts live is not: ``LoginThrottle`` keeps
them in this process's memory (the device's one web process), the hub keeps them in its
database (``appliance_hub.auth_throttle``) so every gunicorn worker counts the same
failures (issue 21: with four workers, 19 of 40 rapid wrong logins reached a password
check). Both offer ``reserve``: the check and the count in one step, so concurrent tries
cannot all pass the check before any failure is counted.
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


@dataclass(frozen=True)
class ThrottlePolicy:
    """``free`` failures answered at once, then waits doubling from ``base_s`` to ``cap_s``;
    a client's failures are forgotten ``forget_after_s`` after its last one."""

    free: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0
    forget_after_s: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "free", max(0, self.free))
        object.__setattr__(self, "base_s", max(0.0, self.base_s))
        object.__setattr__(self, "cap_s", max(self.base_s, self.cap_s))
        object.__setattr__(self, "forget_after_s", max(self.forget_after_s, self.cap_s))

    def delay_after(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row."""
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** min(over - 1, 32))


def whole_seconds(wait: float) -> int:
    """A wait as the whole seconds of ``Retry-After`` (0: may try now)."""
    return 0 if wait <= 0 else max(1, int(wait + 0.999))


class LoginThrottle:
    """Per-client delay after failed logins, in this process's memory (see module doc)."""

    def __init__(
        self,
        *,
        free: int = 5,
        base_s: float = 1.0,
        cap_s: float = 60.0,
        forget_after_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = ThrottlePolicy(free, base_s, cap_s, forget_after_s)
        self.free = self.policy.free
        self.base_s = self.policy.base_s
        self.cap_s = self.policy.cap_s
        self.forget_after_s = self.policy.forget_after_s
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
            return whole_seconds(rec.allowed_at - now)

    def delay_after(self, failures: int) -> float:
        return self.policy.delay_after(failures)

    def failed(self, client: str) -> None:
        with self._lock:
            self._count_failure(client, self._clock())

    def reserve(self, client: str) -> int:
        """Seconds ``client`` must still wait (nothing counted), or 0: this try is counted
        as a failure now, until ``succeeded``."""
        now = self._clock()
        with self._lock:
            rec = self._record(client, now)
            if rec is not None and rec.allowed_at > now:
                return whole_seconds(rec.allowed_at - now)
            self._count_failure(client, now)
            return 0

    def _count_failure(self, client: str, now: float) -> None:
        rec = self._record(client, now)
        failures = (rec.failures if rec else 0) + 1
        self._clients[client] = _Record(failures, now, now + self.delay_after(failures))
        self._clients.move_to_end(client)
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
