"""COSE_Sign1 (RFC 9052) parsing with the structural limits of spec LC1 s.1.

Verification is over the bytes received: the Sig_structure is built from the protected
header and payload byte strings exactly as they arrived, never re-encoded.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import cbor2

from appliance.core.credential.cbor_scan import scan
from appliance.core.credential.limits import INT64_MAX, INT64_MIN, MAX_CBOR_ITEMS
from appliance.core.errors import CborShapeError, CoseError

ALG_ES256, ALG_EDDSA, ALG_PS256 = -7, -8, -37
ALG_NAMES = {ALG_ES256: "ES256", ALG_EDDSA: "EdDSA", ALG_PS256: "PS256"}
HEADER_ALG, HEADER_KID = 1, 4
TAG_SIGN1, TAG_CWT = 18, 61

# Concrete CBOR container types (cbor2 6 gives frozendict/tuple inside tags). Checking
# concrete types is several times cheaper than the Mapping/Sequence ABCs on the hot path.
# Declared as the ABCs so that ``isinstance(x, MAP_TYPES)`` narrows x for the type checker.
MAP_TYPES: tuple[type[Mapping[Any, Any]], ...] = (dict, getattr(cbor2, "frozendict", dict))
ARRAY_TYPES: tuple[type[Sequence[Any]], ...] = (list, tuple)


class Sign1(NamedTuple):
    """A parsed COSE_Sign1 (immutable; a NamedTuple because one is built per scan)."""

    protected: bytes
    protected_map: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        """``["Signature1", protected, h'', payload]`` in CBOR, from the received bytes."""
        return b"".join(
            (
                b"\x84\x6aSignature1",
                _bstr_head(len(self.protected)),
                self.protected,
                b"\x40",
                _bstr_head(len(self.payload)),
                self.payload,
            )
        )


_local = threading.local()
NO_TAGS: frozenset[int] = frozenset()
SIGN1_TAGS = frozenset({TAG_SIGN1})
CWT_SIGN1_TAGS = frozenset({TAG_CWT, TAG_SIGN1})
MAX_HEADER_ENTRIES = 16
MAX_ALG_TEXT = 32
# Items the pre-scan lets through in a header map, and in a whole envelope (tags, array,
# three byte strings and the unprotected header): a wide header is refused in microseconds.
MAX_HEADER_ITEMS = 64
MAX_ENVELOPE_ITEMS = 8 + MAX_HEADER_ITEMS


def _decoder() -> cbor2.CBORDecoder:
    """One decoder per thread, re-pointed at each input: building a decoder costs about a
    third of decoding a claims map. cbor2 resets shared-reference state on every
    ``decode()`` (tests/core/test_vectors.py checks), so nothing carries over between inputs.
    No keyword options: the pre-scan enforces depth and duplicate keys on every cbor2 from
    the floor in pyproject.toml (5.6 lacks ``max_depth``, 5.9 ``allow_duplicate_keys``)."""
    decoder = getattr(_local, "decoder", None)
    if decoder is None:
        decoder = _local.decoder = cbor2.CBORDecoder(io.BytesIO(b""))
    return decoder


def loads_exact(
    data: bytes,
    *,
    tags: frozenset[int] = NO_TAGS,
    root_tags: frozenset[int] = NO_TAGS,
    max_items: int = MAX_CBOR_ITEMS,
) -> Any:
    """Decode one CBOR item that spans all of ``data`` (trailing bytes are an error).

    The bytes are pre-scanned first (``cbor_scan``): cbor2 only sees plain data, with tags
    from ``root_tags`` around the top item and from ``tags`` anywhere, nothing else.
    """
    try:
        end = scan(data, root_tags=root_tags, tags=tags, max_items=max_items)
    except CborShapeError as e:
        raise CoseError(f"not acceptable CBOR: {e}") from e
    if end != len(data):
        raise CoseError("bytes after the CBOR item")
    decoder = _decoder()
    decoder.fp = io.BytesIO(data)
    try:
        return decoder.decode()
    except (cbor2.CBORError, ValueError, OverflowError) as e:  # e.g. text that is not UTF-8
        raise CoseError(f"not valid CBOR: {e}") from e


def parse_sign1(data: bytes, *, allow_cwt_tag: bool = False) -> Sign1:
    """Parse an untagged or tag-18 COSE_Sign1 (and 61(18(...)) where a profile allows it)."""
    common = _common_envelope(data)
    if common is not None:
        return common
    item = loads_exact(
        data,
        root_tags=CWT_SIGN1_TAGS if allow_cwt_tag else SIGN1_TAGS,
        max_items=MAX_ENVELOPE_ITEMS,
    )
    if allow_cwt_tag and isinstance(item, cbor2.CBORTag) and item.tag == TAG_CWT:
        item = item.value
        if not (isinstance(item, cbor2.CBORTag) and item.tag == TAG_SIGN1):
            raise CoseError("CWT tag 61 must wrap a tag-18 COSE_Sign1")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != TAG_SIGN1:
            raise CoseError(f"unexpected CBOR tag {item.tag}")
        item = item.value
    if not isinstance(item, ARRAY_TYPES) or len(item) != 4:
        raise CoseError("COSE_Sign1 must be an array of four items")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes) or not isinstance(unprotected, MAP_TYPES):
        raise CoseError("COSE_Sign1 headers have the wrong types")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise CoseError("COSE_Sign1 payload and signature must be byte strings")
    protected_map = _common_header(protected)
    if protected_map is None:
        protected_map = loads_exact(protected, max_items=MAX_HEADER_ITEMS) if protected else {}
        if not isinstance(protected_map, MAP_TYPES):
            raise CoseError("protected header is not a map")
        check_header(protected_map)
    if unprotected:
        check_header(unprotected)
    return Sign1(protected, protected_map, unprotected, payload, signature)


def check_header(header: Mapping[Any, Any]) -> None:
    """A header map of the size and value types RFC 9052 allows: a bounded number of
    entries, ``alg`` an int in int64 range or short text, ``kid`` a byte string."""
    if len(header) > MAX_HEADER_ENTRIES:
        raise CoseError(f"header map has more than {MAX_HEADER_ENTRIES} entries")
    alg = header.get(HEADER_ALG)
    if alg is not None and not (
        (type(alg) is int and INT64_MIN <= alg <= INT64_MAX)
        or (type(alg) is str and len(alg) <= MAX_ALG_TEXT)
    ):
        raise CoseError("header alg is not an int64 or short text")
    kid = header.get(HEADER_KID)
    if kid is not None and type(kid) is not bytes:
        raise CoseError("header kid is not a byte string")


# The header every LC1 encoder writes, {1: -7 or -8, 4: h'<8 bytes>'}, read without a
# CBOR decoder call (about 1 us per verification); any other form takes the general path.
_COMMON_ALGS = {0x26: ALG_ES256, 0x27: ALG_EDDSA}


def _common_header(protected: bytes) -> dict[int, Any] | None:
    if (
        len(protected) == 13
        and protected[:2] == b"\xa2\x01"
        and protected[3:5] == b"\x04\x48"
        and protected[2] in _COMMON_ALGS
    ):
        return {HEADER_ALG: _COMMON_ALGS[protected[2]], HEADER_KID: protected[5:]}
    return None


def _common_envelope(data: bytes) -> Sign1 | None:
    """``18([h'<protected>', {}, h'<payload>', h'<signature>'])`` (or untagged), the form
    every LC1 and LP1 encoder writes, read without the pre-scan or a decoder call (about
    6 us per verification); anything else, even one byte off, takes the general path.
    Three definite byte strings and an empty map hold no tag, nesting or duplicate key, so
    the pre-scan and cbor2 could only agree with this reading."""
    pos = 2 if data[:2] == b"\xd2\x84" else 1 if data[:1] == b"\x84" else 0
    if not pos:
        return None
    protected, pos = _bstr_at(data, pos)
    if protected is None or data[pos : pos + 1] != b"\xa0":
        return None
    payload, pos = _bstr_at(data, pos + 1)
    if payload is None:
        return None
    signature, pos = _bstr_at(data, pos)
    if signature is None or pos != len(data):
        return None
    if not protected:
        protected_map: Mapping[Any, Any] = {}
    else:
        common = _common_header(protected)
        if common is None:
            return None
        protected_map = common
    return Sign1(protected, protected_map, {}, payload, signature)


def _bstr_at(data: bytes, pos: int) -> tuple[bytes | None, int]:
    """A definite byte string whose head is at ``pos`` (length below 65,536), or None."""
    if pos >= len(data):
        return None, pos
    initial = data[pos]
    if 0x40 <= initial < 0x58:
        start, length = pos + 1, initial - 0x40
    elif initial == 0x58 and pos + 1 < len(data):
        start, length = pos + 2, data[pos + 1]
    elif initial == 0x59 and pos + 2 < len(data):
        start, length = pos + 3, int.from_bytes(data[pos + 1 : pos + 3], "big")
    else:
        return None, pos
    end = start + length
    if end > len(data):
        return None, pos
    return data[start:end], end


def _bstr_head(n: int) -> bytes:
    if n < 24:
        return bytes((0x40 | n,))
    if n < 0x100:
        return bytes((0x58, n))
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    return b"\x5a" + n.to_bytes(4, "big")


def encode_sign1(protected: Mapping[int, Any], payload: bytes, sign: Any) -> bytes:
    """Build a tag-18 COSE_Sign1; ``sign(to_be_signed) -> signature`` (issuer tools, tests)."""
    protected_bytes = cbor2.dumps(dict(protected))
    envelope = Sign1(protected_bytes, protected, {}, payload, b"")
    signature = sign(envelope.to_be_signed())
    return cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [protected_bytes, {}, payload, signature]))
