"""The document signer (DS) certificate under an IACA root (spec mdl-reader s.4 step 1.2-1.3).

Trust comes only from the ``iaca`` keys of the trust data: the IACA is the one whose subject
is the DS certificate's issuer *and* whose key verifies the DS certificate's signature
(x5chain certificates after the DS are never looked at). The DS profile is 18013-5 Annex B:
not a CA, keyUsage digitalSignature, EKU 1.0.18013.5.1.2, country (and state where the
IACA has one) equal to the IACA's. CRL distribution points are ignored (offline).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from appliance.core.credential.mdoc.response import malformed

if TYPE_CHECKING:
    from appliance.core.key_ring import IssuerKey

MDL_DS_EKU = ObjectIdentifier("1.0.18013.5.1.2")
_STATE = NameOID.STATE_OR_PROVINCE_NAME
_E = TypeVar("_E", bound=x509.ExtensionType)


class DsCertificate(NamedTuple):
    """A DS certificate with what the checks read, read once (see ``load_ds_certificate``)."""

    certificate: x509.Certificate
    issuer: bytes  # the issuer Name, DER
    public_key: Any  # None: a key type cryptography cannot load (UNSUPPORTED_ALGORITHM)
    hash_algorithm: Any  # ECDSA with the IACA's signature hash; None: not one it knows
    not_before: float
    not_after: float
    fingerprint: bytes  # SHA-256 of the DER: what revoked.mdoc_ds_sha256 lists
    tbs: bytes  # the signed part and the IACA's signature over it (read once: each read
    signature: bytes  # of these builds new bytes in cryptography)
    profile_ok: bool  # the DS's own part of the Annex B profile (not a CA, keyUsage, EKU)
    country: tuple[str, ...]  # subject countryName values, sorted: compared with the IACA's
    state: tuple[str, ...]  # stateOrProvinceName, likewise


class Root(NamedTuple):
    """An ``iaca`` key with what the DS checks read from its certificate (read once per
    trust snapshot, see ``find_iaca``)."""

    key: IssuerKey
    country: tuple[str, ...]
    state: tuple[str, ...]


@lru_cache(maxsize=64)
def load_ds_certificate(der: bytes) -> DsCertificate:
    """The DS certificate (DER); ``Rejection(MDOC_MALFORMED)`` if it does not parse.

    cryptography parses names, dates and extensions lazily, and hostile DER makes those
    reads raise more than ``ValueError`` (``KeyError`` for an unknown string type,
    ``InvalidVersion``, ...): every part the checks read is read here once, so any such
    failure is this input's MDOC_MALFORMED, never an exception later. A pure function of
    the bytes, so it is memoised (a bounded LRU keyed by the DER): one DS signs many
    holders' mdocs. Only what the bytes alone decide is kept; the checks against the trust
    data (the IACA's signature, revocation) and the clock run on every response.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
        issuer = certificate.issuer.public_bytes()
        subject = certificate.subject
        subject.public_bytes()
        not_before = certificate.not_valid_before_utc.timestamp()
        not_after = certificate.not_valid_after_utc.timestamp()
        extensions = certificate.extensions
        country, state = _names(subject, NameOID.COUNTRY_NAME), _names(subject, _STATE)
    except Exception as e:  # foreign parser on hostile bytes: see above
        raise malformed(f"DS certificate is not readable DER X.509: {type(e).__name__}") from e
    if not _canonical(certificate, der):
        raise malformed("DS certificate is not in DER")
    try:
        public_key: Any = certificate.public_key()
    except UnsupportedAlgorithm:
        public_key = None
    except Exception as e:  # a key cryptography cannot read at all
        raise malformed(f"DS certificate key: {type(e).__name__}") from e
    try:
        hash_algorithm: Any = certificate.signature_hash_algorithm
    except Exception:  # noqa: BLE001 - an algorithm it does not know: no IACA will verify it
        hash_algorithm = None
    return DsCertificate(
        certificate,
        issuer,
        public_key,
        None if hash_algorithm is None else ec.ECDSA(hash_algorithm),
        not_before,
        not_after,
        hashlib.sha256(der).digest(),
        certificate.tbs_certificate_bytes,
        certificate.signature,
        _own_profile_ok(extensions),
        country,
        state,
    )


# AlgorithmIdentifier DER of ecdsa-with-SHA256/384/512 (RFC 5758: no parameters), the
# only algorithms an IACA on P-256/384/521 signs with.
_ECDSA_ALGORITHMS = tuple(bytes.fromhex(f"300a06082a8648ce3d0403{n:02x}") for n in (2, 3, 4))


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def _canonical(certificate: x509.Certificate, der: bytes) -> bool:
    """Whether ``der`` is the one DER spelling of the signed certificate. The parser also
    takes other spellings of the unsigned outer parts (a signature BIT STRING with unused
    bits, say) whose SHA-256 differs, which would step around ``revoked.mdoc_ds_sha256``
    (tests/security/test_sec_mdoc_ds_revocation.py)."""
    signature = certificate.signature
    tail = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    for algorithm in _ECDSA_ALGORITHMS:
        body = certificate.tbs_certificate_bytes + algorithm + tail
        if der == b"\x30" + _der_length(len(body)) + body:
            return True
    return False


def find_iaca(ds: DsCertificate, roots: Mapping[bytes, IssuerKey]) -> Root | None:
    """The ``iaca`` key whose subject is the DS issuer and whose key signed the DS; None.
    Keys with that subject are tried in the trust data's order."""
    if ds.hash_algorithm is None:
        return None
    for root in _by_subject(roots).get(ds.issuer, ()):
        try:
            root.key.public_key.verify(ds.signature, ds.tbs, ds.hash_algorithm)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return root
    return None


# The last few ``iaca`` key maps and their subject index. Holding the maps keeps them alive,
# so an identity match is the same snapshot's map (a KeyRing never changes its maps); a new
# trust snapshot brings new maps and gets its own index.
_INDEXES: tuple[tuple[Mapping[bytes, IssuerKey], dict[bytes, tuple[Root, ...]]], ...] = ()
_MAX_INDEXES = 4


def _by_subject(roots: Mapping[bytes, IssuerKey]) -> dict[bytes, tuple[Root, ...]]:
    """The keys of ``roots`` with an EC key and a certificate, by subject Name DER."""
    global _INDEXES
    for held, index in _INDEXES:
        if held is roots:
            return index
    found: dict[bytes, list[Root]] = {}
    for key in roots.values():
        root = key.certificate
        if root is None or not isinstance(key.public_key, ec.EllipticCurvePublicKey):
            continue
        subject = root.subject
        found.setdefault(subject.public_bytes(), []).append(
            Root(key, _names(subject, NameOID.COUNTRY_NAME), _names(subject, _STATE))
        )
    index = {name: tuple(keys) for name, keys in found.items()}
    _INDEXES = ((roots, index), *_INDEXES[: _MAX_INDEXES - 1])
    return index


def ds_profile_ok(ds: DsCertificate, root: Root) -> bool:
    """18013-5 Annex B DS profile, checked against its IACA: the DS's own part (read with
    the certificate), then countryName equal to the IACA's, and stateOrProvinceName where
    the IACA has one."""
    return (
        ds.profile_ok and ds.country == root.country and (not root.state or ds.state == root.state)
    )


def _own_profile_ok(extensions: x509.Extensions) -> bool:
    """Not a CA, keyUsage digitalSignature without keyCertSign, the mDL DS EKU; never
    raises on a bad extension."""
    try:
        constraints = _extension(extensions, x509.BasicConstraints)
        if constraints is not None and constraints.ca:
            return False
        usage = _extension(extensions, x509.KeyUsage)
        if usage is None or not usage.digital_signature or usage.key_cert_sign:
            return False
        ekus = _extension(extensions, x509.ExtendedKeyUsage)
        return ekus is not None and MDL_DS_EKU in ekus
    except Exception:  # noqa: BLE001 - a hostile extension cryptography cannot read: not the profile
        return False


def _extension(extensions: x509.Extensions, kind: type[_E]) -> _E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _names(name: x509.Name, oid: ObjectIdentifier) -> tuple[str, ...]:
    return tuple(sorted(str(attr.value) for attr in name.get_attributes_for_oid(oid)))
