"""Time for the verifier: what "now" is and whether it can be trusted (spec LC1 s.6).

The Pi has no battery clock on most models, so a freshly booted device may believe it is
1970 or last week. The trusted-time floor is the newest of: the last time a synchronised
clock was seen, the publication time of the current trust data, and the build time of
the software. A system clock below the floor is untrusted. The floor's persistence is an
adapter (``FileTimeFloor``) so the rule itself stays pure and testable. Sync marks it at
most at the signed publication time (``floor_mark``) and not after a forward jump of the
clock (``forward_jump``), so a spoofed time source cannot push it ahead (issue 21).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from appliance.platform.files import write_atomic

log = logging.getLogger(__name__)

# Build time of this software (epoch s): a clock below it is certainly wrong.
BUILD_TIME = 1_795_000_000.0  # 2026-11-18T13:46:40Z, bumped on release


@dataclass(frozen=True, slots=True)
class Reading:
    now: float
    trusted: bool


class Clock(Protocol):
    def read(self) -> Reading:
        """The current time and whether it may be trusted."""
        ...


def local_utc_offset(now: float) -> int:
    """This machine's UTC offset in seconds at ``now``: which local day an mDL's
    ``expiry_date`` ends on (spec mdl-reader s.4); 0 where the platform cannot say."""
    try:
        return time.localtime(now).tm_gmtoff
    except (OverflowError, OSError, ValueError):
        return 0


def is_trusted(now: float, floor: float) -> bool:
    """The rule of spec LC1 s.6: a clock below the floor is untrusted."""
    return now >= floor


def time_floor(
    last_synchronised: float | None, published_at: float | None, build_time: float = BUILD_TIME
) -> float:
    return max(x for x in (last_synchronised, published_at, build_time) if x is not None)


@dataclass(frozen=True)
class FixedClock:
    """``--at``: a given instant, trusted by definition (spec LC1 s.7)."""

    now: float

    def read(self) -> Reading:
        return Reading(self.now, True)


class FloorClock:
    """A clock (system by default) checked against the trusted-time floor.

    ``floor_sources`` are called on every read so that new trust data (a newer
    publication time) and new synchronisation marks take effect at once.
    """

    def __init__(
        self,
        floor_sources: Callable[[], tuple[float | None, float | None]],
        wall: Callable[[], float] = time.time,
        build_time: float = BUILD_TIME,
    ) -> None:
        self._floor_sources = floor_sources
        self._wall = wall
        self._build_time = build_time

    def read(self) -> Reading:
        now = self._wall()
        last_sync, published = self._floor_sources()
        return Reading(now, is_trusted(now, time_floor(last_sync, published, self._build_time)))


class FileTimeFloor:
    """Persists the last time a synchronised clock was seen (``state_dir/clock.json``).

    Written atomically (temporary file, fsync, rename) so a power cut leaves the old or
    the new value. The floor only moves forward.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def last_synchronised(self) -> float | None:
        try:
            value = json.loads(self.path.read_text())["last_synchronised"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return float(value) if isinstance(value, int | float) else None

    def mark_synchronised(self, now: float) -> None:
        previous = self.last_synchronised()
        if previous is not None and previous >= now:
            return
        write_atomic(self.path, json.dumps({"last_synchronised": now}).encode())


def floor_mark(wall: float, published_at: float | None) -> float | None:
    """What sync may raise the floor to: the synchronised wall clock, but never above the
    publication time of signed trust data (issue 21). A spoofed time source that pushes
    the clock ahead during one sync cannot push the floor past what the authority signed,
    so it cannot make every later verdict CLOCK_UNTRUSTED."""
    if published_at is None:
        return None
    return min(wall, published_at)


def forward_jump(
    reference: Mapping[str, Any] | None, boot_id: str, since_boot_s: float, wall: float
) -> float | None:
    """How far the wall clock moved beyond the time that really elapsed since
    ``reference`` (``boot_id``, ``since_boot_s``, ``wall`` of an earlier synchronised
    reading in this boot), or None when there is nothing to compare with (another boot,
    no reference). Time since boot (CLOCK_BOOTTIME) is not stepped by NTP or an admin."""
    if not isinstance(reference, Mapping) or not boot_id or reference.get("boot_id") != boot_id:
        return None
    then_boot, then_wall = reference.get("since_boot_s"), reference.get("wall")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in (then_boot, then_wall)
    ):
        return None
    assert isinstance(then_boot, int | float) and isinstance(then_wall, int | float)
    return (wall - then_wall) - (since_boot_s - then_boot)


def boot_clock() -> tuple[str, float]:
    """(boot id, seconds since boot, suspend included) for ``forward_jump``."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64]
    except OSError:
        boot_id = ""
    return boot_id, time.clock_gettime(time.CLOCK_BOOTTIME)


def system_clock_synchronised() -> bool:
    """True when the kernel says NTP has synchronised the clock (adjtimex, via timedatectl)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(256)  # struct timex, large enough on every ABI
        state = int(libc.adjtimex(buf))  # ctypes answers Any: the kernel returns an int
    except (OSError, AttributeError):
        return False
    TIME_ERROR = 5  # noqa: N806 - kernel constant: clock not synchronised
    return 0 <= state != TIME_ERROR
