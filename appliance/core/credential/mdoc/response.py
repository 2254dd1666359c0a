"""DeviceResponse, Document and COSE structures of ISO 18013-5 (spec mdl-reader s.1).

Parsed with the bounded reader of ``cbor`` and checked for shape and types; every item that
is signed, MACed or digested keeps its bytes as received. Anything out of shape is a
``Rejection(MDOC_MALFORMED)``. Nothing here is trusted yet: the steps of ``verify`` decide.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from appliance.core.credential.mdoc.cbor import (
    TAG_MAC0,
    TAG_SIGN1,
    Embedded,
    Tagged,
    decode,
    decode_plain_many,
)
from appliance.core.errors import MdocCborError, Rejection
from appliance.core.reasons import Reason

HEADER_ALG, HEADER_X5CHAIN = 1, 33
MAX_DOCUMENTS = 8
MAX_DS_CERT_BYTES = 8_192
STATUS_OK = 0
HOLDER_ERROR_STATUSES = frozenset({10, 11, 12})
ITEM_TAGS = frozenset({0, 1004})  # inside an IssuerSignedItem: tdate and full-date values
NO_TAGS: frozenset[int] = frozenset()


class CoseMessage(NamedTuple):
    """A COSE_Sign1 or COSE_Mac0, headers and payload as received."""

    protected: bytes
    protected_map: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes | None  # None: detached
    tag: bytes  # the signature or the MAC tag

    @property
    def alg(self) -> Any:
        return self.protected_map.get(HEADER_ALG)


class IssuerSignedItem(NamedTuple):
    raw: bytes  # IssuerSignedItemBytes as received: the digest input
    digest_id: int
    random: bytes
    identifier: str
    value: Any


class Document(NamedTuple):
    doc_type: str
    name_spaces: dict[str, list[IssuerSignedItem]]
    issuer_auth: CoseMessage
    ds_certificate: bytes  # the first x5chain certificate, DER
    device_name_spaces: Embedded  # DeviceNameSpacesBytes as received
    device_mac: CoseMessage | None
    device_signature: CoseMessage | None
    errors: dict[str, dict[str, int]]  # namespace -> element -> error code


class DeviceResponse(NamedTuple):
    version: str
    documents: list[Any]  # raw Document maps: parsed one at a time by ``parse_document``
    document_errors: list[Any]
    status: int


def malformed(detail: str) -> Rejection:
    return Rejection(Reason.MDOC_MALFORMED, detail)


def parse_device_response(data: bytes) -> DeviceResponse:
    """The top level: ``version`` (major 1), ``documents``, ``documentErrors``, ``status``."""
    try:
        item = decode(data)
    except MdocCborError as e:
        raise malformed(f"DeviceResponse: {e}") from e
    if not isinstance(item, dict):
        raise malformed("DeviceResponse is not a map")
    version, status = item.get("version"), item.get("status")
    if type(version) is not str or not (version == "1" or version.startswith("1.")):
        raise malformed("DeviceResponse version is not 1.x")
    if type(status) is not int or status < 0:
        raise malformed("DeviceResponse status is not an unsigned integer")
    documents = item.get("documents", [])
    errors = item.get("documentErrors", [])
    if not isinstance(documents, list) or not isinstance(errors, list):
        raise malformed("documents or documentErrors is not an array")
    if len(documents) > MAX_DOCUMENTS:
        raise malformed(f"more than {MAX_DOCUMENTS} documents")
    return DeviceResponse(version, documents, errors, status)


def document_doc_type(document: Any) -> str | None:
    """A raw Document's ``docType`` text, for choosing it (None when it has none)."""
    if isinstance(document, dict) and type(document.get("docType")) is str:
        return str(document["docType"])
    return None


def parse_document(document: Any) -> Document:
    if not isinstance(document, dict):
        raise malformed("Document is not a map")
    doc_type = document.get("docType")
    issuer_signed, device_signed = document.get("issuerSigned"), document.get("deviceSigned")
    if (
        type(doc_type) is not str
        or not isinstance(issuer_signed, dict)
        or not isinstance(device_signed, dict)
    ):
        raise malformed("Document lacks docType, issuerSigned or deviceSigned")
    device_name_spaces = device_signed.get("nameSpaces")
    if not isinstance(device_name_spaces, Embedded):
        raise malformed("deviceSigned nameSpaces is not #6.24(bstr)")
    name_spaces = _issuer_name_spaces(issuer_signed.get("nameSpaces", {}), device_name_spaces)
    issuer_auth = parse_cose(issuer_signed.get("issuerAuth"), TAG_SIGN1, "issuerAuth")
    if issuer_auth.payload is None:
        raise malformed("issuerAuth has no payload")
    device_auth = device_signed.get("deviceAuth")
    if not isinstance(device_auth, dict):
        raise malformed("deviceAuth is not a map")
    mac, sig = device_auth.get("deviceMac"), device_auth.get("deviceSignature")
    return Document(
        doc_type,
        name_spaces,
        issuer_auth,
        _ds_certificate(issuer_auth),
        device_name_spaces,
        None if mac is None else parse_cose(mac, TAG_MAC0, "deviceMac"),
        None if sig is None else parse_cose(sig, TAG_SIGN1, "deviceSignature"),
        _errors(document.get("errors", {})),
    )


def parse_cose(item: Any, tag: int, what: str) -> CoseMessage:
    """An untagged or correctly tagged COSE_Sign1 / COSE_Mac0 array of four."""
    if isinstance(item, Tagged):
        if item.tag != tag:
            raise malformed(f"{what} has tag {item.tag}")
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise malformed(f"{what} is not a COSE array of four")
    protected, unprotected, payload, tag_bytes = item
    if (
        type(protected) is not bytes
        or not isinstance(unprotected, dict)
        or (payload is not None and type(payload) is not bytes)
        or type(tag_bytes) is not bytes
    ):
        raise malformed(f"{what} items have the wrong types")
    try:
        protected_map = _alg_only(protected)
        if protected_map is None:
            protected_map = decode(protected, tags=NO_TAGS, max_items=64) if protected else {}
    except MdocCborError as e:
        raise malformed(f"{what} protected header: {e}") from e
    if not isinstance(protected_map, dict):
        raise malformed(f"{what} protected header is not a map")
    return CoseMessage(protected, protected_map, unprotected, payload, tag_bytes)


def _alg_only(protected: bytes) -> dict[Any, Any] | None:
    """``{1: alg}`` with a one-byte alg (ES256 -7, HMAC 256/256 5, ...): the header nearly
    every mdoc carries, read without a decoder call; anything else returns None."""
    if len(protected) == 3 and protected[:2] == b"\xa1\x01" and protected[2] < 0x38:
        alg = protected[2]
        return {HEADER_ALG: alg if alg < 0x18 else 0x1F - alg}
    return None


def _ds_certificate(issuer_auth: CoseMessage) -> bytes:
    chain = issuer_auth.unprotected.get(
        HEADER_X5CHAIN, issuer_auth.protected_map.get(HEADER_X5CHAIN)
    )
    if isinstance(chain, list) and chain:
        chain = chain[0]  # later certificates are never a source of trust (s.4 step 1.2)
    if type(chain) is not bytes or not 0 < len(chain) <= MAX_DS_CERT_BYTES:
        raise malformed("issuerAuth x5chain holds no DS certificate")
    return chain


def _issuer_name_spaces(
    value: Any, device_name_spaces: Embedded
) -> dict[str, list[IssuerSignedItem]]:
    """The IssuerSignedItems by namespace; DeviceNameSpaces is checked to be a map on the
    way (both embedded CBOR, read by one ``decode_plain_many``)."""
    if type(value) is not dict:
        raise malformed("issuerSigned nameSpaces is not a map")
    datas: list[bytes] = []
    for namespace, items in value.items():
        if type(namespace) is not str or type(items) is not list or not items:
            raise malformed("issuerSigned namespace is not text with a non-empty array")
        for item in items:
            if type(item) is not Embedded:
                raise malformed("IssuerSignedItemBytes is not #6.24(bstr)")
            datas.append(item.data)
    count = len(datas)
    if device_name_spaces.data != b"\xa0":
        datas.append(device_name_spaces.data)
    try:
        inners = decode_plain_many(datas, tags=ITEM_TAGS)
    except MdocCborError as e:
        raise malformed(f"IssuerSignedItem or DeviceNameSpaces: {e}") from e
    if len(inners) > count and type(inners[count]) is not dict:
        raise malformed("DeviceNameSpaces is not a map")
    each = iter(inners)
    return {
        namespace: [_issuer_signed_item(item, next(each)) for item in items]
        for namespace, items in value.items()
    }


def _issuer_signed_item(item: Embedded, inner: Any) -> IssuerSignedItem:
    if type(inner) is not dict:
        raise malformed("IssuerSignedItem is not a map")
    digest_id, random = inner.get("digestID"), inner.get("random")
    identifier = inner.get("elementIdentifier")
    if (
        type(digest_id) is not int
        or digest_id < 0
        or type(random) is not bytes
        or type(identifier) is not str
        or "elementValue" not in inner
    ):
        raise malformed("IssuerSignedItem lacks digestID, random, elementIdentifier or value")
    return IssuerSignedItem(item.raw, digest_id, random, identifier, inner["elementValue"])


def _errors(value: Any) -> dict[str, dict[str, int]]:
    """Document ``errors``: namespace -> {element: code}; shape-checked, codes kept."""
    if not isinstance(value, dict):
        raise malformed("Document errors is not a map")
    out: dict[str, dict[str, int]] = {}
    for namespace, elements in value.items():
        if type(namespace) is not str or not isinstance(elements, dict):
            raise malformed("Document errors entry is not text -> map")
        out[namespace] = {}
        for name, code in elements.items():
            if type(name) is not str or type(code) is not int:
                raise malformed("Document error is not text -> int")
            out[namespace][name] = code
    return out
