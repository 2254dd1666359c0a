"""The shared idioms (issue 15): atomic writes, ISO 8601 times, backoff, the staleness rule."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.core.isotime import format_utc, instant_or_none, parse_instant
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


@pytest.mark.parametrize("text", ["2026-05-28T20:26:40Z", "2026-05-28T20:26:40+00:00",
                                  "2026-05-29T03:26:40+07:00", "2026-05-28T20:26:40.000Z"])
def test_parse_instant_reads_every_zone_form(text: str) -> None:
    assert parse_instant(text) == 1780000000.0


@pytest.mark.parametrize("value", ["2026-05-28T20:26:40", "yesterday", "", None, 1780000000])
def test_parse_instant_refuses_what_is_not_a_zoned_time(value: object) -> None:
    with pytest.raises(ValueError):
        parse_instant(value)
    assert instant_or_none(value) is None


def test_naive_times_are_utc_only_when_asked() -> None:
    assert parse_instant("2026-05-28T20:26:40", naive_is_utc=True) == 1780000000.0


def test_format_utc_round_trips_and_refuses_out_of_range() -> None:
    assert format_utc(1780000000) == "2026-05-28T20:26:40Z"
    assert parse_instant(format_utc(1780000000.9)) == 1780000000.0
    with pytest.raises(ValueError):
        format_utc(1e20)


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(1.0, 30.0)
    assert [b.next() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    b.reset()
    assert b.next() == 1.0


def test_backoff_jitter_stays_between_half_and_all_of_the_ceiling() -> None:
    assert backoff_delay(3, 1.0, 30.0, rng=lambda: 0.0) == 2.0
    assert backoff_delay(3, 1.0, 30.0, rng=lambda: 0.999) == pytest.approx(3.998)
    assert backoff_delay(10_000, 1.0) == 2.0 ** 30  # no overflow, whatever the count


def test_one_staleness_rule_for_verifier_indicator_and_status_page() -> None:
    from appliance.core.key_ring import KeyRing
    from appliance.core.snapshot import Policy, TrustSnapshot
    from appliance.core.staleness import past_max_age, trust_stale

    snap = TrustSnapshot(keys=KeyRing(()), policy=Policy(max_age_hours=2.0), published_at=1000.0)
    assert trust_stale(snap, 1000.0 + 7200) is False  # exactly the maximum age is fresh
    assert trust_stale(snap, 1000.0 + 7201) is True
    assert trust_stale(TrustSnapshot(keys=KeyRing(())), 1e9) is None
    assert past_max_age(7201, 2.0) and not past_max_age(7200, 2.0)


def test_delta_only_revocations_read_each_file_once(tmp_path: Path, monkeypatch) -> None:
    """trust_store used to re-read a delta file once per 16-byte entry (issue 15)."""
    from appliance.trust import store

    entries = [bytes([i]) * 16 for i in range(50)]
    (tmp_path / "cti.delta1.bin").write_bytes(b"".join(entries))
    reads: list[Path] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    hashes = store._hash_set(tmp_path, {"base": None, "deltas": ["cti.delta1.bin"]})
    assert len(reads) == 1
    assert all(e in hashes for e in entries) and bytes([99]) * 16 not in hashes
