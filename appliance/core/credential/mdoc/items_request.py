"""What the reader asks for (spec mdl-reader s.3.4): request profiles, ItemsRequest,
DeviceRequest and reader authentication.

``checkpoint`` asks for what an inspector compares and reads; ``age`` asks for
``age_over_NN`` alone. Every element is asked with intent-to-retain false. The verifier
uses a ``Request`` for the "asked for" filter (s.4 step 1.6) and for step 6.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import cbor2

from appliance.core.credential.mdoc.cbor import TAG_SIGN1, Embedded, decode, decode_embedded
from appliance.core.credential.mdoc.cose_key import verify_ecdsa
from appliance.core.credential.mdoc.response import (
    HEADER_X5CHAIN,
    CoseMessage,
    malformed,
    parse_cose,
)
from appliance.core.credential.mdoc.session_crypto import embed, transcript_parts
from appliance.core.errors import MdocCborError, Rejection

MDL_DOCTYPE = "org.iso.18013.5.1.mDL"
MDL_NAMESPACE = "org.iso.18013.5.1"
PROFILES = ("checkpoint", "age")
DEFAULT_AGE_THRESHOLD = 20
CHECKPOINT_ELEMENTS = (
    "family_name",
    "given_name",
    "birth_date",
    "portrait",
    "document_number",
    "issuing_authority",
    "issuing_country",
    "issue_date",
    "expiry_date",
    "driving_privileges",
    "un_distinguishing_sign",
)
# The elements each profile's decision needs (s.4 step 6): missing -> MDOC_ELEMENT_MISSING.
CHECKPOINT_NEEDS = ("portrait", "document_number")
MAX_REQUEST_BYTES = 16_384


class Request(NamedTuple):
    doc_type: str
    elements: dict[str, frozenset[str]]  # namespace -> element identifiers asked for
    items_request_bytes: bytes | None = None  # ItemsRequestBytes (#6.24) as sent
    reader_auth: CoseMessage | None = None

    def asked(self, namespace: str, identifier: str) -> bool:
        return identifier in self.elements.get(namespace, ())


def age_element(threshold: int) -> str:
    return f"age_over_{threshold:02d}"


def profile_request(profile: str, age_threshold: int = DEFAULT_AGE_THRESHOLD) -> Request:
    """The request a profile sends (``ValueError`` for an unknown profile or threshold)."""
    if profile == "checkpoint":
        names = frozenset(CHECKPOINT_ELEMENTS)
    elif profile == "age":
        if not 0 <= age_threshold <= 99:
            raise ValueError("age threshold must be 0 to 99")
        names = frozenset({age_element(age_threshold)})
    else:
        raise ValueError(f"request profile must be one of {PROFILES}")
    return Request(MDL_DOCTYPE, {MDL_NAMESPACE: names})


def encode_items_request(request: Request) -> bytes:
    """ItemsRequestBytes (``#6.24``) for ``request``, every intent-to-retain false."""
    body = cbor2.dumps(
        {
            "docType": request.doc_type,
            "nameSpaces": {
                ns: dict.fromkeys(sorted(names), False) for ns, names in request.elements.items()
            },
        }
    )
    return embed(body)


def items_request_from_bytes(data: bytes) -> Request:
    """A Request from ItemsRequest CBOR (the map) or ItemsRequestBytes (``#6.24`` form)."""
    try:
        item = decode(data, tags=frozenset({24}), max_items=1024)
        if isinstance(item, Embedded):
            raw, item = item.raw, decode_embedded(item, tags=frozenset(), max_items=1024)
        else:
            raw = embed(data)
    except MdocCborError as e:
        raise malformed(f"ItemsRequest: {e}") from e
    return _items_request(item, raw, None)


def device_request_from_bytes(data: bytes) -> Request:
    """The first DocRequest of a DeviceRequest (the appliance sends one)."""
    if len(data) > MAX_REQUEST_BYTES:
        raise malformed("DeviceRequest too large")
    try:
        item = decode(data, tags=frozenset({24, TAG_SIGN1}), max_items=1024)
    except MdocCborError as e:
        raise malformed(f"DeviceRequest: {e}") from e
    requests = item.get("docRequests") if isinstance(item, dict) else None
    if not isinstance(requests, list) or not requests or not isinstance(requests[0], dict):
        raise malformed("DeviceRequest has no docRequests")
    first = requests[0]
    items = first.get("itemsRequest")
    if not isinstance(items, Embedded):
        raise malformed("itemsRequest is not #6.24(bstr)")
    try:
        inner = decode_embedded(items, tags=frozenset(), max_items=1024)
    except MdocCborError as e:
        raise malformed(f"ItemsRequest: {e}") from e
    reader_auth = first.get("readerAuth")
    auth = None if reader_auth is None else parse_cose(reader_auth, TAG_SIGN1, "readerAuth")
    return _items_request(inner, items.raw, auth)


def _items_request(item: Any, raw: bytes, auth: CoseMessage | None) -> Request:
    if not isinstance(item, dict) or type(item.get("docType")) is not str:
        raise malformed("ItemsRequest has no docType")
    spaces = item.get("nameSpaces")
    if not isinstance(spaces, dict):
        raise malformed("ItemsRequest nameSpaces is not a map")
    elements: dict[str, frozenset[str]] = {}
    for namespace, names in spaces.items():
        if (
            type(namespace) is not str
            or not isinstance(names, dict)
            or not all(type(n) is str and type(v) is bool for n, v in names.items())
        ):
            raise malformed("ItemsRequest namespace is not text -> {text: bool}")
        elements[namespace] = frozenset(names)
    return Request(item["docType"], elements, raw, auth)


def reader_authentication_bytes(
    session_transcript_bytes: bytes, items_request_bytes: bytes
) -> bytes:
    """``#6.24(bstr .cbor ["ReaderAuthentication", SessionTranscript, ItemsRequestBytes])``,
    from the transcript and ItemsRequestBytes as they are (s.3.4)."""
    transcript = decode(session_transcript_bytes)
    if not isinstance(transcript, Embedded):
        raise malformed("SessionTranscriptBytes is not #6.24(bstr)")
    return embed(b"\x83\x74ReaderAuthentication" + transcript.data + items_request_bytes)


def verify_reader_auth(request: Request, session_transcript_bytes: bytes) -> bytes | None:
    """The reader certificate DER when ``readerAuth`` verifies with its x5chain key, else
    None. Whether that certificate is trusted is the holder's decision, not the reader's."""
    from cryptography import x509

    auth, items = request.reader_auth, request.items_request_bytes
    if auth is None or items is None or auth.payload is not None:
        return None
    chain = auth.unprotected.get(HEADER_X5CHAIN)
    if isinstance(chain, list) and chain:
        chain = chain[0]
    if type(chain) is not bytes:
        return None
    try:
        transcript_parts(session_transcript_bytes)
        message = _sig_structure(
            auth.protected, reader_authentication_bytes(session_transcript_bytes, items)
        )
        public_key = x509.load_der_x509_certificate(chain).public_key()
    except (Rejection, MdocCborError, ValueError, x509.InvalidVersion):
        return None
    return chain if verify_ecdsa(auth.alg, public_key, message, auth.tag) else None


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])
