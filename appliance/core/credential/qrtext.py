"""The outer layers shared by the Base45 profiles: prefix, size, Base45, zlib (spec LC1 s.1)."""

from __future__ import annotations

from appliance.core.credential.base45 import b45decode
from appliance.core.credential.limits import MAX_BASE45_DECODED, MAX_TEXT_CHARS, inflate_capped
from appliance.core.errors import Base45Error, InflateError, InflateTooLarge, Rejection
from appliance.core.reasons import Reason


def decode_base45_zlib(text: str, prefix: str, *, compression_required: bool = True) -> bytes:
    """Text after ``prefix`` -> inflated bytes, each limit checked before the work it bounds."""
    if len(text) > MAX_TEXT_CHARS:
        raise Rejection(Reason.TOO_LARGE, "QR text too long")
    body = text[len(prefix) :]
    # Each 3 characters give 2 bytes: refuse before decoding what would exceed the limit.
    if (len(body) * 2) // 3 > MAX_BASE45_DECODED:
        raise Rejection(Reason.TOO_LARGE, "Base45 payload too long")
    if not body.isascii():
        raise Rejection(Reason.MALFORMED_ENCODING, "non-ASCII character")
    try:
        raw = b45decode(body)
    except Base45Error as e:
        raise Rejection(Reason.MALFORMED_ENCODING, str(e)) from e
    if not raw or raw[0] != 0x78:
        if compression_required:
            raise Rejection(Reason.MALFORMED_COMPRESSION, "not a zlib stream")
        return raw
    try:
        return inflate_capped(raw)
    except InflateTooLarge as e:
        raise Rejection(Reason.TOO_LARGE, str(e)) from e
    except InflateError as e:
        raise Rejection(Reason.MALFORMED_COMPRESSION, str(e)) from e
