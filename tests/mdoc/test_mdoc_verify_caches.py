"""The verifier's caches never change a verdict (issue 23, "Measured": the speed work).

What the DS certificate's bytes alone decide is kept per DER (``load_ds_certificate``, a
bounded LRU), and the ``iaca`` keys are indexed by subject once per trust snapshot
(``find_iaca``). Everything that depends on the clock or on the trust data still runs on
every response: each test verifies the same response again after a pass and expects the
reason the new ``now`` or the new snapshot gives.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from issuer_support import NOW, TestIaca
from mdoc_cases import World

from appliance.core.credential.mdoc.ds_cert import load_ds_certificate
from appliance.core.reasons import Outcome, Reason
from appliance.trust.source import snapshot_from_document

DAY = dt.timedelta(days=1)


def _reason(result: object) -> tuple[Outcome, Reason]:
    verdict = result.verdict  # type: ignore[attr-defined]
    return verdict.outcome, verdict.reason


@pytest.fixture
def world() -> World:
    return World()


def test_the_clock_is_read_on_every_response(world: World) -> None:
    world.ds = world.iaca.document_signer(not_after=NOW + 10 * DAY)
    response = world.response(world.issue(valid_until=NOW + 30 * DAY))
    trust = world.trust()
    assert _reason(world.verify(response, trust=trust)) == (Outcome.PASS, Reason.OK)
    later = world.verify(response, trust=trust, now=NOW + 20 * DAY)
    assert _reason(later) == (Outcome.FAIL, Reason.MDOC_DS_EXPIRED)
    earlier = world.verify(response, trust=trust, now=NOW - 40 * DAY)
    assert _reason(earlier) == (Outcome.FAIL, Reason.NOT_YET_VALID)
    assert _reason(world.verify(response, trust=trust)) == (Outcome.PASS, Reason.OK)


def test_the_iaca_validity_is_read_on_every_response(world: World) -> None:
    doc = world.iaca.trust_document()
    doc["issuers"][0]["keys"][0]["not_after"] = (NOW + DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    trust = snapshot_from_document(doc)
    response = world.response()
    assert _reason(world.verify(response, trust=trust)) == (Outcome.PASS, Reason.OK)
    later = world.verify(response, trust=trust, now=NOW + 2 * DAY)
    assert _reason(later) == (Outcome.FAIL, Reason.ISSUER_KEY_EXPIRED)


def test_a_ds_revoked_after_a_pass_fails_and_a_lifted_revocation_passes(world: World) -> None:
    response = world.response()
    assert _reason(world.verify(response, trust=world.trust())) == (Outcome.PASS, Reason.OK)
    revoked = world.trust(
        revoked={"mdoc_ds_sha256": [hashlib.sha256(world.signer().der).hexdigest()]}
    )
    assert _reason(world.verify(response, trust=revoked)) == (Outcome.FAIL, Reason.MDOC_DS_REVOKED)
    assert _reason(world.verify(response, trust=world.trust())) == (Outcome.PASS, Reason.OK)


def test_a_trust_snapshot_swap_is_seen_at_once(world: World) -> None:
    """Another IACA with the very same subject Name (a rollover, or an impostor): the subject
    index holds both, and only the one whose key signed the DS vouches for it."""
    response = world.response()
    same_name = TestIaca.create()
    assert same_name.certificate.subject == world.iaca.certificate.subject
    ours = world.iaca.trust_document()
    other = same_name.trust_document()
    both = same_name.trust_document()
    both["issuers"][0]["keys"].append(world.iaca.trust_entry())
    revoked = world.iaca.trust_document(status="revoked")
    for doc, expected in (
        (ours, (Outcome.PASS, Reason.OK)),
        (other, (Outcome.FAIL, Reason.MDOC_ISSUER_UNKNOWN)),
        (both, (Outcome.PASS, Reason.OK)),
        (revoked, (Outcome.FAIL, Reason.ISSUER_KEY_REVOKED)),
        ({"issuers": [], "policy": ours["policy"]}, (Outcome.FAIL, Reason.MDOC_ISSUER_UNKNOWN)),
        (ours, (Outcome.PASS, Reason.OK)),
    ):
        assert _reason(world.verify(response, trust=snapshot_from_document(doc))) == expected
    # The same snapshot objects again, after the index has seen others.
    first, second = snapshot_from_document(ours), snapshot_from_document(revoked)
    for trust, expected in ((first, Reason.OK), (second, Reason.ISSUER_KEY_REVOKED)) * 4:
        assert world.verify(response, trust=trust).verdict.reason is expected


def test_the_ds_profile_is_judged_per_certificate(world: World) -> None:
    """A DS outside the profile and one inside it, alternately: each keeps its own verdict."""
    good = world.response()
    world.ds = world.iaca.document_signer(eku=False)
    bad = world.response()
    trust = world.trust()
    for _ in range(3):
        assert _reason(world.verify(good, trust=trust)) == (Outcome.PASS, Reason.OK)
        assert _reason(world.verify(bad, trust=trust)) == (
            Outcome.FAIL,
            Reason.MDOC_DS_CERT_INVALID,
        )


def test_the_ds_cache_is_bounded_and_forgets_nothing_it_needs(world: World) -> None:
    first = world.response()
    trust = world.trust()
    assert _reason(world.verify(first, trust=trust)) == (Outcome.PASS, Reason.OK)
    size = load_ds_certificate.cache_info().maxsize
    assert size is not None
    for _ in range(size + 1):
        load_ds_certificate(world.iaca.document_signer().der)
    assert load_ds_certificate.cache_info().currsize <= size
    assert _reason(world.verify(first, trust=trust)) == (Outcome.PASS, Reason.OK)
