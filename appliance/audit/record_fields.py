"""What one verification leaves in the audit log: the verdict, never personal data.

Licence numbers and credential ids are kept only as HMAC-SHA256 under the fleet key
(docs/adr/0005): an auditor can match a licence they hold, nobody can read one back.
"""

from __future__ import annotations

import hmac
from typing import Any

from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Verdict


def verdict_fields(
    verdict: Verdict, source: str, trust: TrustSnapshot, hmac_key: bytes
) -> dict[str, Any]:
    """The record fields of ``verdict`` (without seq, time and chain)."""
    cred = verdict.credential
    fields: dict[str, Any] = {
        "source": source,
        "verdict": str(verdict.outcome),
        "reason": str(verdict.reason),
        "profile": verdict.profile,
        "iss": verdict.iss,
        "kid": verdict.kid.hex() if verdict.kid is not None else None,
        "licence_type": None,
        "licence_hash": None,
        "cti_hash": None,
        "live": bool(verdict.live),
        "trust_version": trust.version,
    }
    if cred is not None:
        fields["licence_type"] = cred.typ
        # An mdoc (spec mdl-reader s.6): a licence hash only when document_number was
        # disclosed; its cti is the MSO's SHA-256, kept in the checkpoint profile only.
        mdoc = cred.profile == "MDOC"
        if cred.no or not mdoc:
            message = f"{cred.iss or ''}\x1f{cred.typ}\x1f{cred.no}".encode()
            fields["licence_hash"] = hmac.new(hmac_key, message, "sha256").hexdigest()
        if cred.cti is not None:
            prefix = b"mso\x1f" if mdoc else b"cti\x1f"
            fields["cti_hash"] = hmac.new(hmac_key, prefix + cred.cti, "sha256").hexdigest()
    return fields
