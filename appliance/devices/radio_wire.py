"""The wire between the kiosk and the mDL radio service (issue 23, the radio split): pure.

The kiosk keeps the session crypto and the verdict; the radio process only moves whole
messages. Over the Unix socket each direction carries frames: an 8-byte prefix (header
length, body length: two big-endian u32), a JSON header (an object with ``op``) and an
optional binary body. Both lengths are checked against ``Limits`` before a byte of either
is read, so neither side can be made to hold more than a header of 4 KiB and one message.

Requests: ``connect`` {mode, service_uuid (hex), ident (hex, central client mode), address
(hex or null)}, ``send`` (body: one whole message), ``receive`` {max_bytes}, ``close`` (body:
the termination message, may be empty). Answers: ``ok`` (body: the message, for receive)
or ``error`` {kind, detail}; the kinds map one-to-one onto the transport exceptions the
session already turns into reasons. Anything else is a ``WireError``, itself a
``TransportFailed``: garbage from the other side costs that session only.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.core.credential.mdoc.engagement import BleMode, BleOption
from appliance.core.errors import (
    MdocTransportError,
    MessageTooLarge,
    TransportFailed,
    TransportTimeout,
    TransportUnavailable,
)

PREFIX = struct.Struct(">II")
MAX_HEADER = 4096
BODY_MARGIN = 4096  # above the largest message: room for the radio's own framing slack
MAX_DETAIL = 200  # characters of an error's detail kept (it is logged, never shown)
OPS = ("connect", "send", "receive", "close")
ERRORS: dict[str, type[MdocTransportError]] = {
    "timeout": TransportTimeout,
    "failed": TransportFailed,
    "too_large": MessageTooLarge,
    "unavailable": TransportUnavailable,
}


class WireError(TransportFailed):
    """A frame that breaks the wire's rules: the connection is dropped, the session fails."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The most either side reads: the header, and one message plus a margin."""

    max_body: int
    max_header: int = MAX_HEADER

    @classmethod
    def for_messages(cls, max_message_bytes: int) -> Limits:
        return cls(max_message_bytes + BODY_MARGIN)


@dataclass(frozen=True, slots=True)
class Frame:
    header: dict[str, Any]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Connect:
    option: BleOption
    ident: bytes | None


@dataclass(frozen=True, slots=True)
class Send:
    message: bytes


@dataclass(frozen=True, slots=True)
class Receive:
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Close:
    termination: bytes | None


Request = Connect | Send | Receive | Close


class StreamReader(Protocol):
    async def readexactly(self, n: int) -> bytes: ...


# -- frames ----------------------------------------------------------------------------------


def encode(header: dict[str, Any], body: bytes = b"", limits: Limits | None = None) -> bytes:
    """One frame; ``limits`` refuses to send what the other side would refuse to read."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    if limits is not None and (len(raw) > limits.max_header or len(body) > limits.max_body):
        raise MessageTooLarge("frame over the wire's limits")
    return PREFIX.pack(len(raw), len(body)) + raw + body


def lengths(prefix: bytes, limits: Limits) -> tuple[int, int]:
    """(header, body) lengths from the 8-byte prefix, refused past the limits."""
    header_len, body_len = PREFIX.unpack(prefix)
    if not 0 < header_len <= limits.max_header:
        raise WireError(f"header of {header_len} bytes (at most {limits.max_header})")
    if body_len > limits.max_body:
        raise WireError(f"body of {body_len} bytes (at most {limits.max_body})")
    return header_len, body_len


def parse_header(raw: bytes) -> dict[str, Any]:
    """The JSON object of a header (bounded by its length already), or ``WireError``."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError(f"header is not JSON ({type(e).__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("op"), str):
        raise WireError("header is not an object with an op")
    return header


def decode(data: bytes, limits: Limits) -> tuple[Frame, bytes] | None:
    """The first frame of ``data`` and what follows it; None while it is incomplete."""
    if len(data) < PREFIX.size:
        return None
    header_len, body_len = lengths(data[: PREFIX.size], limits)
    end = PREFIX.size + header_len + body_len
    if len(data) < end:
        return None
    header = parse_header(data[PREFIX.size : PREFIX.size + header_len])
    return Frame(header, data[PREFIX.size + header_len : end]), data[end:]


async def read_frame(reader: StreamReader, limits: Limits) -> Frame | None:
    """The next frame from ``reader``; None when the stream ends cleanly between frames."""
    import asyncio

    try:
        prefix = await reader.readexactly(PREFIX.size)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise WireError("stream ended inside a frame's prefix") from None
    header_len, body_len = lengths(prefix, limits)
    try:
        header = parse_header(await reader.readexactly(header_len))
        body = await reader.readexactly(body_len) if body_len else b""
    except asyncio.IncompleteReadError:
        raise WireError("stream ended inside a frame") from None
    return Frame(header, body)


# -- requests (kiosk -> radio) ---------------------------------------------------------------


def connect_request(option: BleOption, ident: bytes | None) -> dict[str, Any]:
    return {
        "op": "connect",
        "mode": option.mode.value,
        "service_uuid": option.service_uuid.hex(),
        "ident": ident.hex() if ident is not None else None,
        "address": option.address.hex() if option.address is not None else None,
    }


def parse_request(frame: Frame) -> Request:
    """The typed request of a frame from the kiosk, or ``WireError``."""
    op, header = frame.header["op"], frame.header
    if op == "connect":
        try:
            mode = BleMode(str(header.get("mode")))
        except ValueError:
            raise WireError("connect: unknown mode") from None
        option = BleOption(
            mode, _hex(header.get("service_uuid"), 16, "service_uuid"), _opt_hex(header, "address")
        )
        ident = _opt_hex(header, "ident")
        if mode is BleMode.CENTRAL_CLIENT and (ident is None or len(ident) != 16):
            raise WireError("connect: central client mode needs a 16-byte ident")
        return Connect(option, ident)
    if op == "send":
        return Send(frame.body)
    if op == "receive":
        max_bytes = header.get("max_bytes")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise WireError("receive: max_bytes must be a positive integer")
        return Receive(max_bytes)
    if op == "close":
        return Close(frame.body or None)
    raise WireError(f"unknown op (one of {', '.join(OPS)})")


def _hex(value: Any, size: int | None, name: str) -> bytes:
    if not isinstance(value, str) or len(value) > 64:
        raise WireError(f"{name}: not a short hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise WireError(f"{name}: not hex") from None
    if size is not None and len(raw) != size:
        raise WireError(f"{name}: {len(raw)} bytes, not {size}")
    return raw


def _opt_hex(header: dict[str, Any], name: str) -> bytes | None:
    value = header.get(name)
    return None if value is None else _hex(value, None, name)


# -- answers (radio -> kiosk) ----------------------------------------------------------------


def ok(body: bytes = b"") -> tuple[dict[str, Any], bytes]:
    return {"op": "ok"}, body


def error(exc: BaseException) -> tuple[dict[str, Any], bytes]:
    """The answer for a failed step: its kind from the exception's class."""
    kind = next((k for k, cls in ERRORS.items() if isinstance(exc, cls)), "failed")
    return {"op": "error", "kind": kind, "detail": str(exc)[:MAX_DETAIL]}, b""


def answer_body(frame: Frame) -> bytes:
    """The body of an ``ok`` answer; an ``error`` answer raises its exception."""
    op, header = frame.header["op"], frame.header
    if op == "ok":
        return frame.body
    if op == "error":
        kind, detail = header.get("kind"), header.get("detail")
        cls = ERRORS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise WireError("error answer of an unknown kind")
        text = detail[:MAX_DETAIL] if isinstance(detail, str) else ""
        raise cls(f"radio: {text}" if text else f"radio: {kind}")
    raise WireError("answer is neither ok nor error")
