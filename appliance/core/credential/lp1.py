"""LP1: a holder-bound, short-lived presentation of an LC1 licence (spec ``lp1-presentation.md``).

``LP1:`` + Base45(zlib([credential, presentation])). The credential is verified exactly as
LC1 (same decoding, limits and issuer checks); the presentation adds one holder signature
and a freshness window, checked by the binding the verifier calls after the LC1 verdict.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from appliance.core.credential import lc1
from appliance.core.credential.cose import (
    ALG_NAMES,
    ARRAY_TYPES,
    HEADER_ALG,
    MAP_TYPES,
    loads_exact,
    parse_sign1,
)
from appliance.core.credential.limits import INT64_MAX, INT64_MIN
from appliance.core.credential.model import BindingCheck, Credential, Opened
from appliance.core.credential.qrtext import decode_base45_zlib
from appliance.core.credential.signature import verify_signature
from appliance.core.errors import CoseError, Rejection
from appliance.core.reasons import Reason

if TYPE_CHECKING:
    from appliance.core.snapshot import Policy

PREFIX = "LP1:"
PAYLOAD_TYPE = "LP1"
KEY_TYPE, KEY_TIME, KEY_HASH, KEY_NONCE = 1, 2, 3, 4
NONCE_MIN, NONCE_MAX = 8, 16


def decode(text: str) -> tuple[bytes, bytes]:
    """The ``[credential, presentation]`` byte strings of an ``LP1:`` text: the one outer
    decoding (prefix, size limits, Base45, zlib, the pair) for verifier and kiosk alike.
    ``Rejection`` when the text is not one."""
    return split(decode_base45_zlib(text, PREFIX))


def split(inflated: bytes) -> tuple[bytes, bytes]:
    """The ``[credential, presentation]`` pair of byte strings."""
    try:
        pair = loads_exact(inflated, max_items=3)  # an array of two byte strings
    except CoseError as e:
        raise Rejection(Reason.MALFORMED_STRUCTURE, str(e)) from e
    if (
        not isinstance(pair, ARRAY_TYPES)
        or len(pair) != 2
        or not all(isinstance(part, bytes) for part in pair)
    ):
        raise Rejection(Reason.MALFORMED_STRUCTURE, "not [credential, presentation]")
    return pair[0], pair[1]


def _binding(credential_bytes: bytes, presentation: bytes) -> BindingCheck:
    try:
        sign1 = parse_sign1(presentation)
    except CoseError as e:
        raise Rejection(Reason.MALFORMED_STRUCTURE, f"presentation: {e}") from e
    alg = sign1.protected_map.get(HEADER_ALG)
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise Rejection(Reason.MALFORMED_STRUCTURE, "presentation alg missing")

    def check(cred: Credential, now: float, policy: Policy) -> Reason | None:
        holder = cred.holder_key
        if holder is None:
            return Reason.HOLDER_KEY_MISSING
        if ALG_NAMES.get(alg) != holder.alg or not verify_signature(
            holder.alg, holder.public_key, sign1.to_be_signed(), sign1.signature
        ):
            return Reason.BAD_HOLDER_SIGNATURE
        t, digest = _payload(sign1.payload)
        if digest != hashlib.sha256(credential_bytes).digest():
            return Reason.BAD_HOLDER_SIGNATURE
        if t < now - policy.presentation_window_s:
            return Reason.PRESENTATION_EXPIRED
        if t > now + policy.clock_skew_s:
            return Reason.PRESENTATION_TIME_INVALID
        return None

    return check


def _payload(payload: bytes) -> tuple[int, bytes]:
    """``{1: "LP1", 2: t, 3: h, 4: nonce}``; anything else raises ``MALFORMED_CLAIMS``."""
    try:
        claims = loads_exact(payload)
    except CoseError as e:
        raise Rejection(Reason.MALFORMED_CLAIMS, f"presentation payload: {e}") from e
    if not isinstance(claims, MAP_TYPES) or claims.get(KEY_TYPE) != PAYLOAD_TYPE:
        raise Rejection(Reason.MALFORMED_CLAIMS, "presentation payload is not an LP1 map")
    t, digest, nonce = claims.get(KEY_TIME), claims.get(KEY_HASH), claims.get(KEY_NONCE)
    if isinstance(t, bool) or not isinstance(t, int) or not INT64_MIN <= t <= INT64_MAX:
        raise Rejection(Reason.MALFORMED_CLAIMS, "presentation time is not an integer")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise Rejection(Reason.MALFORMED_CLAIMS, "presentation hash is not 32 bytes")
    if not isinstance(nonce, bytes) or not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise Rejection(Reason.MALFORMED_CLAIMS, "presentation nonce is not 8 to 16 bytes")
    return t, digest


class Lp1Profile:
    name = "LP1"
    prefix = PREFIX

    def open(self, text: str) -> Opened:
        credential_bytes, presentation = decode(text)

        sign1, alg, kid = lc1.open_sign1(credential_bytes)
        binding = _binding(credential_bytes, presentation)
        return Opened(self.name, sign1, alg, kid, _checked_claims, binding)


def _checked_claims(payload: bytes) -> Credential:
    return lc1.parse_claims(payload, profile="LP1")


PROFILE = Lp1Profile()
