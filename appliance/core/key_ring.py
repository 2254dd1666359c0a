"""Issuer keys scoped to the credential formats they may sign (spec LC1 s.4 ``profiles``).

Each format resolves a kid among its own keys only, so a key trusted for one format
(an EU DCC document signer for HC1, say) verifies nothing in another: ``UNKNOWN_ISSUER``.
The maps are built once per snapshot; a lookup is two dict reads and allocates nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from appliance.core.credential.signature import verify_signature

if TYPE_CHECKING:
    from cryptography import x509

# Names a trust entry may list in ``profiles``.
KEY_PROFILES = ("LC1", "HC1", "SHC", "MDOC")
# Which key set each credential format resolves its kid in: LP1 carries an LC1 licence.
FORMAT_KEY_PROFILE: Mapping[str, str] = MappingProxyType(
    {"LC1": "LC1", "LP1": "LC1", "HC1": "HC1", "SHC": "SHC", "MDOC": "MDOC"}
)
# ``profiles`` absent: decided by the key's form in the trust entry.
DEFAULT_PROFILES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "public_key": frozenset({"LC1"}),
        "certificate": frozenset({"HC1"}),
        "jwk": frozenset({"SHC"}),
        "iaca": frozenset({"MDOC"}),  # an mdoc root; the only form that may list MDOC
    }
)


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One trusted issuer key: which formats it may sign, when, and whether revoked."""

    kid: bytes
    iss: str
    issuer_name: str
    alg: str
    public_key: Any
    not_before: float
    not_after: float
    revoked: bool
    types: frozenset[str]
    profiles: frozenset[str]  # credential formats this key may sign (spec LC1 s.4)
    certificate: x509.Certificate | None = None

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Check a COSE signature (raw r||s for ES256) over ``message``; never raises."""
        return verify_signature(self.alg, self.public_key, message, signature)


_NO_KEYS: Mapping[bytes, IssuerKey] = MappingProxyType({})


class KeyRing:
    """All trusted issuer keys, with one kid-to-key map per credential format.

    Deliberately not a kid mapping itself: a lookup must name its format, which is what
    keeps one format's keys out of another's verifications.
    """

    __slots__ = ("_keys", "by_format")

    def __init__(self, keys: Iterable[IssuerKey] = ()) -> None:
        self._keys: tuple[IssuerKey, ...] = tuple(keys)
        scoped: dict[str, dict[bytes, IssuerKey]] = {p: {} for p in KEY_PROFILES}
        for key in self._keys:
            for profile in key.profiles:
                scoped[profile][key.kid] = key
        # The verifier reads this directly on its hot path: format name -> kid -> key.
        # Plain dicts (read-only by type, never mutated after this) for the fastest .get().
        self.by_format: Mapping[str, Mapping[bytes, IssuerKey]] = {
            fmt: scoped[profile] for fmt, profile in FORMAT_KEY_PROFILE.items()
        }

    def lookup(self, fmt: str, kid: bytes) -> IssuerKey | None:
        """The key that may verify ``fmt`` credentials under ``kid``, or None."""
        return self.by_format.get(fmt, _NO_KEYS).get(kid)

    def __iter__(self) -> Iterator[IssuerKey]:
        """Every key once, in trust-data order (for listings, never for verification)."""
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} keys)"
