"""``iaca`` keys of a trust source (spec mdl-reader s.2): the roots of mdoc issuers.

An IACA certificate is checked when the trust data is read, so a bad root is refused at
authoring and sync time, never discovered at a checkpoint: self-signed and self-verifying,
``basicConstraints`` CA, ``keyUsage`` keyCertSign, a key on P-256/384/521, the kid recomputed
(first 8 bytes of SHA-256 over the DER), ``doctypes`` non-empty, ``profiles`` only MDOC,
``not_before``/``not_after`` inside the certificate's validity. Each refusal names the key.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.errors import TrustDataError
from appliance.core.key_ring import IssuerKey

IACA_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
OTHER_FORMS = ("certificate", "jwk", "public_key")
MAX_DOCTYPE_CHARS = 256


def parse_iaca_key(
    entry: dict[str, Any], iss: str, name: str, where: str, kid_hex: str
) -> IssuerKey:
    """An ``iaca`` key entry -> an ``IssuerKey`` scoped to MDOC (``types`` = doctypes)."""
    from appliance.trust.source import _instant, compute_kid

    if any(form in entry for form in OTHER_FORMS):
        raise TrustDataError(f"{where}: an iaca key has no other key form")
    certificate, der = load_iaca(entry.get("iaca"), where)
    kid = compute_kid(der)
    if kid.hex() != kid_hex:
        raise TrustDataError(
            f"{where}: kid does not match the IACA certificate (computed {kid.hex()})"
        )
    profiles = entry.get("profiles", ["MDOC"])
    if profiles != ["MDOC"]:
        raise TrustDataError(f"{where}: an iaca key is for profile MDOC only")
    doctypes = entry.get("doctypes")
    if (
        not isinstance(doctypes, list)
        or not doctypes
        or not all(isinstance(d, str) and 0 < len(d) <= MAX_DOCTYPE_CHARS for d in doctypes)
    ):
        raise TrustDataError(f"{where}: doctypes must be a non-empty list of docType text")
    status = entry.get("status", "active")
    if status not in ("active", "revoked"):
        raise TrustDataError(f"{where}: status must be 'active' or 'revoked'")
    cert_from = certificate.not_valid_before_utc.timestamp()
    cert_until = certificate.not_valid_after_utc.timestamp()
    not_before = _instant(
        entry.get("not_before"), f"{where}.not_before", certificate.not_valid_before_utc
    )
    not_after = _instant(
        entry.get("not_after"), f"{where}.not_after", certificate.not_valid_after_utc
    )
    if not cert_from <= not_before <= not_after <= cert_until:
        raise TrustDataError(
            f"{where}: not_before/not_after may narrow the certificate's validity, never widen it"
        )
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # load_iaca checked
    return IssuerKey(
        kid=kid,
        iss=iss,
        issuer_name=name,
        alg=IACA_CURVES[public_key.curve.name],
        public_key=public_key,
        not_before=not_before,
        not_after=not_after,
        revoked=status == "revoked",
        types=frozenset(doctypes),
        profiles=frozenset({"MDOC"}),
        certificate=certificate,
    )


def load_iaca(value: Any, where: str) -> tuple[x509.Certificate, bytes]:
    """Base64 DER of an IACA certificate -> (certificate, DER), checked as a root."""
    if not isinstance(value, str) or not value:
        raise TrustDataError(f"{where}.iaca must be base64 of the IACA certificate DER")
    try:
        der = base64.b64decode(value, validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError, x509.InvalidVersion) as e:
        raise TrustDataError(f"{where}: iaca is not base64 DER X.509: {e}") from e
    check_iaca(certificate, where)
    return certificate, der


def check_iaca(certificate: x509.Certificate, where: str) -> None:
    """The loader checks of s.2 (``TrustDataError`` naming ``where``)."""
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise TrustDataError(f"{where}: IACA key cannot be read: {e}") from e
    if (
        not isinstance(public_key, ec.EllipticCurvePublicKey)
        or public_key.curve.name not in IACA_CURVES
    ):
        raise TrustDataError(f"{where}: IACA key is not on P-256, P-384 or P-521")
    if certificate.issuer != certificate.subject:
        raise TrustDataError(f"{where}: IACA certificate is not self-signed")
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as e:
        raise TrustDataError(f"{where}: IACA certificate does not verify itself") from e
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound as e:
        raise TrustDataError(f"{where}: IACA certificate lacks basicConstraints or keyUsage") from e
    except ValueError as e:
        raise TrustDataError(f"{where}: IACA certificate extensions: {e}") from e
    if not constraints.value.ca:
        raise TrustDataError(f"{where}: IACA certificate is not a CA (basicConstraints)")
    if not usage.value.key_cert_sign:
        raise TrustDataError(f"{where}: IACA certificate keyUsage lacks keyCertSign")
