"""The core's shared idioms (issue 15): ISO 8601 times and the one staleness rule."""

from __future__ import annotations

import pytest

from appliance.core.isotime import format_utc, instant_or_none, parse_instant


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-28T20:26:40Z",
        "2026-05-28T20:26:40+00:00",
        "2026-05-29T03:26:40+07:00",
        "2026-05-28T20:26:40.000Z",
    ],
)
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


def test_one_staleness_rule_for_verifier_indicator_and_status_page() -> None:
    from appliance.core.key_ring import KeyRing
    from appliance.core.snapshot import Policy, TrustSnapshot
    from appliance.core.staleness import past_max_age, trust_stale

    snap = TrustSnapshot(keys=KeyRing(()), policy=Policy(max_age_hours=2.0), published_at=1000.0)
    assert trust_stale(snap, 1000.0 + 7200) is False  # exactly the maximum age is fresh
    assert trust_stale(snap, 1000.0 + 7201) is True
    assert trust_stale(TrustSnapshot(keys=KeyRing(())), 1e9) is None
    assert past_max_age(7201, 2.0) and not past_max_age(7200, 2.0)
