"""Step order of spec LC1 s.5 (corrected 2026-12-07): TYPE_NOT_ACCEPTED before STATUS_UNKNOWN.

Attack replayed (issue 21, finding 6): a licence of a type this checkpoint does not accept,
whose status list is unknown to the device, PASSed when ``policy.unknown_status`` was
``pass``, because step 7 (unknown status) was decided before step 6 (accepted types).

Every combination, for every profile: ``unknown_status`` fail / unverifiable / pass, type
accepted or not, status known or unknown. HC1 and SHC carry no status list, so for them the
"unknown" column cannot arise; their type rule is checked under every ``unknown_status``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import NOW, World, claims, licence
from test_sec_key_scope import DCC_ISS, CertKey, hc1_signed_by

from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint, verify
from appliance.tools.holder import cose_key, present
from appliance.tools.issuer import SigningKey, generate_key, issue
from appliance.trust.source import snapshot_from_document

KNOWN_URI = "https://status.example/dl/1"
UNKNOWN_URI = "https://status.example/dl/not-published"
POLICIES = ("fail", "unverifiable", "pass")


def expected(unknown_status: str, accepted: bool, status_known: bool) -> tuple[str, str]:
    """The spec's table: step 6 decides before step 7, and PASS only when nothing did."""
    if not accepted:
        return "FAIL", "TYPE_NOT_ACCEPTED"
    if not status_known:
        return unknown_status.upper(), "STATUS_UNKNOWN"
    return "PASS", "OK"


@pytest.fixture(scope="module")
def world() -> World:
    w = World()
    w.editor.set_status(KNOWN_URI, 5, 0)
    return w


@pytest.fixture(scope="module")
def holder() -> SigningKey:
    return generate_key("ES256")


def _lc1(world: World, holder: SigningKey, typ: str, status_known: bool) -> str:
    uri = KNOWN_URI if status_known else UNKNOWN_URI
    return issue(
        world.es256,
        claims(
            licence=licence(typ=typ),
            status_uri=uri,
            status_idx=5,
            holder_cose_key=cose_key(holder.private_key.public_key()),
        ),
    )


def _checkpoint(accepted: bool, typ: str) -> Checkpoint:
    return Checkpoint(accepted_types=frozenset({typ if accepted else "TX"}), check_staleness=False)


@pytest.mark.parametrize("status_known", [True, False], ids=["status-known", "status-unknown"])
@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "not-accepted"])
@pytest.mark.parametrize("unknown_status", POLICIES)
@pytest.mark.parametrize("profile", ["LC1", "LP1"])
def test_licence_profiles_table(
    world: World,
    holder: SigningKey,
    profile: str,
    unknown_status: str,
    accepted: bool,
    status_known: bool,
) -> None:
    world.editor.set_policy(unknown_status=unknown_status)
    trust = world.trust()
    qr = _lc1(world, holder, "DL", status_known)
    if profile == "LP1":
        qr = present(qr, holder, NOW)
    verdict = verify(qr, trust, NOW, checkpoint=_checkpoint(accepted, "DL"))
    assert verdict.profile == profile
    assert (str(verdict.outcome), str(verdict.reason)) == expected(
        unknown_status, accepted, status_known
    )


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "not-accepted"])
@pytest.mark.parametrize("unknown_status", POLICIES)
def test_hc1_table(unknown_status: str, accepted: bool) -> None:
    dsc = CertKey()
    trust = snapshot_from_document(
        {
            "issuers": [{"iss": DCC_ISS, "keys": [dsc.entry()]}],
            "policy": {"unknown_status": unknown_status},
        }
    )
    qr = hc1_signed_by(dsc.signer, dsc.kid)
    passing = verify(qr, trust, NOW, checkpoint=Checkpoint(check_staleness=False))
    assert (passing.outcome, passing.credential is not None) == (Outcome.PASS, True)
    typ = passing.credential.typ
    verdict = verify(qr, trust, NOW, checkpoint=_checkpoint(accepted, typ))
    assert (str(verdict.outcome), str(verdict.reason)) == expected(unknown_status, accepted, True)


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "not-accepted"])
@pytest.mark.parametrize("unknown_status", POLICIES)
def test_shc_table(shared_data: Path, unknown_status: str, accepted: bool) -> None:
    from test_shc import EXAMPLES, qr_texts, trust_doc
    from test_shc import SHC_TIME as SHC_NOW

    examples = shared_data / EXAMPLES
    if not examples.is_dir():
        pytest.skip(f"SMART Health Cards examples not found at {examples}")
    trust = snapshot_from_document(
        trust_doc(examples) | {"policy": {"unknown_status": unknown_status}}
    )
    qr = " ".join(qr_texts(examples, "00"))
    passing = verify(qr, trust, SHC_NOW, checkpoint=Checkpoint(check_staleness=False))
    assert passing.outcome is Outcome.PASS and passing.credential is not None
    verdict = verify(qr, trust, SHC_NOW, checkpoint=_checkpoint(accepted, passing.credential.typ))
    assert verdict.profile == "SHC"
    assert (str(verdict.outcome), str(verdict.reason)) == expected(unknown_status, accepted, True)


@settings(max_examples=60, deadline=None)
@given(
    unknown_status=st.sampled_from(POLICIES),
    typ=st.sampled_from(["DL", "TX", "BP"]),
    accepted=st.frozensets(st.sampled_from(["DL", "TX", "BP", "XX"]), max_size=3),
    status_known=st.booleans(),
)
def test_no_pass_for_a_type_not_accepted(
    world: World,
    holder,
    unknown_status: str,
    typ: str,
    accepted: frozenset[str],
    status_known: bool,
) -> None:
    """Whatever the policy and the status, a PASS implies the type is accepted (or the
    checkpoint accepts any type), and a type not accepted is always TYPE_NOT_ACCEPTED."""
    world.editor.set_policy(unknown_status=unknown_status)
    verdict = verify(
        _lc1(world, holder, typ, status_known),
        world.trust(),
        NOW,
        checkpoint=Checkpoint(accepted_types=accepted, check_staleness=False),
    )
    if accepted and typ not in accepted:
        assert (verdict.outcome, verdict.reason) == (Outcome.FAIL, Reason.TYPE_NOT_ACCEPTED)
    else:
        assert (str(verdict.outcome), str(verdict.reason)) == expected(
            unknown_status, True, status_known
        )
