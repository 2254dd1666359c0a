"""The platform's shared idioms (issue 15): atomic writes and backoff."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.platform.backoff import Backoff, backoff_delay
from appliance.platform.files import temporary_name, write_atomic


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    write_atomic(target, b"new", sync_folder=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_write_atomic_sets_an_exact_mode_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "device.pub"
    old = os.umask(0o077)
    try:
        write_atomic(target, b"pem", mode=0o644, make_parents=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert not temporary_name(target).exists()


def test_a_planted_link_at_the_temporary_name_is_not_followed_for_a_mode(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    victim.chmod(0o600)
    target = tmp_path / "device.pub"
    temporary_name(target).symlink_to(victim)
    with pytest.raises(OSError):
        write_atomic(target, b"pem", mode=0o644)
    assert victim.read_bytes() == b"keep"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(1.0, 30.0)
    assert [b.next() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    b.reset()
    assert b.next() == 1.0


def test_backoff_jitter_stays_between_half_and_all_of_the_ceiling() -> None:
    assert backoff_delay(3, 1.0, 30.0, rng=lambda: 0.0) == 2.0
    assert backoff_delay(3, 1.0, 30.0, rng=lambda: 0.999) == pytest.approx(3.998)
    assert backoff_delay(10_000, 1.0) == 2.0**30  # no overflow, whatever the count
