"""Authoring a trust source file (spec LC1 s.4) without editing JSON by hand.

Every change is validated by loading the result with the verifier's own loader before
it is written, so a file this module writes is always one the appliance accepts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

from appliance.core.errors import TrustDataError
from appliance.core.snapshot import TrustSnapshot, licence_digest
from appliance.platform.files import write_atomic
from appliance.trust.source import entry_profiles, load_trust_source, snapshot_from_document


def empty_document() -> dict[str, Any]:
    return {
        "issuers": [],
        "status_lists": [],
        "revoked": {"cti_sha256": [], "licence_sha256": []},
        "policy": {"max_age_hours": 72, "unknown_status": "unverifiable", "clock_skew_s": 300},
    }


def iaca_entry(der: bytes, doctypes: list[str]) -> dict[str, Any]:
    """An IACA certificate (DER) as the trust data's ``iaca`` key (spec mdl-reader s.2)."""
    return {
        "kid": hashlib.sha256(der).digest()[:8].hex(),
        "iaca": base64.b64encode(der).decode(),
        "doctypes": doctypes,
        "status": "active",
    }


class TrustSourceEditor:
    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = copy.deepcopy(doc) if doc is not None else empty_document()
        self.doc.setdefault("issuers", [])
        self.doc.setdefault("status_lists", [])
        revoked = self.doc.setdefault("revoked", {})
        revoked.setdefault("cti_sha256", [])
        revoked.setdefault("licence_sha256", [])
        self.doc.setdefault("policy", {})

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> TrustSourceEditor:
        """The file's editor; a missing file is refused unless ``create`` (a misspelt name
        must not start a new trust source that is then published without the change)."""
        if not path.exists():
            if not create:
                raise TrustDataError(
                    f"{path}: no such trust source (give --create to start a new one)"
                )
            return cls()
        load_trust_source(path)  # refuse to extend a file the appliance would refuse
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def has_issuer(self, iss: str) -> bool:
        return any(i.get("iss") == iss for i in self.doc["issuers"] if isinstance(i, dict))

    def add_key(
        self,
        iss: str,
        key_entry: dict[str, Any],
        issuer_name: str | None = None,
        profiles: list[str] | None = None,
    ) -> None:
        """Add or replace a key; ``profiles`` (spec LC1 s.4) overrides the entry's own."""
        if profiles is not None:
            key_entry = {**key_entry, "profiles": list(profiles)}
        issuer = next((i for i in self.doc["issuers"] if i.get("iss") == iss), None)
        if issuer is None:
            issuer = {"iss": iss, "name": issuer_name or iss, "keys": []}
            self.doc["issuers"].append(issuer)
        elif issuer_name:
            issuer["name"] = issuer_name
        issuer["keys"] = [k for k in issuer["keys"] if k.get("kid") != key_entry["kid"]]
        issuer["keys"].append(key_entry)

    def add_iaca(
        self, iss: str, der: bytes, doctypes: list[str], issuer_name: str | None = None
    ) -> str:
        """Add or replace an IACA under ``iss``, taking it from any other issuer first (a kid
        appears once in a trust source); returns its kid."""
        entry = iaca_entry(der, doctypes)
        for issuer in self.doc["issuers"]:
            issuer["keys"] = [k for k in issuer.get("keys", []) if k.get("kid") != entry["kid"]]
        self.add_key(iss, entry, issuer_name)
        return str(entry["kid"])

    def set_key_status(self, kid: str, status: str) -> None:
        self.key_entry(kid)["status"] = status

    def key_entry(self, kid: str) -> dict[str, Any]:
        for issuer in self.doc["issuers"]:
            for key in issuer.get("keys", []):
                if isinstance(key, dict) and key.get("kid") == kid:
                    return key
        raise TrustDataError(f"no key with kid {kid} in the trust source")

    def describe_key(self, kid: str) -> str:
        """``KID STATUS PROFILES``: what the key may sign now, defaults resolved."""
        entry = self.key_entry(kid)
        profiles = ",".join(sorted(entry_profiles(entry, f"key {kid}")))
        return f"{kid} {entry.get('status', 'active')} {profiles}"

    def revoke_cti(self, cti: bytes) -> None:
        _add_unique(self.doc["revoked"]["cti_sha256"], hashlib.sha256(cti).hexdigest())

    def revoke_licence(self, iss: str, typ: str, number: str) -> None:
        _add_unique(self.doc["revoked"]["licence_sha256"], licence_digest(iss, typ, number).hex())

    def revoke_mdoc_ds(self, certificate_der: bytes) -> str:
        """List a document signer certificate in ``revoked.mdoc_ds_sha256`` (spec
        mdl-reader s.2); returns the digest (hex)."""
        digest = hashlib.sha256(certificate_der).hexdigest()
        _add_unique(self.doc["revoked"].setdefault("mdoc_ds_sha256", []), digest)
        return digest

    def set_status(self, uri: str, index: int, value: int, bits: int = 1) -> None:
        """Set one status-list entry, creating the list (``bits`` per entry) if new."""
        entry = next((s for s in self.doc["status_lists"] if s.get("uri") == uri), None)
        if entry is None:
            entry = {"uri": uri, "bits": bits, "lst": _encode_lst(b"")}
            self.doc["status_lists"].append(entry)
        bits = entry["bits"]
        if not 0 <= value < (1 << bits):
            raise TrustDataError(f"status value {value} does not fit {bits} bits")
        data = bytearray(_decode_lst(entry["lst"]))
        byte, offset = (index * bits) // 8, (index * bits) % 8
        if byte >= len(data):
            data.extend(bytes(byte + 1 - len(data)))
        mask = ((1 << bits) - 1) << offset
        data[byte] = (data[byte] & ~mask) | (value << offset)
        entry["lst"] = _encode_lst(bytes(data))

    def set_policy(self, **values: Any) -> None:
        self.doc["policy"].update({k: v for k, v in values.items() if v is not None})

    def snapshot(self) -> TrustSnapshot:
        return snapshot_from_document(self.doc)

    def save(self, path: Path) -> None:
        self.snapshot()  # validate before writing
        text = json.dumps(self.doc, indent=1, ensure_ascii=False) + "\n"
        write_atomic(path, text.encode(), make_parents=True)


def _add_unique(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _encode_lst(data: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(data, 9)).rstrip(b"=").decode()


def _decode_lst(lst: str) -> bytes:
    return zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
