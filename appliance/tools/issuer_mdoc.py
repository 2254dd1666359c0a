"""An mDL issuer and wallet: IACA root, document signer, MSO, DeviceResponse (ISO 18013-5).

What a licence authority and a phone's wallet do, in the smallest form the reader accepts:
an IACA (self-signed CA, the trust data's ``iaca`` key), a document signer under it in the
Annex B profile (EKU 1.0.18013.5.1.2, digitalSignature, the IACA's country), an mdoc whose
MSO carries the digest of every IssuerSignedItemBytes, and the wallet's answer to a reader's
DeviceRequest: the asked-for items, exactly as issued, with deviceMac over the session
(EMacKey from the holder's device key and the reader's ephemeral key) or deviceSignature.
The demo's simulated phone (``holder_ble.SimulatedPhone``) carries it over Bumble's emulated
link; the test suite's issuer (tests/mdoc/issuer_support.py) builds its misbehaving variants
from the same pieces (``certificate`` with a wrong choice named, ``issue_mdoc``'s hooks).
Nothing here runs in the kiosk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, ObjectIdentifier

from appliance.core.credential.mdoc.cose_key import ECDSA_ALGS, cose_key_bytes
from appliance.core.credential.mdoc.device_auth import (
    device_authentication_bytes,
    mac_tag,
    sig1_structure,
)
from appliance.core.credential.mdoc.items_request import (
    MDL_DOCTYPE,
    device_request_from_bytes,
)
from appliance.core.credential.mdoc.session_crypto import emac_key, embed

MDL_DS_EKU = ObjectIdentifier("1.0.18013.5.1.2")
HMAC256 = 5
HASHES = {"SHA-256": hashlib.sha256, "SHA-384": hashlib.sha384, "SHA-512": hashlib.sha512}
_CERT_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
    "secp256k1": hashes.SHA256,
}
# A wallet: (DeviceRequest, SessionTranscriptBytes, EReaderKey public) -> DeviceResponse.
Wallet = Callable[[bytes, bytes, ec.EllipticCurvePublicKey], bytes]


class Raw:
    """Bytes written into the encoding as they are (an item kept as issued)."""

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
    """The COSE ECDSA algorithm of the key's curve (ES256, ES384, ES512)."""
    return next(alg for alg, (curve, _) in ECDSA_ALGS.items() if curve == key.curve.name)


def name(cn: str, country: str | None, state: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if country is not None:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if state is not None:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state))
    return x509.Name(attrs)


def certificate(
    public_key: ec.EllipticCurvePublicKey,
    subject: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool,
    path_length: int | None = None,
    digital_signature: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
    eku: bool = False,
) -> x509.Certificate:
    """A certificate with every profile choice named (``make_iaca`` and
    ``make_document_signer`` name the right ones), signed with the hash of the signer's curve."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=crl_sign,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([MDL_DS_EKU]), critical=True)
    return builder.sign(signer, _CERT_HASH[signer.curve.name]())


def make_iaca(
    key: ec.EllipticCurvePrivateKey,
    cn: str,
    country: str,
    *,
    not_before: dt.datetime,
    years: int = 10,
) -> x509.Certificate:
    """A self-signed IACA root certificate (CA, keyCertSign and cRLSign)."""
    root = name(cn, country)
    return certificate(
        key.public_key(),
        root,
        key,
        root,
        not_before=not_before,
        not_after=not_before + dt.timedelta(days=365 * years),
        ca=True,
        path_length=0,
        key_cert_sign=True,
        crl_sign=True,
    )


def make_document_signer(
    key: ec.EllipticCurvePrivateKey,
    iaca_key: ec.EllipticCurvePrivateKey,
    iaca: x509.Certificate,
    cn: str,
    *,
    not_before: dt.datetime,
    days: int = 3 * 365,
) -> x509.Certificate:
    """A DS certificate under ``iaca`` in the 18013-5 Annex B profile."""
    country = iaca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    return certificate(
        key.public_key(),
        name(cn, str(country)),
        iaca_key,
        iaca.subject,
        not_before=not_before,
        not_after=not_before + dt.timedelta(days=days),
        ca=False,
        digital_signature=True,
        eku=True,
    )


def _tdate(when: dt.datetime) -> cbor2.CBORTag:
    return cbor2.CBORTag(0, when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass
class IssuedMdoc:
    """An mdoc as the wallet keeps it: each item's IssuerSignedItemBytes and issuerAuth."""

    doc_type: str
    items: dict[str, list[bytes]]  # namespace -> IssuerSignedItemBytes as issued
    issuer_auth: list[Any]  # COSE_Sign1 [protected, unprotected, payload, signature]

    def item(self, namespace: str, identifier: str) -> bytes:
        for raw in self.items[namespace]:
            if _identifier(raw) == identifier:
                return raw
        raise KeyError(identifier)


def _identifier(raw: bytes) -> Any:
    return cbor2.loads(cbor2.loads(raw).value)["elementIdentifier"]


def issue_mdoc(
    ds_key: ec.EllipticCurvePrivateKey,
    ds: x509.Certificate,
    elements: Mapping[str, Mapping[str, Any]],
    device_key: ec.EllipticCurvePublicKey | dict[int, Any],
    *,
    signed: dt.datetime,
    valid_until: dt.datetime,
    valid_from: dt.datetime | None = None,
    doc_type: str = MDL_DOCTYPE,
    status: dict[str, Any] | None = None,
    digest_algorithm: str = "SHA-256",
    alg: int | None = None,
    embed_item: Callable[[bytes], bytes] = embed,
    mso_changes: Mapping[str, Any] | None = None,
) -> IssuedMdoc:
    """An mdoc of ``elements`` (namespace -> identifier -> value) bound to the holder's
    ``device_key`` (or a COSE_Key map as given). A test's hooks: ``embed_item`` writes each
    IssuerSignedItemBytes (``#6.24`` and length head), ``mso_changes`` replaces MSO fields
    before signing (hostile data behind a good signature); an unknown ``digest_algorithm``
    labels SHA-256 digests."""
    hash_of = HASHES.get(digest_algorithm, hashlib.sha256)
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
            raw = embed_item(body)
            items[namespace].append(raw)
            digests[namespace][digest_id] = hash_of(raw).digest()
            digest_id += 1
    key_map = (
        device_key if isinstance(device_key, dict) else cbor2.loads(cose_key_bytes(device_key))
    )
    mso: dict[str, Any] = {
        "version": "1.0",
        "digestAlgorithm": digest_algorithm,
        "valueDigests": digests,
        "deviceKeyInfo": {"deviceKey": key_map},
        "docType": doc_type,
        "validityInfo": {
            "signed": _tdate(signed),
            "validFrom": _tdate(valid_from or signed),
            "validUntil": _tdate(valid_until),
        },
    }
    if status is not None:
        mso["status"] = status
    mso.update(mso_changes or {})
    payload = embed(cbor2.dumps(mso))
    protected = cbor2.dumps({1: alg if alg is not None else alg_of(ds_key)})
    signature = sign_es(ds_key, sig1_structure(protected, payload))
    return IssuedMdoc(
        doc_type, items, [protected, {33: ds.public_bytes(Encoding.DER)}, payload, signature]
    )


def device_response(
    mdoc: IssuedMdoc,
    *,
    session_transcript_bytes: bytes,
    device_key: ec.EllipticCurvePrivateKey,
    e_reader_public_key: ec.EllipticCurvePublicKey | None = None,
    disclose: Mapping[str, Collection[str]] | None = None,
    extra_items: dict[str, list[bytes]] | None = None,
    status: int = 0,
    errors: dict[str, dict[str, int]] | None = None,
    device_name_spaces: bytes = embed(b"\xa0"),
) -> bytes:
    """A DeviceResponse for ``mdoc``: deviceMac when ``e_reader_public_key`` is given (the
    reader's EReaderKey), else deviceSignature; ``disclose`` picks elements (default all);
    ``extra_items`` (a test's) adds items the issuer never signed; ``device_name_spaces`` is
    DeviceNameSpacesBytes (default empty)."""
    name_spaces: dict[str, list[Raw]] = {}
    extra_items = extra_items or {}
    for namespace in {**mdoc.items, **extra_items}:
        chosen = [
            raw
            for raw in mdoc.items.get(namespace, [])
            if disclose is None or _identifier(raw) in disclose.get(namespace, ())
        ]
        chosen += extra_items.get(namespace, [])
        if chosen:
            name_spaces[namespace] = [Raw(raw) for raw in chosen]
    payload = device_authentication_bytes(
        session_transcript_bytes, mdoc.doc_type, device_name_spaces
    )
    auth: dict[str, list[Any]]
    if e_reader_public_key is not None:
        protected = cbor2.dumps({1: HMAC256})
        key = emac_key(device_key, e_reader_public_key, session_transcript_bytes)
        auth = {"deviceMac": [protected, {}, None, mac_tag(key, protected, payload)]}
    else:
        protected = cbor2.dumps({1: alg_of(device_key)})
        signature = sign_es(device_key, sig1_structure(protected, payload))
        auth = {"deviceSignature": [protected, {}, None, signature]}
    document: dict[str, Any] = {
        "docType": mdoc.doc_type,
        "issuerSigned": {"nameSpaces": name_spaces, "issuerAuth": mdoc.issuer_auth},
        "deviceSigned": {"nameSpaces": Raw(device_name_spaces), "deviceAuth": auth},
    }
    if errors:
        document["errors"] = errors
    return dumps({"version": "1.0", "documents": [document], "status": status})


def wallet(mdoc: IssuedMdoc, device_key: ec.EllipticCurvePrivateKey) -> Wallet:
    """The phone's answer to a reader: the asked-for items, deviceMac over the session."""

    def respond(
        request: bytes, transcript: bytes, e_reader_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        return device_response(
            mdoc,
            session_transcript_bytes=transcript,
            device_key=device_key,
            e_reader_public_key=e_reader_key,
            disclose=device_request_from_bytes(request).elements,
        )

    return respond
