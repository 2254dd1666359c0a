"""A device's signed request body for the hub: the raw bytes, signed in two headers.

The hub used to receive ``{"payload": base64, "signature": base64}`` and had to parse the
whole (up to 16 MB) batch to learn which device claimed to send it, before any signature
was checked (issue 21, finding 4). Now the body is the canonical payload itself and the
device names itself and signs those exact bytes in headers, so the hub finds the enrolled
key and verifies the signature before it parses anything, and refuses an unknown device
before it even reads the body.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

DEVICE_HEADER = "X-Appliance-Device"
SIGNATURE_HEADER = "X-Appliance-Signature"
CONTENT_TYPE = "application/json"


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class SignedBody:
    """What a device posts: ``body`` exactly as signed, and the headers that carry it."""

    body: bytes
    headers: Mapping[str, str]


def sign_body(identity: Signer, device_id: str, body: bytes) -> SignedBody:
    """``body`` with the device id and its Ed25519 signature over those bytes as headers."""
    signature = base64.b64encode(identity.sign(body)).decode("ascii")
    return SignedBody(
        body, {"Content-Type": CONTENT_TYPE, DEVICE_HEADER: device_id, SIGNATURE_HEADER: signature}
    )
