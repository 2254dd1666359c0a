"""Rate-limited logging of repeated faults: the first in full, then a count.

A decoder that fails on every frame, or a QR code held in view that makes the verifier
raise, would otherwise write a traceback per frame (thousands a minute) to journald on
an SD card. ``RepeatLimiter`` logs the first occurrence of a kind of fault, counts the
identical ones that follow, and logs one line with the count once ``every_s`` has passed
and the fault happens again (or on ``flush``). The clock is passed in, so tests advance
it instead of sleeping.

Log lines name the fault (exception type and where it was raised), never the exception's
message, which may quote the hostile input (a QR text, a name, a licence number).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_EVERY_S = 60.0


def describe(error: BaseException) -> str:
    """``TypeName at module.py:123``: what failed and where, without the message."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


@dataclass
class _Seen:
    logged_at: float
    suppressed: int = 0


class RepeatLimiter:
    """Logs one line per kind of fault per ``every_s``, with the count of those left out."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every_s: float = DEFAULT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 256,
    ) -> None:
        self._log = logger
        self._every_s = every_s
        self._clock = clock
        self._max_kinds = max_kinds
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._lock = threading.Lock()

    def fault(self, what: str, error: BaseException, *, level: int = logging.ERROR) -> bool:
        """Log ``what: <describe(error)>`` unless the same fault was logged lately.

        The stack (frames only, no message) goes to the debug level, so ``-v`` shows it.
        Returns whether a line was written.
        """
        where = describe(error)
        key = (what, where)
        with self._lock:
            now = self._clock()
            seen = self._seen.get(key)
            if seen is not None and now - seen.logged_at < self._every_s:
                seen.suppressed += 1
                return False
            repeats = seen.suppressed if seen is not None else 0
            if seen is None and len(self._seen) >= self._max_kinds:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = _Seen(now)
        suffix = f" ({repeats} more like it since the last report)" if repeats else ""
        self._log.log(level, "%s: %s%s", what, where, suffix)
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug(
                "%s: %s raised at\n%s",
                what,
                type(error).__name__,
                "".join(traceback.format_list(traceback.extract_tb(error.__traceback__))).rstrip(),
            )
        return True

    def flush(self) -> None:
        """Write the counts still pending (at shutdown)."""
        with self._lock:
            pending = [
                (key, seen.suppressed) for key, seen in self._seen.items() if seen.suppressed
            ]
            self._seen.clear()
        for (what, where), count in pending:
            self._log.error("%s: %s (%d more like it since the last report)", what, where, count)
