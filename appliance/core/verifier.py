"""``verify(text, trust, now) -> Verdict``: pure, fast and total.

Every input ends in one verdict with one reason code, decided in the order of spec LC1
s.5 (and LP1 s.3). Stages raise a private ``Rejection`` that is caught here, in one place.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from appliance.core.credential.cose import ALG_NAMES
from appliance.core.credential.model import Credential, Opened
from appliance.core.credential.registry import find_profile
from appliance.core.errors import Rejection
from appliance.core.isotime import format_utc
from appliance.core.key_ring import IssuerKey
from appliance.core.reasons import Outcome, Reason
from appliance.core.remote_policy import out_of_service
from appliance.core.snapshot import REVOKED, SUSPENDED, VALID, TrustSnapshot, licence_digest
from appliance.core.staleness import trust_stale

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Local rules of this checkpoint (device configuration), on top of the trust data."""

    accepted_types: frozenset[str] = frozenset()  # empty: any type
    require_presentation_types: frozenset[str] = frozenset()
    check_staleness: bool = True  # False for authoring checks against a trust source file
    # The device's identity for remote policy (spec LC1 s.4); None in authoring checks.
    device_id: str | None = None
    software_version: str | None = None


DEFAULT_CHECKPOINT = Checkpoint()


class Verdict(NamedTuple):
    """One verdict with one reason code (immutable; a NamedTuple for speed, see Credential)."""

    outcome: Outcome
    reason: Reason
    profile: str | None = None
    kid: bytes | None = None
    key: IssuerKey | None = None
    credential: Credential | None = None
    live: bool = False  # a holder-signed presentation (LP1), not a static code

    @property
    def iss(self) -> str | None:
        if self.credential is not None and self.credential.iss is not None:
            return self.credential.iss
        return self.key.iss if self.key is not None else None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``appliance verify --json`` (spec LC1 s.7)."""
        out: dict[str, Any] = {
            "verdict": str(self.outcome),
            "reason": str(self.reason),
            "profile": self.profile,
        }
        if self.iss is not None:
            out["iss"] = self.iss
        if self.kid is not None:
            out["kid"] = self.kid.hex()
        if self.credential is not None:
            out["typ"] = self.credential.typ
            out["no"] = self.credential.no
            out["exp"] = iso_utc(self.credential.exp)
        return out


def iso_utc(epoch: float) -> str | None:
    try:
        return format_utc(epoch)
    except ValueError:
        return None


def verify(
    text: str,
    trust: TrustSnapshot,
    now: float,
    *,
    clock_trusted: bool = True,
    checkpoint: Checkpoint = DEFAULT_CHECKPOINT,
) -> Verdict:
    """Decide one QR text. Never raises on any input.

    Every known failure is a ``Rejection`` with its reason. Anything else a profile's
    decoding raises is a bug, not an outcome: the last-resort net turns it into FAIL
    ``MALFORMED_STRUCTURE`` (the spec's reasons are fixed) and logs it once, with the
    exception type and where it was raised, never the text or the exception's message
    (which may quote the input). Remote policy (spec LC1 s.4) comes before any decoding.
    """
    stopped = out_of_service(trust.policy, checkpoint.device_id, checkpoint.software_version)
    if stopped is not None:
        return Verdict(Outcome.UNVERIFIABLE, stopped)
    profile = find_profile(text)
    if profile is None:
        return Verdict(Outcome.FAIL, Reason.UNKNOWN_FORMAT)
    try:
        opened = profile.open(text)
    except Rejection as r:
        return Verdict(Outcome.FAIL, r.reason, profile.name)
    except Exception as e:  # noqa: BLE001 - verify is total: a profile's bug costs this input only
        _log_decoding_fault(profile.name, e)
        return Verdict(Outcome.FAIL, Reason.MALFORMED_STRUCTURE, profile.name)
    try:
        return _verify_opened(opened, trust, now, clock_trusted, checkpoint)
    except Exception as e:  # noqa: BLE001 - claims parsing and holder binding are profile code too
        _log_decoding_fault(profile.name, e)
        return Verdict(Outcome.FAIL, Reason.MALFORMED_STRUCTURE, profile.name, opened.kid)


def _log_decoding_fault(profile: str, error: Exception) -> None:
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    _log.error(
        "%s decoding raised %s at %s (a verifier bug); verdict FAIL MALFORMED_STRUCTURE",
        profile,
        type(error).__name__,
        where,
    )


def _verify_opened(
    opened: Opened, trust: TrustSnapshot, now: float, clock_trusted: bool, checkpoint: Checkpoint
) -> Verdict:
    # Each format resolves its kid among its own keys only (spec LC1 s.4 ``profiles``).
    scoped = trust.keys.by_format.get(opened.profile)
    key = scoped.get(opened.kid) if scoped is not None else None
    live = opened.binding is not None

    def fail(reason: Reason, cred: Credential | None = None) -> Verdict:
        return Verdict(Outcome.FAIL, reason, opened.profile, opened.kid, key, cred, live)

    # Step 1 of spec LC1 s.5: the bytes, the signature and the key.
    if key is None:
        return fail(Reason.UNKNOWN_ISSUER)
    if key.revoked:
        return fail(Reason.ISSUER_KEY_REVOKED)
    if ALG_NAMES.get(opened.alg) != key.alg:
        return fail(Reason.BAD_SIGNATURE)
    sign1 = opened.sign1
    if not key.verify(sign1.to_be_signed(), sign1.signature):
        return fail(Reason.BAD_SIGNATURE)
    try:
        cred = opened.parse_claims(sign1.payload)
    except Rejection as r:
        return fail(r.reason)
    if not key.not_before <= cred.iat <= key.not_after:
        return fail(Reason.ISSUER_KEY_EXPIRED, cred)
    if key.types and cred.typ not in key.types:
        return fail(Reason.TYPE_NOT_ALLOWED_FOR_KEY, cred)
    if opened.key_allows is not None and not opened.key_allows(key, cred):
        return fail(Reason.TYPE_NOT_ALLOWED_FOR_KEY, cred)
    if cred.iss != key.iss:
        return fail(Reason.ISSUER_MISMATCH, cred)
    policy = trust.policy
    if not live and (
        cred.typ in policy.require_presentation_types
        or cred.typ in checkpoint.require_presentation_types
    ):
        return fail(Reason.PRESENTATION_REQUIRED, cred)

    outcome, reason = _decide(cred, trust, now, clock_trusted, checkpoint)
    if outcome is Outcome.FAIL:
        return fail(reason, cred)
    if opened.binding is not None:
        try:
            holder_reason = opened.binding(cred, now, policy)
        except Rejection as r:
            holder_reason = r.reason
        if holder_reason is not None:
            return fail(holder_reason, cred)
    return Verdict(outcome, reason, opened.profile, opened.kid, key, cred, live)


def _decide(
    cred: Credential, trust: TrustSnapshot, now: float, clock_trusted: bool, checkpoint: Checkpoint
) -> tuple[Outcome, Reason]:
    """Steps 2 to 8 of spec LC1 s.5, for a credential whose signature and key held."""
    policy = trust.policy
    if not clock_trusted:
        return Outcome.UNVERIFIABLE, Reason.CLOCK_UNTRUSTED
    skew = policy.clock_skew_s
    if now > cred.exp + skew:
        return Outcome.FAIL, Reason.EXPIRED
    if (cred.nbf is not None and now < cred.nbf - skew) or cred.iat > now + skew:
        return Outcome.FAIL, Reason.NOT_YET_VALID
    status = _status(cred, trust)
    if status is not None and status is not Reason.STATUS_UNKNOWN:
        return Outcome.FAIL, status
    if checkpoint.check_staleness and _stale(trust, now):
        return Outcome.UNVERIFIABLE, Reason.TRUST_DATA_STALE
    # Step 6 before step 7 (spec LC1 s.5 as corrected 2026-12-07): no ``unknown_status``
    # setting may turn a type this checkpoint does not accept into a PASS.
    if checkpoint.accepted_types and cred.typ not in checkpoint.accepted_types:
        return Outcome.FAIL, Reason.TYPE_NOT_ACCEPTED
    if status is Reason.STATUS_UNKNOWN:
        return Outcome(policy.unknown_status.upper()), Reason.STATUS_UNKNOWN
    return Outcome.PASS, Reason.OK


def _status(cred: Credential, trust: TrustSnapshot) -> Reason | None:
    if cred.cti is not None and hashlib.sha256(cred.cti).digest() in trust.revoked_cti:
        return Reason.REVOKED
    if (
        cred.iss is not None
        and len(trust.revoked_licences)
        and licence_digest(cred.iss, cred.typ, cred.no) in trust.revoked_licences
    ):
        return Reason.REVOKED
    if cred.status_uri is None:
        return None
    status_list = trust.status_lists.get(cred.status_uri)
    value = None if status_list is None else status_list.status(cred.status_idx or 0)
    if value is None:
        return Reason.STATUS_UNKNOWN
    if value == VALID:
        return None
    if value == REVOKED:
        return Reason.REVOKED
    if value == SUSPENDED:
        return Reason.SUSPENDED
    return Reason.STATUS_OTHER


def _stale(trust: TrustSnapshot, now: float) -> bool:
    # None (no publication time) counts as stale: such data cannot be shown fresh.
    return trust_stale(trust, now) is not False
