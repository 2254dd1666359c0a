"""An mDL issuer and wallet for the demo: IACA root, document signer, MSO, DeviceResponse.

What a licence authority and a phone's wallet do for ISO 18013-5, in the smallest form the
reader accepts: an IACA (self-signed P-256 CA, the trust data's ``iaca`` key), a document
signer under it in the Annex B profile (EKU 1.0.18013.5.1.2, digitalSignature, the IACA's
country), an mdoc whose MSO carries the digest of every IssuerSignedItemBytes, and the
wallet's answer to a reader's DeviceRequest: the asked-for items with deviceMac over the
session (EMacKey from the holder's device key and the reader's ephemeral key). The demo's
simulated phone (``holder_ble.SimulatedPhone``) carries it over Bumble's emulated link.
Nothing here runs in the kiosk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, ObjectIdentifier

from appliance.core.credential.mdoc.cose_key import cose_key_bytes
from appliance.core.credential.mdoc.device_auth import (
    device_authentication_bytes,
    mac_tag,
    sig1_structure,
)
from appliance.core.credential.mdoc.items_request import (
    MDL_DOCTYPE,
    MDL_NAMESPACE,
    device_request_from_bytes,
)
from appliance.core.credential.mdoc.session_crypto import emac_key, embed

MDL_DS_EKU = ObjectIdentifier("1.0.18013.5.1.2")
ES256, HMAC256 = -7, 5
# A wallet: (DeviceRequest, SessionTranscriptBytes, EReaderKey public) -> DeviceResponse.
Wallet = Callable[[bytes, bytes, ec.EllipticCurvePublicKey], bytes]


def _name(cn: str, country: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        ]
    )


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_iaca(
    key: ec.EllipticCurvePrivateKey,
    cn: str,
    country: str,
    *,
    not_before: dt.datetime,
    years: int = 10,
) -> x509.Certificate:
    """A self-signed IACA root certificate (CA, keyCertSign and cRLSign)."""
    name = _name(cn, country)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False, ca=True), critical=True)
        .sign(key, hashes.SHA256())
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
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn, str(country)))
        .issuer_name(iaca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([MDL_DS_EKU]), critical=True)
        .sign(iaca_key, hashes.SHA256())
    )


def _es256(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _tdate(when: dt.datetime) -> cbor2.CBORTag:
    return cbor2.CBORTag(0, when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass(frozen=True)
class IssuedMdl:
    """An mdoc as the wallet keeps it: each item's IssuerSignedItem CBOR and issuerAuth."""

    doc_type: str
    items: dict[str, dict[str, bytes]]  # namespace -> identifier -> IssuerSignedItem CBOR
    issuer_auth: list[Any]  # COSE_Sign1 [protected, unprotected, payload, signature]


def issue_mdl(
    ds_key: ec.EllipticCurvePrivateKey,
    ds: x509.Certificate,
    elements: dict[str, Any],
    device_key: ec.EllipticCurvePublicKey,
    *,
    signed: dt.datetime,
    valid_until: dt.datetime,
) -> IssuedMdl:
    """An mDL of ``elements`` (the mDL namespace) bound to the holder's ``device_key``."""
    items: dict[str, bytes] = {}
    digests: dict[int, bytes] = {}
    for digest_id, (identifier, value) in enumerate(elements.items()):
        body = cbor2.dumps(
            {
                "digestID": digest_id,
                "random": os.urandom(16),
                "elementIdentifier": identifier,
                "elementValue": value,
            }
        )
        items[identifier] = body
        digests[digest_id] = hashlib.sha256(cbor2.dumps(cbor2.CBORTag(24, body))).digest()
    mso = {
        "version": "1.0",
        "digestAlgorithm": "SHA-256",
        "valueDigests": {MDL_NAMESPACE: digests},
        "deviceKeyInfo": {"deviceKey": cbor2.loads(cose_key_bytes(device_key))},
        "docType": MDL_DOCTYPE,
        "validityInfo": {
            "signed": _tdate(signed),
            "validFrom": _tdate(signed),
            "validUntil": _tdate(valid_until),
        },
    }
    payload = embed(cbor2.dumps(mso))
    protected = cbor2.dumps({1: ES256})
    der = ds.public_bytes(Encoding.DER)
    signature = _es256(ds_key, sig1_structure(protected, payload))
    return IssuedMdl(
        MDL_DOCTYPE, {MDL_NAMESPACE: items}, [protected, {33: der}, payload, signature]
    )


def wallet(mdl: IssuedMdl, device_key: ec.EllipticCurvePrivateKey) -> Wallet:
    """The phone's answer to a reader: the asked-for items, deviceMac over the session."""

    def respond(
        request: bytes, transcript: bytes, e_reader_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        asked = device_request_from_bytes(request).elements
        name_spaces = {
            ns: [
                cbor2.CBORTag(24, body) for name, body in items.items() if name in asked.get(ns, ())
            ]
            for ns, items in mdl.items.items()
        }
        device_name_spaces = embed(b"\xa0")
        payload = device_authentication_bytes(transcript, mdl.doc_type, device_name_spaces)
        protected = cbor2.dumps({1: HMAC256})
        tag = mac_tag(emac_key(device_key, e_reader_key, transcript), protected, payload)
        document = {
            "docType": mdl.doc_type,
            "issuerSigned": {
                "nameSpaces": {ns: i for ns, i in name_spaces.items() if i},
                "issuerAuth": mdl.issuer_auth,
            },
            "deviceSigned": {
                "nameSpaces": cbor2.CBORTag(24, b"\xa0"),
                "deviceAuth": {"deviceMac": [protected, {}, None, tag]},
            },
        }
        return cbor2.dumps({"version": "1.0", "documents": [document], "status": 0})

    return respond
