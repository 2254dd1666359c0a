"""Builders for real credentials and trust data in tests (no mocks: real keys, real COSE)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import cbor2

from appliance.core.credential.base45 import b45encode
from appliance.core.credential.cose import Sign1
from appliance.core.snapshot import TrustSnapshot
from appliance.tools.issuer import (
    ALG_IDS,
    Claims,
    LicenceData,
    SigningKey,
    generate_key,
    issue,
)
from appliance.trust.editor import TrustSourceEditor

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z: the one fixed "now" (wall seconds) of the tests
ISS = "TH-DLT"


class FakeClock:
    """The one fake clock of the tests, for any injected clock (monotonic or wall: start it at
    NOW for a wall clock). Time moves only when the test advances it or the code under test
    sleeps through it, so no test depends on the machine's speed."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def licence(**overrides: Any) -> LicenceData:
    fields: dict[str, Any] = {
        "typ": "DL",
        "no": "63001234",
        "nm": "สมชาย ใจดี",
        "nml": "Somchai Jaidee",
        "dob": "1990-01-02",
        "cls": ["B"],
    }
    fields.update(overrides)
    return LicenceData(**fields)


def claims(**overrides: Any) -> Claims:
    values: dict[str, Any] = {
        "iss": ISS,
        "licence": licence(),
        "iat": NOW - 3600,
        "exp": NOW + 365 * 86400,
    }
    values.update(overrides)
    return Claims(**values)


@dataclass
class World:
    """An issuer with an ES256 and an EdDSA key, and a trust source trusting both."""

    es256: SigningKey = field(default_factory=lambda: generate_key("ES256"))
    eddsa: SigningKey = field(default_factory=lambda: generate_key("EdDSA"))
    editor: TrustSourceEditor = field(default_factory=TrustSourceEditor)

    def __post_init__(self) -> None:
        self.editor.add_key(ISS, self.es256.trust_entry(), "Department of Land Transport")
        self.editor.add_key(ISS, self.eddsa.trust_entry())

    def trust(self) -> TrustSnapshot:
        return self.editor.snapshot()

    def issue(self, key: SigningKey | None = None, **overrides: Any) -> str:
        return issue(key or self.es256, claims(**overrides))


def cose(
    key: SigningKey,
    payload: bytes,
    *,
    protected: Any = None,
    unprotected: dict | None = None,
    tag: int | None = 18,
    signature: bytes | None = None,
) -> bytes:
    """A COSE_Sign1 with any headers, signed over exactly the bytes it carries."""
    if protected is None:
        protected = {1: ALG_IDS[key.alg], 4: key.kid}
    protected_bytes = protected if isinstance(protected, bytes) else cbor2.dumps(protected)
    envelope = Sign1(protected_bytes, {}, {}, payload, b"")
    sig = signature if signature is not None else key.sign(envelope.to_be_signed())
    body = [protected_bytes, unprotected or {}, payload, sig]
    return cbor2.dumps(cbor2.CBORTag(tag, body) if tag is not None else body)


def text(cose_bytes: bytes, prefix: str = "LC1:", compress: bool = True) -> str:
    return prefix + b45encode(zlib.compress(cose_bytes) if compress else cose_bytes)


def qr_frame(text: str | None, width: int = 640, height: int = 480):
    """A grey camera-sized frame (numpy uint8) showing ``text`` as a QR code, or empty."""
    import io

    import numpy as np
    import segno
    from PIL import Image

    canvas = Image.new("L", (width, height), 200)
    if text is not None:
        buf = io.BytesIO()
        segno.make(text, error="m", micro=False).save(buf, kind="png", scale=4, border=4)
        code = Image.open(io.BytesIO(buf.getvalue())).convert("L")
        side = min(width, height) - 40
        code = code.resize((side, side), Image.NEAREST)
        canvas.paste(code, ((width - side) // 2, (height - side) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()
