"""Trust source files (spec LC1 s.4) read into a ``TrustSnapshot``.

The snapshot type lives in the core (``appliance.core.snapshot``); reading files, parsing
keys and building the mmap-backed revocation structures happen here, outside the core.
The store that sync installed is read by ``appliance.trust.store``. A bad source is
refused whole, naming the offending entry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from appliance.core.errors import TrustDataError
from appliance.core.isotime import parse_instant
from appliance.core.key_ring import DEFAULT_PROFILES, KEY_PROFILES, IssuerKey, KeyRing
from appliance.core.snapshot import TrustSnapshot
from appliance.trust.policy import parse_policy
from appliance.trust.revocation import HashSet, StatusList

MAX_TRUST_SOURCE_BYTES = 64 * 1024 * 1024
MAX_STATUS_LIST_BYTES = 128 * 1024 * 1024  # 1 billion 1-bit entries, or 128 million 8-bit
KEY_ALGS = ("ES256", "EdDSA", "PS256")


def load_trust_source(path: Path) -> TrustSnapshot:
    """Read a trust source file (spec LC1 s.4); ``TrustDataError`` names what is wrong."""
    return snapshot_from_document(read_document(path))


def read_document(path: Path, limit: int = MAX_TRUST_SOURCE_BYTES) -> Any:
    """The JSON of a trust source file, read with a size cap (the publisher allows more)."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise TrustDataError(f"cannot read trust source {path}: {e.strerror or e}") from e
    if len(raw) > limit:
        raise TrustDataError(f"trust source {path} is larger than {limit} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise TrustDataError(f"trust source {path} is not valid JSON: {e}") from e


def snapshot_from_document(doc: Any) -> TrustSnapshot:
    if not isinstance(doc, dict):
        raise TrustDataError("trust source must be a JSON object")
    keys = parse_issuers(doc.get("issuers", []))
    status_lists = {}
    for i, entry in enumerate(_list(doc.get("status_lists", []), "status_lists")):
        uri, status_list = parse_status_list(entry, f"status_lists[{i}]")
        if uri in status_lists:
            raise TrustDataError(f"status_lists[{i}]: duplicate uri {uri!r}")
        status_lists[uri] = status_list
    revoked = doc.get("revoked", {})
    if not isinstance(revoked, dict):
        raise TrustDataError("revoked must be an object")
    return TrustSnapshot(
        keys=keys,
        status_lists=status_lists,
        revoked_cti=HashSet.from_digests(_hex_digests(revoked.get("cti_sha256", []), "cti")),
        revoked_licences=HashSet.from_digests(
            _hex_digests(revoked.get("licence_sha256", []), "licence")
        ),
        revoked_mdoc_ds=HashSet.from_digests(
            _hex_digests(revoked.get("mdoc_ds_sha256", []), "mdoc_ds")
        ),
        policy=parse_policy(doc.get("policy", {})),
    )


def parse_issuers(issuers: Any) -> KeyRing:
    """The ``issuers`` list -> a ``KeyRing``; refuses it whole, naming the bad entry."""
    keys: dict[bytes, IssuerKey] = {}
    for i, issuer in enumerate(_list(issuers, "issuers")):
        where = f"issuers[{i}]"
        if not isinstance(issuer, dict):
            raise TrustDataError(f"{where} must be an object")
        iss = _text(issuer.get("iss"), f"{where}.iss")
        name = issuer.get("name", iss)
        if not isinstance(name, str):
            raise TrustDataError(f"{where}.name must be text")
        for j, entry in enumerate(_list(issuer.get("keys", []), f"{where}.keys")):
            key = _parse_key(entry, iss, name, f"{where}.keys[{j}]")
            if key.kid in keys:
                raise TrustDataError(f"{where}.keys[{j}]: duplicate kid {key.kid.hex()}")
            keys[key.kid] = key
    return KeyRing(keys.values())


def compute_kid(der: bytes) -> bytes:
    """First 8 bytes of SHA-256 over SubjectPublicKeyInfo or certificate DER (spec LC1 s.4)."""
    return hashlib.sha256(der).digest()[:8]


def public_key_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _parse_key(entry: Any, iss: str, name: str, where: str) -> IssuerKey:
    if not isinstance(entry, dict):
        raise TrustDataError(f"{where} must be an object")
    kid_hex = _text(entry.get("kid"), f"{where}.kid")
    where = f"{where} (kid {kid_hex})"
    if "iaca" in entry:  # an mdoc root (spec mdl-reader s.2): its own checks
        from appliance.trust.iaca import parse_iaca_key

        return parse_iaca_key(entry, iss, name, where, kid_hex)
    alg = entry.get("alg")
    if alg not in KEY_ALGS:
        raise TrustDataError(f"{where}: alg must be one of {KEY_ALGS}")
    certificate = None
    public_key: PublicKeyTypes
    if "certificate" in entry:
        from cryptography import x509  # only certificate keys pay for the x509 module

        try:
            der = base64.b64decode(
                _text(entry["certificate"], f"{where}.certificate"), validate=True
            )
            certificate = x509.load_der_x509_certificate(der)
            public_key = certificate.public_key()
        except (binascii.Error, ValueError, UnsupportedAlgorithm) as e:
            raise TrustDataError(f"{where}: certificate is not base64 DER X.509: {e}") from e
        kid = compute_kid(der)
    elif "jwk" in entry:
        public_key, kid = jwk_public_key(entry["jwk"], f"{where}.jwk")
    else:
        pem = _text(entry.get("public_key"), f"{where}.public_key")
        try:
            public_key = serialization.load_pem_public_key(pem.encode())
        except (ValueError, UnsupportedAlgorithm) as e:
            raise TrustDataError(f"{where}: public_key is not a PEM public key") from e
        kid = compute_kid(public_key_der(public_key))
    # A JWK's kid is its RFC 7638 thumbprint in base64url (SMART Health Cards), else hex.
    computed = _b64url(kid) if "jwk" in entry else kid.hex()
    if computed != kid_hex:
        raise TrustDataError(f"{where}: kid does not match the key (computed {computed})")
    expected_type = {
        "ES256": ec.EllipticCurvePublicKey,
        "EdDSA": ed25519.Ed25519PublicKey,
        "PS256": rsa.RSAPublicKey,
    }[alg]
    if not isinstance(public_key, expected_type):
        raise TrustDataError(f"{where}: key type does not fit alg {alg}")
    if (
        alg == "ES256"
        and isinstance(public_key, ec.EllipticCurvePublicKey)
        and public_key.curve.name != "secp256r1"
    ):
        raise TrustDataError(f"{where}: ES256 needs a P-256 key")
    status = entry.get("status", "active")
    if status not in ("active", "revoked"):
        raise TrustDataError(f"{where}: status must be 'active' or 'revoked'")
    types = entry.get("types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise TrustDataError(f"{where}: types must be a list of text")
    profiles = entry_profiles(entry, where)
    # A JWK carries no validity: unbounded unless the trust source bounds it (x5c is ignored).
    not_before = _instant(
        entry.get("not_before"),
        f"{where}.not_before",
        certificate.not_valid_before_utc
        if certificate
        else _JWK_NOT_BEFORE
        if "jwk" in entry
        else None,
    )
    not_after = _instant(
        entry.get("not_after"),
        f"{where}.not_after",
        certificate.not_valid_after_utc
        if certificate
        else _JWK_NOT_AFTER
        if "jwk" in entry
        else None,
    )
    return IssuerKey(
        kid=kid,
        iss=iss,
        issuer_name=name,
        alg=alg,
        public_key=public_key,
        not_before=not_before,
        not_after=not_after,
        revoked=status == "revoked",
        types=frozenset(types),
        profiles=profiles,
        certificate=certificate,
    )


def entry_profiles(entry: dict[str, Any], where: str = "key") -> frozenset[str]:
    """``profiles`` of a key entry, else the default of its form (spec LC1 s.4)."""
    form = (
        "iaca"
        if "iaca" in entry
        else "certificate"
        if "certificate" in entry
        else "jwk"
        if "jwk" in entry
        else "public_key"
    )
    if "profiles" not in entry:
        return DEFAULT_PROFILES[form]
    raw = entry["profiles"]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        raise TrustDataError(f"{where}: profiles must be a non-empty list of {KEY_PROFILES}")
    for name in raw:
        if name not in KEY_PROFILES:
            hint = " (an LP1 licence uses the LC1 keys)" if name == "LP1" else ""
            raise TrustDataError(
                f"{where}: unknown profile {name!r}, expected one of {KEY_PROFILES}{hint}"
            )
    if ("MDOC" in raw) != (form == "iaca") or (form == "iaca" and len(set(raw)) != 1):
        raise TrustDataError(
            f"{where}: profile MDOC belongs to iaca keys, and iaca keys "
            "to MDOC alone (spec mdl-reader s.2)"
        )
    return frozenset(raw)


_JWK_NOT_BEFORE = datetime(1970, 1, 1, tzinfo=UTC)
_JWK_NOT_AFTER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def jwk_public_key(jwk: Any, where: str) -> tuple[ec.EllipticCurvePublicKey, bytes]:
    """A public EC P-256 JWK -> (public key, RFC 7638 SHA-256 thumbprint, 32 bytes)."""
    if not isinstance(jwk, dict):
        raise TrustDataError(f"{where} must be a JSON Web Key object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise TrustDataError(f"{where}: only EC P-256 keys are supported")
    if "d" in jwk:
        raise TrustDataError(f"{where}: holds a private key ('d'); give the public key only")
    if jwk.get("alg", "ES256") != "ES256" or jwk.get("use", "sig") != "sig":
        raise TrustDataError(f"{where}: alg must be ES256 and use 'sig'")
    try:
        x, y = (_unb64url(_text(jwk.get(c), f"{where}.{c}")) for c in ("x", "y"))
        if len(x) != 32 or len(y) != 32:
            raise ValueError("coordinates are not 32 bytes")
        public_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except (binascii.Error, ValueError) as e:
        raise TrustDataError(f"{where}: not a valid P-256 point: {e}") from e
    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}
    thumbprint = hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    if "kid" in jwk and jwk["kid"] != _b64url(thumbprint):
        raise TrustDataError(f"{where}.kid is not the key's thumbprint")
    return public_key, thumbprint


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    if "=" in text:
        raise ValueError("base64url must not be padded")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_status_list(entry: Any, where: str) -> tuple[str, StatusList]:
    if not isinstance(entry, dict):
        raise TrustDataError(f"{where} must be an object")
    uri = _text(entry.get("uri"), f"{where}.uri")
    bits = entry.get("bits")
    if bits not in (1, 2, 4, 8):
        raise TrustDataError(f"{where} ({uri}): bits must be 1, 2, 4 or 8")
    lst = _text(entry.get("lst"), f"{where}.lst")
    try:
        compressed = base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4))
        inflater = zlib.decompressobj()
        data = inflater.decompress(compressed, MAX_STATUS_LIST_BYTES + 1)
    except (binascii.Error, ValueError, zlib.error) as e:
        raise TrustDataError(f"{where} ({uri}): lst is not base64url of zlib bytes") from e
    if len(data) > MAX_STATUS_LIST_BYTES or not inflater.eof:
        raise TrustDataError(
            f"{where} ({uri}): lst is truncated or above {MAX_STATUS_LIST_BYTES} bytes"
        )
    return uri, StatusList(data, bits)


def _hex_digests(values: Any, name: str) -> list[bytes]:
    out = []
    for i, v in enumerate(_list(values, f"revoked.{name}_sha256")):
        try:
            digest = bytes.fromhex(v) if isinstance(v, str) else b""
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise TrustDataError(f"revoked.{name}_sha256[{i}] is not a 64-digit hex SHA-256")
        out.append(digest)
    return out


def _instant(value: Any, where: str, default: datetime | None) -> float:
    if value is None:
        if default is not None:
            return default.timestamp()
        raise TrustDataError(f"{where} is required")
    try:
        return parse_instant(value)
    except ValueError as e:
        raise TrustDataError(f"{where}: {e}") from e


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TrustDataError(f"{where} must be a list")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TrustDataError(f"{where} must be non-empty text")
    return value
