"""Issuer side of LC1: keys, credentials and QR texts, for agencies' rollout tests and ours.

Encoders follow spec LC1 s.1: tag 18, alg and kid in the protected header, zlib, Base45.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from appliance.core.credential.base45 import b45encode
from appliance.core.credential.cose import (
    ALG_EDDSA,
    ALG_ES256,
    HEADER_ALG,
    HEADER_KID,
    encode_sign1,
)
from appliance.core.credential.lc1 import (
    CLAIM_CNF,
    CLAIM_CTI,
    CLAIM_EXP,
    CLAIM_IAT,
    CLAIM_ISS,
    CLAIM_LICENCE,
    CLAIM_NBF,
    CLAIM_STATUS,
    PREFIX,
)
from appliance.core.credential.limits import MAX_PHOTO_BYTES
from appliance.core.errors import KeyFileError
from appliance.core.isotime import parse_instant
from appliance.platform.secret_files import create_secret
from appliance.trust.source import compute_kid, public_key_der

ALG_IDS = {"ES256": ALG_ES256, "EdDSA": ALG_EDDSA}


@dataclass(frozen=True)
class SigningKey:
    alg: str
    private_key: Any

    @property
    def kid(self) -> bytes:
        return compute_kid(public_key_der(self.private_key.public_key()))

    def sign(self, message: bytes) -> bytes:
        """COSE signature: raw r||s (64 bytes) for ES256, plain Ed25519 otherwise."""
        if self.alg == "EdDSA":
            return self.private_key.sign(message)
        r, s = decode_dss_signature(self.private_key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def trust_entry(
        self,
        not_before: str = "2024-01-01T00:00:00Z",
        not_after: str = "2034-01-01T00:00:00Z",
        types: list[str] | None = None,
        profiles: list[str] | None = None,
    ) -> dict[str, Any]:
        """The key's entry for a trust source (spec LC1 s.4).

        ``profiles`` is written out (default LC1, what this tool issues) so the entry says
        which formats it may sign rather than leaving it to the key-form default.
        """
        return {
            "kid": self.kid.hex(),
            "alg": self.alg,
            "public_key": self.public_pem(),
            "not_before": not_before,
            "not_after": not_after,
            "status": "active",
            "types": list(types or []),
            "profiles": list(profiles or ["LC1"]),
        }


def generate_key(alg: str) -> SigningKey:
    if alg == "ES256":
        return SigningKey(alg, ec.generate_private_key(ec.SECP256R1()))
    if alg == "EdDSA":
        return SigningKey(alg, ed25519.Ed25519PrivateKey.generate())
    raise ValueError(f"unsupported alg {alg!r}: use ES256 or EdDSA")


def save_private_key(key: SigningKey, path: Path) -> None:
    """Write the key readable by its owner only (0600 from creation); never overwrites."""
    try:
        created = create_secret(path, key.private_pem())
    except OSError as e:
        raise KeyFileError(f"cannot write key {path}: {e.strerror or e}") from e
    if not created:
        raise KeyFileError(f"{path} exists; refusing to overwrite a key")


def load_private_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as e:
        raise KeyFileError(f"cannot read key {path}: {e.strerror or e}") from e
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from e
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return SigningKey("EdDSA", key)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return SigningKey("ES256", key)
    raise KeyFileError(f"{path}: only P-256 (ES256) and Ed25519 (EdDSA) keys are supported")


@dataclass
class LicenceData:
    """Licence fields of claim -65537 (spec LC1 s.3)."""

    typ: str
    no: str
    nm: str
    nml: str | None = None
    dob: str | None = None
    cls: list[str] = field(default_factory=list)
    vf: str | None = None
    vu: str | None = None
    ph: bytes | None = None
    ext: dict[str, str] = field(default_factory=dict)

    def to_cbor_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {"typ": self.typ, "no": self.no, "nm": self.nm}
        for name in ("nml", "dob", "vf", "vu", "ph"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.cls:
            out["cls"] = list(self.cls)
        if self.ext:
            out["ext"] = dict(self.ext)
        return out

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> LicenceData:
        """Checked fields (spec LC1 s.3): never sign what a verifier answers MALFORMED_CLAIMS.

        ``ValueError`` names the command-line option of the first bad field.
        """
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown licence fields: {', '.join(sorted(unknown))}")
        missing = [
            f"--{n}"
            for n in ("typ", "no", "nm")
            if not isinstance(raw.get(n), str) or not raw[n].strip()
        ]
        if missing:
            raise ValueError(f"required licence fields missing: {', '.join(missing)}")
        for name in ("nml", "dob", "vf", "vu"):
            value = raw.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"--{name} must be text")
            if name != "nml" and value is not None and not is_iso_day(value):
                raise ValueError(f"--{name} must be a date as YYYY-MM-DD, not {value[:40]!r}")
        cls_ = raw.get("cls", [])
        if not isinstance(cls_, list) or not all(isinstance(c, str) for c in cls_):
            raise ValueError("--cls must be text")
        ext = raw.get("ext", {})
        if not isinstance(ext, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in ext.items()
        ):
            raise ValueError("--ext must be LABEL=VALUE text")
        if raw.get("ph") is not None:
            check_photo(raw["ph"])
        return cls(**dict(raw))


def is_iso_day(value: str) -> bool:
    """``YYYY-MM-DD`` and a real calendar day, as spec LC1 s.3 writes dob, vf and vu."""
    import re
    from datetime import date

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def photo_format(data: bytes) -> str | None:
    """``"jpeg"`` or ``"webp"`` from the file's magic bytes; None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_photo(data: object) -> None:
    """A portrait as spec LC1 s.3 allows: JPEG or WebP, 1 to 2,048 bytes."""
    if not isinstance(data, bytes) or not data:
        raise ValueError("--photo is empty")
    if photo_format(data) is None:
        raise ValueError("--photo must be a JPEG or WebP picture")
    if len(data) > MAX_PHOTO_BYTES:
        raise ValueError(f"--photo is {len(data):,} bytes; at most {MAX_PHOTO_BYTES:,} fit")


@dataclass
class Claims:
    iss: str
    licence: LicenceData
    iat: int
    exp: int
    nbf: int | None = None
    cti: bytes = field(default_factory=lambda: os.urandom(16))
    status_uri: str | None = None
    status_idx: int | None = None
    holder_cose_key: dict[int, Any] | None = None

    def to_cbor(self) -> bytes:
        claims: dict[int, Any] = {
            CLAIM_ISS: self.iss,
            CLAIM_IAT: self.iat,
            CLAIM_EXP: self.exp,
            CLAIM_CTI: self.cti,
        }
        if self.nbf is not None:
            claims[CLAIM_NBF] = self.nbf
        if self.status_uri is not None:
            claims[CLAIM_STATUS] = {
                "status_list": {"idx": self.status_idx or 0, "uri": self.status_uri}
            }
        if self.holder_cose_key is not None:
            claims[CLAIM_CNF] = {1: self.holder_cose_key}
        claims[CLAIM_LICENCE] = self.licence.to_cbor_map()
        return cbor2.dumps(claims)


def sign_cose(key: SigningKey, payload: bytes) -> bytes:
    return encode_sign1({HEADER_ALG: ALG_IDS[key.alg], HEADER_KID: key.kid}, payload, key.sign)


def qr_text(prefix: str, cose_bytes: bytes) -> str:
    return prefix + b45encode(zlib.compress(cose_bytes, 9))


def issue(key: SigningKey, claims: Claims) -> str:
    """A complete ``LC1:`` QR text."""
    return qr_text(PREFIX, sign_cose(key, claims.to_cbor()))


def epoch(iso: str) -> int:
    """An operator's ``--iat``/``--exp`` (UTC when no zone is given) to whole seconds."""
    return int(parse_instant(iso, naive_is_utc=True))
