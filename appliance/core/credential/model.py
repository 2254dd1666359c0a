"""Typed results of decoding a credential, shared by every profile and the verifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from appliance.core.credential.cose import Sign1
from appliance.core.reasons import Reason

if TYPE_CHECKING:
    from appliance.core.key_ring import IssuerKey
    from appliance.core.snapshot import Policy


@dataclass(frozen=True, slots=True)
class HolderKey:
    """The holder's key from claim 8 (``cnf``): alg name and the cryptography public key."""

    alg: str
    public_key: Any


class Credential(NamedTuple):
    """Claims and licence data, after the issuer's signature verified. Display text is hostile.

    A NamedTuple rather than a frozen dataclass: equally immutable, and built once per
    verification about 1 us faster (frozen dataclasses set each field through
    ``object.__setattr__``), which counts against the bare signature rate.
    """

    profile: str
    iss: str | None
    exp: float
    iat: float
    nbf: float | None
    cti: bytes | None
    typ: str
    no: str
    nm: str
    nml: str | None = None
    dob: str | None = None
    cls: tuple[str, ...] = ()
    vf: str | None = None
    vu: str | None = None
    ph: bytes | None = None
    ext: tuple[tuple[str, str], ...] = ()
    status_uri: str | None = None
    status_idx: int | None = None
    holder_key: HolderKey | None = None


# A holder-binding check (LP1): credential, now, policy -> a FAIL reason or None.
BindingCheck = Callable[[Credential, float, "Policy"], Reason | None]
# A profile's own key-usage rule (HC1: the DSC's extended key usage): key, credential -> allowed.
KeyUsageCheck = Callable[["IssuerKey", Credential], bool]


class Opened(NamedTuple):
    """A credential whose outer layers decoded: what the verifier needs to check it."""

    profile: str
    sign1: Sign1
    alg: int
    kid: bytes
    parse_claims: Callable[[bytes], Credential]
    binding: BindingCheck | None = None
    key_allows: KeyUsageCheck | None = None
