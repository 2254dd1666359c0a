"""The CWT claims map (RFC 8392) as LC1 and HC1 both carry it: decoded exactly, checked
to be a map, ``iss`` text when present. Anything else is ``MALFORMED_CLAIMS``."""

from __future__ import annotations

from typing import Any

from appliance.core.credential.cose import MAP_TYPES, NO_TAGS, loads_exact
from appliance.core.errors import CoseError, Rejection
from appliance.core.reasons import Reason

CLAIM_ISS = 1


def malformed(detail: str) -> Rejection:
    return Rejection(Reason.MALFORMED_CLAIMS, detail)


def decode_claims(payload: bytes, tags: frozenset[int] = NO_TAGS) -> tuple[Any, str | None]:
    """The claims map and its ``iss`` (None when absent); CBOR tags only from ``tags``."""
    try:
        claims = loads_exact(payload, tags=tags)
    except CoseError as e:
        raise malformed(str(e)) from e
    if not isinstance(claims, MAP_TYPES):
        raise malformed("payload is not a map")
    iss = claims.get(CLAIM_ISS)
    if iss is not None and type(iss) is not str:
        raise malformed("iss is not text")
    return claims, iss
