"""A trusted-time floor that a spoofed clock cannot poison (issue 21, finding 7).

Attack replayed: during one sync the time source is spoofed ~70 h ahead (the clock reads
as NTP-synchronised). Sync marked the trusted-time floor at that wall time; once the
clock came back, every verdict was UNVERIFIABLE CLOCK_UNTRUSTED for about three days.

What holds now: sync never raises the floor above the publication time of the signed
trust data, and a forward jump beyond the time elapsed since the last synchronised sync of
this boot (CLOCK_BOOTTIME, which no time source steps) is logged, counted in the state
file, shown on the status page and ignored. Real sync over loopback HTTP; every clock
(wall, synchronised flag, time since boot) injected.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sync_support import Authority, RepoServer, device

from appliance.core.errors import SyncError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import verify
from appliance.kiosk.status import trust_provider
from appliance.trust.clock import FileTimeFloor, FloorClock, floor_mark, forward_jump
from appliance.trust.store import CurrentTrust
from appliance.trust.sync_state import read_sync_state

HOUR = 3600.0


class Clocks:
    """The device's clocks: wall (what the time source says) and time since boot."""

    def __init__(self, wall: float) -> None:
        self.wall, self.since_boot, self.boot_id = wall, 1000.0, "boot-1"

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.since_boot += seconds

    def client(self, state: Path, authority: Authority, server: RepoServer):
        return device(
            state,
            server.url,
            authority.root_file,
            wall=lambda: self.wall,
            clock_synchronised=lambda: True,
            boot=lambda: (self.boot_id, self.since_boot),
        )


def _kiosk_reading(state: Path, trust: CurrentTrust, wall: float):
    floor = FileTimeFloor(state / "clock.json")
    return FloorClock(
        lambda: (floor.last_synchronised(), trust().published_at), wall=lambda: wall, build_time=0
    ).read()


def test_a_spoofed_jump_during_one_sync_does_not_poison_the_floor(
    tmp_path: Path, authority: Authority, server: RepoServer, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    clocks = Clocks(time.time())
    clocks.client(state, authority, server).sync_once()
    clocks.advance(15 * 60)
    real = clocks.wall
    clocks.wall += 70 * HOUR  # the spoofed time source, for one sync
    with caplog.at_level(logging.WARNING):
        clocks.client(state, authority, server).sync_once()
    assert "ahead of the time elapsed" in caplog.text
    clocks.wall = real  # the time source is honest again
    trust = CurrentTrust(state / "trust", root=authority.root_file)
    floor = FileTimeFloor(state / "clock.json").last_synchronised()
    published = trust().published_at
    assert floor is not None and published is not None and floor <= published
    reading = _kiosk_reading(state, trust, real)
    assert reading.trusted
    verdict = verify(authority.credential(), trust(), reading.now, clock_trusted=reading.trusted)
    assert (verdict.outcome, verdict.reason) == (Outcome.PASS, Reason.OK)
    # Recorded: counted in the state file, on the status page.
    recorded = read_sync_state(state)
    assert recorded["clock_jumps"] == 1
    assert recorded["last_clock_jump"]["ahead_s"] == pytest.approx(70 * HOUR, abs=1)
    status = trust_provider(state, 15)()
    assert status["clock_jumps"] == 1
    # The next honest sync is no jump (the reference stayed the last good reading).
    clocks.advance(15 * 60)
    clocks.client(state, authority, server).sync_once()
    assert read_sync_state(state)["clock_jumps"] == 1


def test_a_jump_past_the_metadata_expiry_does_not_stop_sync(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    """Ignored means ignored: expiry is judged at the time that really elapsed, so a
    70 h jump does not make 24 h metadata look expired (the floor still rules below)."""
    state = tmp_path / "state"
    clocks = Clocks(time.time())
    authority.publish(expires_hours=24)
    clocks.client(state, authority, server).sync_once()
    authority.editor.revoke_cti(b"\x05" * 16)
    new = authority.publish(expires_hours=24)
    clocks.advance(15 * 60)
    clocks.wall += 70 * HOUR
    assert clocks.client(state, authority, server).sync_once().version == new
    assert read_sync_state(state)["clock_jumps"] == 1
    # Without a jump, metadata past its expiry is still refused (freeze attacks).
    clocks.wall -= 70 * HOUR
    clocks.advance(30 * HOUR)
    with pytest.raises(SyncError, match="xpired"):
        clocks.client(state, authority, server).sync_once()


def test_the_floor_is_never_above_the_signed_publication_time(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    """Even without a reference to compare with (first sync after a boot)."""
    state = tmp_path / "state"
    clocks = Clocks(time.time() + 40 * HOUR)
    clocks.client(state, authority, server).sync_once()
    published = CurrentTrust(state / "trust", root=authority.root_file)().published_at
    assert FileTimeFloor(state / "clock.json").last_synchronised() == published
    assert read_sync_state(state).get("clock_jumps") is None


def test_rules_with_injected_readings() -> None:
    assert floor_mark(100.0, 90.0) == 90.0
    assert floor_mark(80.0, 90.0) == 80.0
    assert floor_mark(80.0, None) is None
    ref = {"boot_id": "b", "since_boot_s": 10.0, "wall": 1000.0}
    assert forward_jump(ref, "b", 70.0, 1060.0) == 0.0  # one minute, one minute
    assert forward_jump(ref, "b", 70.0, 1060.0 + 5 * HOUR) == 5 * HOUR
    assert forward_jump(ref, "other-boot", 70.0, 9e9) is None  # a reboot: nothing to compare
    assert forward_jump(None, "b", 70.0, 1060.0) is None
    assert forward_jump({"boot_id": "b", "since_boot_s": True, "wall": 1.0}, "b", 1, 2) is None
