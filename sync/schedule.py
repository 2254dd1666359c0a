"""One sync's result and the periodic loop that runs syncs with jitter.

Kept apart from the client so the loop's timing is tested with an injected sleep and
random source, without TUF or a network.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.core.errors import SyncError
from appliance.core.isotime import format_utc

log = logging.getLogger(__name__)


def iso_or_none(epoch: float | None) -> str | None:
    return None if epoch is None else format_utc(epoch)


@dataclass(frozen=True)
class SyncResult:
    version: int
    updated: bool
    bytes_fetched: int
    published: float | None
    expires: float | None

    def describe(self) -> str:
        what = "installed" if self.updated else "unchanged"
        return (
            f"trust data version {self.version} {what}, published "
            f"{iso_or_none(self.published)}, {self.bytes_fetched} bytes fetched"
        )


def run_periodic(
    sync: Callable[[], SyncResult],
    interval_s: float,
    jitter_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    rounds: int | None = None,
) -> None:
    """Sync every ``interval_s`` plus up to ``jitter_s`` (spreading a fleet's load)."""
    done = 0
    while rounds is None or done < rounds:
        try:
            log.info("%s", sync().describe())
        except SyncError as e:
            log.warning("sync failed, keeping the last good data: %s", e)
        done += 1
        if rounds is None or done < rounds:
            sleep(interval_s + jitter_s * rng())
