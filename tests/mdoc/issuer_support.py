"""The test suite's mdoc issuer: a test IACA and its document signers (spec mdl-reader s.9).

The issuing is ``appliance.tools.issuer_mdoc``'s (the demo's issuer); what is here is the
test-only part: fixed test times, and the misbehaving variants a test names (an IACA that is
no CA, a DS with no EKU or another state, non-minimal item heads, hostile MSO fields). Made in
the test suite only (never shipped as trust data).

    iaca = TestIaca.create()
    ds = iaca.document_signer()
    holder_key = ec.generate_private_key(ec.SECP256R1())
    mdoc = ds.issue({MDL_NAMESPACE: {"family_name": "Doe", ...}}, holder_key.public_key())
    response = device_response(mdoc, session_transcript_bytes=st, device_key=holder_key,
                               e_reader_public_key=reader.public_key())   # deviceMac
    trust_doc = iaca.trust_document()                                     # a trust source
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from appliance.core.credential.mdoc.items_request import MDL_DOCTYPE, MDL_NAMESPACE
from appliance.core.credential.mdoc.session_crypto import embed
from appliance.tools.issuer_mdoc import IssuedMdoc, certificate, issue_mdoc, name
from appliance.trust.editor import iaca_entry

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _non_minimal_head(body: bytes) -> bytes:
    """IssuerSignedItemBytes with a 4-byte length head where one byte would do (N14)."""
    return b"\xd8\x18\x5a" + len(body).to_bytes(4, "big") + body


@dataclass
class DocumentSigner:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    def issue(
        self,
        elements: dict[str, dict[str, Any]],
        device_key: ec.EllipticCurvePublicKey | None,
        *,
        signed: dt.datetime = NOW - dt.timedelta(days=1),
        valid_until: dt.datetime | None = None,
        device_key_cose: dict[int, Any] | None = None,
        non_minimal_heads: bool = False,
        **choices: Any,
    ) -> IssuedMdoc:
        """An mdoc for ``elements`` (namespace -> identifier -> value) bound to
        ``device_key`` (or a raw COSE_Key map, for unsupported curves); ``choices`` are
        ``issue_mdoc``'s (doc_type, valid_from, status, digest_algorithm, alg, mso_changes)."""
        holder = device_key_cose if device_key_cose is not None else device_key
        assert holder is not None
        return issue_mdoc(
            self.key,
            self.certificate,
            elements,
            holder,
            signed=signed,
            valid_until=valid_until or signed + dt.timedelta(days=365),
            embed_item=_non_minimal_head if non_minimal_heads else embed,
            **choices,
        )


@dataclass
class TestIaca:
    """A test IACA root (self-signed CA) that issues document signers."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    country: str | None = "UT"
    state: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    __test__ = False  # not a pytest test class

    @classmethod
    def create(
        cls,
        *,
        cn: str = "test iaca",
        country: str | None = "UT",
        state: str | None = None,
        curve: ec.EllipticCurve | None = None,
        not_before: dt.datetime = NOW - dt.timedelta(days=3650),
        not_after: dt.datetime = NOW + dt.timedelta(days=3650),
        ca: bool = True,
        key_cert_sign: bool = True,
    ) -> TestIaca:
        key = ec.generate_private_key(curve or ec.SECP256R1())
        root = name(cn, country, state)
        cert = certificate(
            key.public_key(),
            root,
            key,
            root,
            not_before=not_before,
            not_after=not_after,
            ca=ca,
            path_length=0 if ca else None,
            key_cert_sign=key_cert_sign,
            crl_sign=True,
        )
        return cls(key, cert, country, state)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)

    @property
    def kid(self) -> str:
        return hashlib.sha256(self.der).digest()[:8].hex()

    def trust_entry(
        self, *, doctypes: list[str] | None = None, status: str = "active"
    ) -> dict[str, Any]:
        return {**iaca_entry(self.der, doctypes or [MDL_DOCTYPE]), "status": status}

    def trust_document(self, *, iss: str = "UT-DMV", **entry: Any) -> dict[str, Any]:
        """A trust source (JSON object) holding this IACA alone."""
        return {
            "issuers": [
                {"iss": iss, "name": "Test mDL issuer", "keys": [self.trust_entry(**entry)]}
            ],
            "policy": {"max_age_hours": 72, "unknown_status": "unverifiable", "clock_skew_s": 300},
        }

    def document_signer(
        self,
        *,
        cn: str = "test ds",
        country: str | None = None,
        state: str | None = None,
        eku: bool = True,
        ca: bool = False,
        digital_signature: bool = True,
        curve: ec.EllipticCurve | None = None,
        not_before: dt.datetime = NOW - dt.timedelta(days=30),
        not_after: dt.datetime = NOW + dt.timedelta(days=365),
    ) -> DocumentSigner:
        key = ec.generate_private_key(curve or ec.SECP256R1())
        cert = certificate(
            key.public_key(),
            name(
                cn,
                country if country is not None else self.country,
                state if state is not None else self.state,
            ),
            self.key,
            self.certificate.subject,
            not_before=not_before,
            not_after=not_after,
            ca=ca,
            digital_signature=digital_signature,
            key_cert_sign=ca,
            eku=eku,
        )
        return DocumentSigner(key, cert)


def checkpoint_elements(**overrides: Any) -> dict[str, dict[str, Any]]:
    """The ``checkpoint`` profile's elements with plausible values."""
    values: dict[str, Any] = {
        "family_name": "Doe",
        "given_name": "Jane",
        "birth_date": cbor2.CBORTag(1004, "1990-05-01"),
        "portrait": b"\xff\xd8\xff\xe0jpeg",
        "document_number": "UT-123",
        "issuing_authority": "UT DMV",
        "issuing_country": "UT",
        "issue_date": cbor2.CBORTag(1004, "2025-01-01"),
        "expiry_date": cbor2.CBORTag(1004, "2030-01-01"),
        "driving_privileges": [{"vehicle_category_code": "B"}],
        "un_distinguishing_sign": "UT",
    }
    values.update(overrides)
    return {MDL_NAMESPACE: values}
