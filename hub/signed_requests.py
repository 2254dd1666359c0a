"""A device's signed request, authenticated before the hub parses a byte of it.

Order (issue 21, finding 4): the declared length is checked first (no ``Content-Length``:
411, above the limit: 413), then the device named in ``X-Appliance-Device`` must be
enrolled and ``X-Appliance-Signature`` must be base64 of 64 bytes (else 401, before the
body is read), then exactly the declared bytes are read from the stream, then the Ed25519
signature is checked over those raw bytes (401). Only an authenticated body reaches the
JSON parser, so an unauthenticated request costs at most one bounded read and one
signature check, never a parse of its contents; the body of a refused sender is read
and dropped in small chunks (the client sees the 401, not a reset connection).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any, Protocol

from appliance.audit.identity import DevicePublicKey
from appliance.audit.signed_body import DEVICE_HEADER, SIGNATURE_HEADER
from appliance_hub.errors import RequestRefused

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
SIGNATURE_BYTES = 64  # Ed25519


class Registry(Protocol):
    def get(self, device_id: str) -> DevicePublicKey | None: ...


def read_signed_body(
    request: Any, registry: Registry, max_bytes: int, unauthenticated: str
) -> tuple[str, DevicePublicKey, bytearray]:
    """Device id, its enrolled key and the body of ``request`` (a werkzeug request), whose
    signature verified; ``RequestRefused`` otherwise. ``unauthenticated`` is the one
    message for an unknown device and a bad signature, so the hub does not tell who is
    enrolled."""
    length = request.content_length
    if length is None:
        raise RequestRefused(411, "Content-Length required")
    if length > max_bytes:
        raise RequestRefused(413, f"a request body is at most {max_bytes} bytes")
    device_id = request.headers.get(DEVICE_HEADER, "")
    key = registry.get(device_id) if device_id else None
    signature = _signature(request.headers.get(SIGNATURE_HEADER, ""))
    if key is None or signature is None:
        log.info("request refused: %s", "no valid signature header" if key else "unknown device id")
        _discard(request.stream, length)
        raise RequestRefused(401, unauthenticated)
    body = _read_exactly(request.stream, length)
    if not key.verify(signature, body):
        log.info("request refused: bad signature")
        raise RequestRefused(401, unauthenticated)
    return device_id, key, body


def _signature(header: str) -> bytes | None:
    if not header or len(header) > 2 * SIGNATURE_BYTES:
        return None
    try:
        signature = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return None
    return signature if len(signature) == SIGNATURE_BYTES else None


def _read_exactly(stream: Any, length: int) -> bytearray:
    """``length`` bytes from the request stream into one buffer (no second copy while
    reading); a short body is a 400."""
    body = bytearray(length)
    with memoryview(body) as view:
        got = 0
        while got < length:
            n = stream.readinto(view[got : got + READ_CHUNK])
            if not n:
                raise RequestRefused(400, "body shorter than its Content-Length")
            got += n
    return body


def _discard(stream: Any, length: int) -> None:
    """Read and drop up to ``length`` bytes (already checked against the limit)."""
    left = length
    while left > 0:
        chunk = stream.read(min(READ_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
