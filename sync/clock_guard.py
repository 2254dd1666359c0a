"""The sync client's view of time: what expiry is judged at, and when the floor moves.

The trusted-time floor (``appliance.trust.clock``) is raised only on an NTP-synchronised clock,
never above the signed publication time, and not at all in a sync that saw the system
clock jump forward further than the time that really elapsed (a spoofed time source,
issue 21): such a jump is logged, counted in the sync state file and ignored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.core.isotime import instant_or_none as _epoch
from appliance.trust.clock import (
    BUILD_TIME,
    FileTimeFloor,
    boot_clock,
    floor_mark,
    forward_jump,
    system_clock_synchronised,
    time_floor,
)
from appliance_sync.schedule import iso_or_none

log = logging.getLogger(__name__)


class SyncClock:
    """One per sync client; ``check`` at the start of every sync, then the others."""

    def __init__(
        self,
        state_dir: Path,
        *,
        wall: Callable[[], float] = time.time,
        build_time: float = BUILD_TIME,
        clock_synchronised: Callable[[], bool] = system_clock_synchronised,
        boot: Callable[[], tuple[str, float]] = boot_clock,
        max_clock_jump_s: float = 3600.0,
    ) -> None:
        self._wall = wall
        self._build_time = build_time
        self._clock_synchronised = clock_synchronised
        self._boot = boot
        self.max_clock_jump_s = max_clock_jump_s
        self._clock_jumped = False
        self._jump_s = 0.0  # how far ahead a too-far jump put the clock, while this sync runs
        self.floor = FileTimeFloor(Path(state_dir) / "clock.json")

    def reference_time(self, installed: dict[str, Any] | None) -> float:
        published = _epoch(installed.get("published")) if installed else None
        floor = time_floor(self.floor.last_synchronised(), published, self._build_time)
        # After a too-far forward jump, expiry is judged at the time that really elapsed
        # (the jump is ignored), never below the floor (a clock set back revives nothing).
        return max(self._wall() - self._jump_s, floor)

    def mark_floor(self, published: float | None) -> None:
        """Raise the trusted-time floor on a synchronised clock, never above the signed
        publication time (``clock.floor_mark``), and not at all after a forward jump."""
        if self._clock_jumped or not self._clock_synchronised():
            return
        mark = floor_mark(self._wall(), published)
        if mark is not None:
            self.floor.mark_synchronised(mark)

    def check(self, state: dict[str, Any]) -> bool:
        """Whether the system clock jumped forward further than ``max_clock_jump_s`` beyond
        the time elapsed (since boot) since the last synchronised sync of this boot: a
        spoofed time source (issue 21). Such a jump is logged, counted in the state file
        (``clock_jumps``, ``last_clock_jump``, for the status page) and ignored: no floor
        mark, and the reference stays the last good reading."""
        wall = self._wall()
        boot_id, since_boot = self._boot()
        jump = forward_jump(state.get("clock_reference"), boot_id, since_boot, wall)
        self._jump_s = 0.0
        if jump is not None and jump > self.max_clock_jump_s:
            self._jump_s = jump
            state["clock_jumps"] = int(state.get("clock_jumps") or 0) + 1
            state["last_clock_jump"] = {"at": iso_or_none(wall), "ahead_s": round(jump, 1)}
            log.warning(
                "system clock is %.0f s ahead of the time elapsed since the last "
                "synchronised sync: ignored for the trusted-time floor",
                jump,
            )
            self._clock_jumped = True
            return True
        self._clock_jumped = False
        if self._clock_synchronised():
            state["clock_reference"] = {
                "boot_id": boot_id,
                "since_boot_s": since_boot,
                "wall": wall,
            }
        return False
