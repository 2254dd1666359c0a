"""The staleness rule, once: trust data is stale when older than ``policy.max_age_hours``.

The verifier (TRUST_DATA_STALE), the kiosk's indicator (amber before anyone presents a
code) and the status page and /healthz all ask this module, so they never disagree about
the same data at the same time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the screens ask past_max_age without the crypto stack
    from appliance.core.snapshot import TrustSnapshot


def past_max_age(age_s: float, max_age_hours: float) -> bool:
    """Older than the policy allows (strictly: data exactly ``max_age_hours`` old is fresh)."""
    return age_s > max_age_hours * 3600


def trust_stale(trust: TrustSnapshot, now: float) -> bool | None:
    """Whether ``trust`` is stale at ``now``; None when it has no publication time (a trust
    source file), where each caller decides: the verifier refuses, authoring does not."""
    if trust.published_at is None:
        return None
    return past_max_age(now - trust.published_at, trust.policy.max_age_hours)
