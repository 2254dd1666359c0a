"""The trusted-time floor of spec LC1 s.6, with an injected wall clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.trust.clock import BUILD_TIME, FileTimeFloor, FixedClock, FloorClock, time_floor


class FakeWall:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_floor_is_newest_of_sync_publication_and_build() -> None:
    assert time_floor(None, None) == BUILD_TIME
    assert time_floor(BUILD_TIME + 10, None) == BUILD_TIME + 10
    assert time_floor(BUILD_TIME + 10, BUILD_TIME + 20) == BUILD_TIME + 20


def test_clock_below_floor_is_untrusted() -> None:
    wall = FakeWall(BUILD_TIME - 1)
    published = BUILD_TIME + 1000
    clock = FloorClock(lambda: (None, published), wall=wall)
    assert clock.read().trusted is False  # a Pi that booted into 1970 or last week
    wall.now = published - 1
    assert clock.read().trusted is False
    wall.now = published
    assert clock.read().trusted is True
    assert clock.read().now == published


def test_new_trust_data_raises_the_floor_at_once() -> None:
    wall = FakeWall(BUILD_TIME + 500)
    sources = {"published": BUILD_TIME + 100}
    clock = FloorClock(lambda: (None, sources["published"]), wall=wall)
    assert clock.read().trusted
    sources["published"] = BUILD_TIME + 900
    assert not clock.read().trusted


def test_file_floor_persists_and_only_moves_forward(tmp_path: Path) -> None:
    floor = FileTimeFloor(tmp_path / "clock.json")
    assert floor.last_synchronised() is None
    floor.mark_synchronised(BUILD_TIME + 50)
    floor.mark_synchronised(BUILD_TIME + 10)
    assert FileTimeFloor(tmp_path / "clock.json").last_synchronised() == BUILD_TIME + 50
    (tmp_path / "clock.json").write_text("{corrupt")
    assert floor.last_synchronised() is None  # corrupt state: fall back to other sources


def test_fixed_clock_is_trusted() -> None:
    assert FixedClock(5.0).read().trusted


def test_local_utc_offset_is_the_one_reading_of_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``appliance mdoc verify`` and the kiosk's sessions read the offset through this one
    function (an mDL's expiry_date ends at local midnight)."""
    import time

    from appliance.trust.clock import local_utc_offset

    monkeypatch.setenv("TZ", "Asia/Bangkok")
    time.tzset()
    try:
        assert local_utc_offset(1_796_000_000.0) == 7 * 3600
        assert local_utc_offset(1e300) == 0  # a time the platform cannot convert
    finally:
        monkeypatch.undo()
        time.tzset()
