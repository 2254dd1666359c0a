"""The trust snapshot a verdict is decided with: issuer keys, revocation data, policy.

Pure data, immutable once built. The revocation structures are described by small
protocols so that the core never imports numpy or reads a file: ``appliance.trust``
builds the mmap-backed implementations, tests may pass a ``frozenset`` of digests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from appliance.core.key_ring import KeyRing

UNKNOWN_STATUS_CHOICES = ("fail", "unverifiable", "pass")
# Token Status List values (spec LC1 s.4).
VALID, REVOKED, SUSPENDED = 0, 1, 2


class RevokedHashes(Protocol):
    """A set of SHA-256 digests (a prefix match is enough): revoked ``cti`` or licences."""

    def __contains__(self, digest: bytes, /) -> bool: ...

    def __len__(self) -> int: ...


class StatusLookup(Protocol):
    """A Token Status List: the status of one index, ``None`` past the end."""

    def status(self, index: int) -> int | None: ...


def licence_digest(iss: str, typ: str, number: str) -> bytes:
    """SHA-256 that revokes every credential of one licence (spec LC1 s.4)."""
    return hashlib.sha256(f"{iss}\x1f{typ}\x1f{number}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Policy:
    max_age_hours: float = 72.0
    unknown_status: str = "unverifiable"
    clock_skew_s: int = 300
    presentation_window_s: int = 90
    require_presentation_types: frozenset[str] = frozenset()
    # Remote policy (spec LC1 s.4): applied only where a device identity exists.
    min_software_version: str | None = None  # PEP 440
    disabled_devices: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TrustSnapshot:
    keys: KeyRing  # look a kid up per format: ``keys.by_format[profile].get(kid)``
    status_lists: Mapping[str, StatusLookup] = field(default_factory=dict)
    revoked_cti: RevokedHashes = field(default_factory=frozenset)
    revoked_licences: RevokedHashes = field(default_factory=frozenset)
    # SHA-256 of withdrawn mdoc document signer certificates (spec mdl-reader s.2).
    revoked_mdoc_ds: RevokedHashes = field(default_factory=frozenset)
    policy: Policy = field(default_factory=Policy)
    # Publication time (epoch s) and version of synced data; None for a trust source file.
    published_at: float | None = None
    version: int | None = None
    expires_at: float | None = None

    def issuer_names(self) -> dict[str, str]:
        return {k.iss: k.issuer_name for k in self.keys}
