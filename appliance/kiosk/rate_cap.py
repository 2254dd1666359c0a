"""A per-minute cap on verdicts, and so on audit records, counted when it drops one.

A screen cycling sheets of QR codes in front of the camera (or a script posting to
``/verify``) wrote ~24 audit records a second (issue 21): each is a durable SQLite write,
an upload row and a hub row, and nothing bounded them. ``RateCap`` is a token bucket on an
injected monotonic clock: ``per_minute`` tokens a minute, at most ``burst`` saved up (a
queue of people at a checkpoint), one taken per verification. An input over the cap gets
no verdict and no record, raises ``RateLimited`` for its caller, and is counted in
``dropped`` (kiosk status ``audit.verdicts_dropped``, metric
``appliance_verdicts_dropped_total``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# A tenth of a minute's worth may come at once.
BURST_FRACTION = 6


class RateCap:
    """Token bucket: ``per_minute`` a minute, ``burst`` at most in a row."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.burst = burst if burst is not None else max(1, per_minute // BURST_FRACTION)
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()
        self._lock = threading.Lock()
        self.dropped = 0

    def take(self) -> bool:
        """One token if there is one; False (and counted) otherwise."""
        with self._lock:
            now = self._clock()
            refill = max(0.0, now - self._at) * self.per_minute / 60.0
            self._tokens = min(float(self.burst), self._tokens + refill)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self.dropped += 1
            return False


def verdict_cap(per_minute: int, clock: Callable[[], float] = time.monotonic) -> RateCap | None:
    """The configured cap (``audit.max_verdicts_per_minute``); None for 0 (no cap)."""
    return RateCap(per_minute, clock=clock) if per_minute > 0 else None
