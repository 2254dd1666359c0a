"""A trust source split into the parts the publisher signs as separate TUF targets.

The source is validated here exactly as devices validate what they receive, so a
publisher never signs what every device would refuse (docs/adr/0006).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.core.errors import TrustDataError
from appliance.trust.policy import parse_policy
from appliance.trust.revocation import HASH_PREFIX_BYTES
from appliance.trust.source import (
    entry_profiles,
    parse_issuers,
    parse_status_list,
    read_document,
)

HASH_SETS = ("cti_sha256", "licence_sha256", "mdoc_ds_sha256")
MAX_SOURCE_BYTES = 2 * 1024 * 1024 * 1024
DIGEST = np.dtype(f"S{HASH_PREFIX_BYTES}")


@dataclass
class TrustParts:
    """A trust source split into the parts published as separate targets."""

    issuers: list[Any] = field(default_factory=list)
    status_lists: list[tuple[str, int, bytes]] = field(default_factory=list)  # uri, bits, raw
    revoked: dict[str, np.ndarray] = field(default_factory=dict)  # set -> sorted unique S16
    policy: dict[str, Any] = field(default_factory=dict)


def digests_array(digests: Any) -> np.ndarray:
    """Sorted unique 16-byte prefixes from digests (bytes each) or an (n, >=16) uint8 array."""
    if isinstance(digests, np.ndarray) and digests.dtype == DIGEST:
        return np.unique(digests)
    if isinstance(digests, np.ndarray):
        arr = np.ascontiguousarray(digests[:, :HASH_PREFIX_BYTES], dtype=np.uint8)
        return np.unique(arr.view(DIGEST).reshape(-1))
    raw = b"".join(bytes(d)[:HASH_PREFIX_BYTES] for d in digests)
    return np.unique(np.frombuffer(raw, dtype=DIGEST))


def parts_from_document(doc: Any) -> TrustParts:
    """Validate a trust source document (spec LC1 s.4) and split it into parts."""
    if not isinstance(doc, dict):
        raise TrustDataError("trust source must be a JSON object")
    issuers = doc.get("issuers", [])
    parse_issuers(issuers)  # refuse what devices would refuse
    policy = doc.get("policy", {})
    parse_policy(policy)
    lists = []
    seen = set()
    for i, entry in enumerate(doc.get("status_lists", [])):
        uri, status_list = parse_status_list(entry, f"status_lists[{i}]")
        if uri in seen:
            raise TrustDataError(f"status_lists[{i}]: duplicate uri {uri!r}")
        seen.add(uri)
        lists.append((uri, status_list.bits, status_list.to_bytes()))
    revoked = doc.get("revoked", {})
    if not isinstance(revoked, dict):
        raise TrustDataError("revoked must be an object")
    sets = {}
    for name in HASH_SETS:
        values = revoked.get(name, [])
        if not isinstance(values, list) or not all(
            isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]{64}", v) for v in values
        ):
            raise TrustDataError(f"revoked.{name} must be a list of 64-digit hex SHA-256")
        raw = bytes.fromhex("".join(values))
        sets[name] = digests_array(np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32))
    return TrustParts(
        issuers=_explicit_profiles(issuers), status_lists=lists, revoked=sets, policy=policy
    )


def _explicit_profiles(issuers: list[Any]) -> list[Any]:
    """A copy of validated ``issuers`` where every key names its ``profiles`` (spec LC1 s.4).

    What a device trusts a key for then never rests on the key-form default.
    """
    return [
        {
            **issuer,
            "keys": [
                {**key, "profiles": sorted(entry_profiles(key))} for key in issuer.get("keys", [])
            ],
        }
        for issuer in issuers
    ]


def load_source(path: Path) -> TrustParts:
    """A trust source file, validated as devices would (``TrustDataError`` names the entry)."""
    return parts_from_document(read_document(path, MAX_SOURCE_BYTES))


def status_id(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:32]
