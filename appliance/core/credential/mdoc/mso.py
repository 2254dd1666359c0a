"""The MobileSecurityObject (ISO 18013-5 s.9.1.2.4): the issuer-signed digests and keys.

The issuerAuth payload is ``#6.24(bstr .cbor MobileSecurityObject)``; its bytes as received
are what the issuer signed, so they are kept (``payload``) and hashed for the audit's
``cti_hash`` (spec s.6), never re-encoded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from appliance.core.credential.mdoc.cbor import (
    TAG_TDATE,
    Embedded,
    decode,
    decode_plain,
    embedded_content,
)
from appliance.core.credential.mdoc.response import malformed
from appliance.core.errors import MdocCborError

# The MSO's digestAlgorithm -> the hash constructor (``hashlib.new`` looks the name up anew
# on every call; the digests run once per disclosed item).
DIGEST_ALGORITHMS: dict[str, Callable[[bytes], Any]] = {
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
MAX_DIGEST_BYTES = 64
MSO_TAGS = frozenset({TAG_TDATE})


class Mso(NamedTuple):
    payload: bytes  # MobileSecurityObjectBytes as received (the issuerAuth payload)
    version: str
    digest_algorithm: str  # as written; ``DIGEST_ALGORITHMS`` says which are supported
    value_digests: dict[str, dict[int, bytes]]
    device_key: Any  # the COSE_Key map, checked by ``cose_key``
    doc_type: str
    signed: float
    valid_from: float
    valid_until: float
    status_uri: str | None
    status_idx: int | None


def parse_mso(payload: bytes) -> Mso:
    """The MSO inside the issuerAuth payload; ``Rejection(MDOC_MALFORMED)`` if out of shape."""
    try:
        content = embedded_content(payload)
        if content is None:
            outer = decode(payload, tags=frozenset({24}), max_items=4)
            if not isinstance(outer, Embedded):
                raise malformed("issuerAuth payload is not #6.24(bstr)")
            content = outer.data
        item = decode_plain(content, tags=MSO_TAGS)
    except MdocCborError as e:
        raise malformed(f"MSO: {e}") from e
    if not isinstance(item, dict):
        raise malformed("MSO is not a map")
    version, algorithm, doc_type = (
        item.get("version"),
        item.get("digestAlgorithm"),
        item.get("docType"),
    )
    if type(version) is not str or not version.startswith("1."):
        raise malformed("MSO version is not 1.x")
    if type(algorithm) is not str or type(doc_type) is not str:
        raise malformed("MSO digestAlgorithm or docType is not text")
    key_info = item.get("deviceKeyInfo")
    if not isinstance(key_info, dict) or not isinstance(key_info.get("deviceKey"), dict):
        raise malformed("MSO deviceKeyInfo has no deviceKey map")
    validity = item.get("validityInfo")
    if not isinstance(validity, dict):
        raise malformed("MSO validityInfo is not a map")
    signed, valid_from, valid_until = (
        _tdate(validity.get(name), name) for name in ("signed", "validFrom", "validUntil")
    )
    if valid_until < valid_from:
        raise malformed("MSO validUntil is before validFrom")
    status_uri, status_idx = _status(item.get("status"))
    return Mso(
        payload,
        version,
        algorithm,
        _value_digests(item.get("valueDigests")),
        key_info["deviceKey"],
        doc_type,
        signed,
        valid_from,
        valid_until,
        status_uri,
        status_idx,
    )


def _tdate(value: Any, name: str) -> float:
    """A tag-0 date-time (the reader has parsed it, zone included) as epoch seconds."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise malformed(f"MSO validityInfo {name} is not a tdate")
    try:
        return value.timestamp()
    except (OverflowError, OSError, ValueError) as e:
        raise malformed(f"MSO validityInfo {name} is out of range") from e


def _value_digests(value: Any) -> dict[str, dict[int, bytes]]:
    if not isinstance(value, dict) or not value:
        raise malformed("MSO valueDigests is not a non-empty map")
    out: dict[str, dict[int, bytes]] = {}
    for namespace, digests in value.items():
        if type(namespace) is not str or not isinstance(digests, dict):
            raise malformed("MSO valueDigests entry is not text -> map")
        for digest_id, digest in digests.items():
            if (
                type(digest_id) is not int
                or digest_id < 0
                or type(digest) is not bytes
                or not 0 < len(digest) <= MAX_DIGEST_BYTES
            ):
                raise malformed("MSO digest is not uint -> bstr")
        out[namespace] = digests
    return out


def _status(value: Any) -> tuple[str | None, int | None]:
    """``{"status_list": {"idx": uint, "uri": text}}``; other mechanisms are not read (s.2)."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise malformed("MSO status is not a map")
    status_list = value.get("status_list")
    if status_list is None:
        return None, None
    if not isinstance(status_list, dict):
        raise malformed("MSO status_list is not a map")
    idx, uri = status_list.get("idx"), status_list.get("uri")
    if (
        type(idx) is not int
        or idx < 0
        or idx >= 2**32
        or type(uri) is not str
        or not 0 < len(uri) <= 2048
    ):
        raise malformed("MSO status_list lacks idx (uint) or uri (text)")
    return uri, idx
