"""A test mdoc issuer and holder: IACA, document signer, MSO, DeviceResponse (spec mdl-reader s.9).

Made with ``cryptography`` and ``cbor2`` in the test suite only (never shipped as trust data).
The item bytes are written as built, so a test can give an IssuerSignedItemBytes a
non-minimal length head (N14) and the response still carries exactly those bytes.

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
import os
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID, ObjectIdentifier

from appliance.core.credential.mdoc.cose_key import ECDSA_ALGS, cose_key_bytes
from appliance.core.credential.mdoc.device_auth import (
    device_authentication_bytes,
    mac_tag,
    sig1_structure,
)
from appliance.core.credential.mdoc.items_request import MDL_DOCTYPE, MDL_NAMESPACE
from appliance.core.credential.mdoc.session_crypto import emac_key, embed
from appliance.trust.editor import iaca_entry

MDL_DS_EKU = ObjectIdentifier("1.0.18013.5.1.2")
UTC = dt.UTC
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HASHES = {"SHA-256": hashlib.sha256, "SHA-384": hashlib.sha384, "SHA-512": hashlib.sha512}
_CERT_HASH = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
    "secp256k1": hashes.SHA256,
}


class Raw:
    """Bytes written into the encoding as they are (an item kept as built)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def dumps(value: Any) -> bytes:
    """cbor2 encoding where ``Raw`` values are written verbatim."""
    return cbor2.dumps(value, default=lambda encoder, raw: encoder.write(raw.data))


def sign_es(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ECDSA with the hash of the key's curve, as COSE r||s."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(_CERT_HASH[key.curve.name]())))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def alg_of(key: ec.EllipticCurvePrivateKey) -> int:
    return next(alg for alg, (curve, _) in ECDSA_ALGS.items() if curve == key.curve.name)


def _name(cn: str, country: str | None, state: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if country is not None:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if state is not None:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state))
    return x509.Name(attrs)


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class DocumentSigner:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return der_of(self.certificate)

    def issue(
        self,
        elements: dict[str, dict[str, Any]],
        device_key: ec.EllipticCurvePublicKey | None,
        *,
        doc_type: str = MDL_DOCTYPE,
        signed: dt.datetime = NOW - dt.timedelta(days=1),
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
        status: dict[str, Any] | None = None,
        digest_algorithm: str = "SHA-256",
        alg: int | None = None,
        device_key_cose: dict[int, Any] | None = None,
        non_minimal_heads: bool = False,
        mso_changes: dict[str, Any] | None = None,
    ) -> IssuedMdoc:
        """An mdoc for ``elements`` (namespace -> identifier -> value) bound to
        ``device_key`` (or a raw COSE_Key map, for unsupported curves); ``mso_changes``
        replaces MSO fields before signing (fuzzing: hostile data behind a good signature)."""
        items: dict[str, list[bytes]] = {}
        digests: dict[str, dict[int, bytes]] = {}
        digest_id = 0
        for namespace, values in elements.items():
            items[namespace], digests[namespace] = [], {}
            for identifier, value in values.items():
                body = cbor2.dumps(
                    {
                        "digestID": digest_id,
                        "random": os.urandom(16),
                        "elementIdentifier": identifier,
                        "elementValue": value,
                    }
                )
                head = (
                    b"\x5a" + len(body).to_bytes(4, "big")
                    if non_minimal_heads
                    else cbor2.dumps(body)[: -len(body)]
                )
                raw = b"\xd8\x18" + head + body
                items[namespace].append(raw)
                digests[namespace][digest_id] = HASHES.get(digest_algorithm, hashlib.sha256)(
                    raw
                ).digest()
                digest_id += 1
        key_map = (
            device_key_cose
            if device_key_cose is not None
            else cbor2.loads(cose_key_bytes(device_key))
        )  # type: ignore[arg-type]
        mso: dict[str, Any] = {
            "version": "1.0",
            "digestAlgorithm": digest_algorithm,
            "valueDigests": digests,
            "deviceKeyInfo": {"deviceKey": key_map},
            "docType": doc_type,
            "validityInfo": {
                "signed": _tdate(signed),
                "validFrom": _tdate(valid_from or signed),
                "validUntil": _tdate(valid_until or signed + dt.timedelta(days=365)),
            },
        }
        if status is not None:
            mso["status"] = status
        mso.update(mso_changes or {})  # hostile or unusual MSO fields, still signed
        payload = embed(cbor2.dumps(mso))
        protected = cbor2.dumps({1: alg if alg is not None else alg_of(self.key)})
        signature = sign_es(self.key, sig1_structure(protected, payload))
        issuer_auth = [protected, {33: self.der}, payload, signature]
        return IssuedMdoc(doc_type, items, issuer_auth)


@dataclass
class IssuedMdoc:
    doc_type: str
    items: dict[str, list[bytes]]  # namespace -> IssuerSignedItemBytes as issued
    issuer_auth: list[Any]  # [protected, unprotected, payload, signature]

    def item(self, namespace: str, identifier: str) -> bytes:
        for raw in self.items[namespace]:
            if cbor2.loads(cbor2.loads(raw).value)["elementIdentifier"] == identifier:
                return raw
        raise KeyError(identifier)


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
        name = _name(cn, country, state)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=key_cert_sign,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, _CERT_HASH[key.curve.name]())
        )
        return cls(key, cert, country, state)

    @property
    def der(self) -> bytes:
        return der_of(self.certificate)

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
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                _name(
                    cn,
                    country if country is not None else self.country,
                    state if state is not None else self.state,
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=digital_signature,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage([MDL_DS_EKU]), critical=True)
        cert = builder.sign(self.key, _CERT_HASH[self.key.curve.name]())
        return DocumentSigner(key, cert)


def device_response(
    mdoc: IssuedMdoc,
    *,
    session_transcript_bytes: bytes,
    device_key: ec.EllipticCurvePrivateKey,
    e_reader_public_key: ec.EllipticCurvePublicKey | None = None,
    disclose: dict[str, list[str]] | None = None,
    extra_items: dict[str, list[bytes]] | None = None,
    doc_type: str | None = None,
    status: int = 0,
    errors: dict[str, dict[str, int]] | None = None,
    device_name_spaces: bytes = embed(b"\xa0"),
) -> bytes:
    """A DeviceResponse for ``mdoc``: deviceMac when ``e_reader_public_key`` is given (the
    reader's EReaderKey), else deviceSignature; ``disclose`` picks elements (default all);
    ``device_name_spaces`` is DeviceNameSpacesBytes (default empty)."""
    name_spaces: dict[str, list[Raw]] = {}
    extra_items = extra_items or {}
    for namespace in {**mdoc.items, **extra_items}:
        chosen = [
            raw
            for raw in mdoc.items.get(namespace, [])
            if disclose is None
            or cbor2.loads(cbor2.loads(raw).value)["elementIdentifier"]
            in disclose.get(namespace, [])
        ]
        chosen += extra_items.get(namespace, [])
        if chosen:
            name_spaces[namespace] = [Raw(raw) for raw in chosen]
    doc_type = doc_type or mdoc.doc_type
    payload = device_authentication_bytes(session_transcript_bytes, doc_type, device_name_spaces)
    if e_reader_public_key is not None:
        protected = cbor2.dumps({1: 5})
        key = emac_key(device_key, e_reader_public_key, session_transcript_bytes)
        auth = {"deviceMac": [protected, {}, None, mac_tag(key, protected, payload)]}
    else:
        protected = cbor2.dumps({1: alg_of(device_key)})
        auth = {
            "deviceSignature": [
                protected,
                {},
                None,
                sign_es(device_key, sig1_structure(protected, payload)),
            ]
        }
    document: dict[str, Any] = {
        "docType": doc_type,
        "issuerSigned": {"nameSpaces": name_spaces, "issuerAuth": mdoc.issuer_auth},
        "deviceSigned": {"nameSpaces": Raw(device_name_spaces), "deviceAuth": auth},
    }
    if errors:
        document["errors"] = errors
    return dumps({"version": "1.0", "documents": [document], "status": status})


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


def _tdate(when: dt.datetime) -> cbor2.CBORTag:
    return cbor2.CBORTag(0, when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
