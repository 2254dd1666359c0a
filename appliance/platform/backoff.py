"""Retry delays: doubling from a base up to a cap, with optional jitter.

Every retry loop (camera reopen, serial and HID scanners, the kiosk event stream, audit
upload, trust download) uses this rule, so a fleet that loses its hub or a kiosk that
loses its camera backs off the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_DOUBLINGS = 30  # 2**30 times the base is beyond any cap; keeps the float finite


def backoff_delay(
    failures: int,
    base_s: float,
    cap_s: float = float("inf"),
    rng: Callable[[], float] | None = None,
) -> float:
    """The delay after ``failures`` (1, 2, ...) consecutive failures: min(cap, base * 2^(n-1)),
    or, with ``rng`` (uniform in [0, 1)), between half and all of that (spreads a fleet)."""
    ceiling = min(cap_s, base_s * 2 ** min(max(failures, 1) - 1, MAX_DOUBLINGS))
    return ceiling if rng is None else ceiling * (0.5 + 0.5 * rng())


class Backoff:
    """The delay state of one retry loop: ``next()`` after a failure, ``reset()`` after a
    success."""

    def __init__(self, base_s: float, cap_s: float, rng: Callable[[], float] | None = None) -> None:
        self.base_s, self.cap_s, self._rng = base_s, cap_s, rng
        self.failures = 0

    def next(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        self.failures += 1
        return backoff_delay(self.failures, self.base_s, self.cap_s, self._rng)

    def reset(self) -> None:
        self.failures = 0
