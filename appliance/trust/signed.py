"""What makes an installed trust version genuine: the TUF metadata sync verified, kept with it.

Sync stores, in ``vNNNNNNNN/signed/``, the exact metadata it accepted (``root_history/
N.root.json`` for every root version, ``timestamp.json``, ``snapshot.json``,
``targets.json``) and the signed ``manifest.json`` target. The kiosk checks them here
with ``tuf.api.metadata`` only (no network, no ngclient, no expiry: staleness is the
policy's job): each root signed by its predecessor and by itself, starting at the pinned
root; timestamp, snapshot and targets signed by the newest root and consistent with one
another; then every file against the SHA-256 and length that targets signs. A directory
written by anyone without the authority's keys, with whatever manifest, fails here.

The layout of a version (which local file holds which signed target) is derived from the
signed manifest by ``wire_layout``, the one function sync installs by and the kiosk loads by.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from appliance.core.errors import TrustDataError
from appliance.trust.revocation import (
    CHUNK_RECORDS,
    HASH_PREFIX_BYTES,
    INDEX_BITS,
    INDEX_BYTES,
    read_full,
)
from appliance.trust.source import MAX_STATUS_LIST_BYTES

SIGNED = "signed"
ROOT_HISTORY = "root_history"
WIRE_MANIFEST = "manifest.json"
ROLES = ("timestamp", "snapshot", "targets")
MAX_ISSUERS_BYTES = 16 * 1024 * 1024
HASH_SETS = ("cti_sha256", "licence_sha256", "mdoc_ds_sha256")
MAX_METADATA_BYTES = 16 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One signed target and the local file it becomes."""

    target: str  # TUF target path
    local: str  # file name inside the version directory
    kind: str  # "plain", "zlib" (kept as ``local + ".zz"``, inflated to ``local``) or "base"
    max_length: int  # inflated size for zlib; exact size of hash files
    exact: bool = False


@dataclass(frozen=True)
class SignedTargets:
    """The verified targets (path -> (length, sha256 hex)) and facts about the metadata."""

    files: dict[str, tuple[int, str]]
    root_version: int
    expires: float
    targets_version: int = 0  # TUF targets metadata version (the high-water mark keeps it)


def safe_name(value: Any, where: str) -> str:
    """A relative file name inside the version directory (no escaping it)."""
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        raise TrustDataError(f"manifest {where} is not a safe relative file name")
    return value


def _count(entry: Any) -> int:
    count = entry.get("count") if isinstance(entry, dict) else None
    if not isinstance(count, int) or count < 0:
        raise TrustDataError("manifest revoked entry has no valid count")
    return count


def wire_layout(wire: dict[str, Any]) -> tuple[list[Part], dict[str, Any]]:
    """Files of a version from its signed manifest, and the loader's layout of them."""
    parts = [
        Part(safe_name(wire.get("issuers"), "issuers"), "issuers.json", "plain", MAX_ISSUERS_BYTES)
    ]
    status_lists = []
    for i, entry in enumerate(wire.get("status_lists", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
            raise TrustDataError(f"manifest status_lists[{i}] is invalid")
        target = safe_name(entry.get("target"), f"status_lists[{i}].target")
        length = entry.get("length")
        if not isinstance(length, int) or not 0 <= length <= MAX_STATUS_LIST_BYTES:
            raise TrustDataError(f"manifest status_lists[{i}].length is invalid")
        local = "status/" + target.rpartition("/")[2].removesuffix(".zz")
        parts.append(Part(target, local, "zlib", length))
        status_lists.append({"uri": entry["uri"], "bits": entry.get("bits"), "file": local})
    revoked: dict[str, Any] = {}
    sets = wire.get("revoked", {})
    if not isinstance(sets, dict):
        raise TrustDataError("manifest revoked is invalid")
    for name in HASH_SETS:
        entry = sets.get(name) or {"base": None, "deltas": []}
        if not isinstance(entry, dict):
            raise TrustDataError(f"manifest revoked.{name} is invalid")
        base = entry.get("base")
        local_base = None
        if base is not None:
            local_base = safe_name(
                base.get("target") if isinstance(base, dict) else None, f"revoked.{name}.base"
            )
            parts.append(
                Part(local_base, local_base, "base", HASH_PREFIX_BYTES * _count(base), True)
            )
        deltas = []
        for d in entry.get("deltas", []):
            target = safe_name(
                d.get("target") if isinstance(d, dict) else None, f"revoked.{name}.deltas"
            )
            parts.append(Part(target, target, "plain", HASH_PREFIX_BYTES * _count(d), True))
            deltas.append(target)
        revoked[name] = {"base": local_base, "deltas": deltas}
    layout = {"issuers": "issuers.json", "status_lists": status_lists, "revoked": revoked}
    return parts, layout


# -- signatures ---------------------------------------------------------------------------


def _metadata(path: Path) -> Metadata[Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_METADATA_BYTES + 1)
    except OSError as e:
        raise TrustDataError(f"signed metadata {path.name} unreadable: {e.strerror or e}") from e
    if len(raw) > MAX_METADATA_BYTES:
        raise TrustDataError(f"signed metadata {path.name} is too large")
    try:
        return Metadata.from_bytes(raw)
    except Exception as e:  # tuf raises DeserializationError, ValueError, KeyError...
        raise TrustDataError(f"signed metadata {path.name} is malformed") from e


def _verify(delegator: Root, role: str, md: Metadata[Any], what: str) -> None:
    try:
        delegator.verify_delegate(role, md.signed_bytes, md.signatures)
    except (RepositoryError, ValueError, KeyError) as e:
        raise TrustDataError(f"{what} is not signed by the trusted {role} keys") from e


def verify_signed(signed_dir: Path, pinned_root: bytes | None) -> SignedTargets:
    """Check the metadata a version carries against the pinned root (``TrustDataError``).

    Without a pinned root (a configuration with no ``[sync] root``), the version's own first
    root is the anchor: the files are still checked against signed hashes, but a directory
    signed by someone else's root would pass; devices always pin their root.
    """
    history = signed_dir / ROOT_HISTORY
    roots: dict[int, Path] = {}
    for p in history.glob("*.root.json") if history.is_dir() else ():
        head = p.name.split(".")[0]
        if head.isdigit():
            roots[int(head)] = p
    if pinned_root is not None:
        try:
            trusted: Metadata[Root] = Metadata[Root].from_bytes(pinned_root)
        except Exception as e:
            raise TrustDataError("the pinned trust root is malformed") from e
    elif roots:
        trusted = _metadata(roots[min(roots)])
    else:
        raise TrustDataError("no signed metadata stored with this version")
    if not isinstance(trusted.signed, Root):
        raise TrustDataError("the pinned trust root is not root metadata")
    _verify(trusted.signed, Root.type, trusted, "root")
    while trusted.signed.version + 1 in roots:
        nxt = _metadata(roots[trusted.signed.version + 1])
        if not isinstance(nxt.signed, Root) or nxt.signed.version != trusted.signed.version + 1:
            raise TrustDataError("stored root history is inconsistent")
        _verify(trusted.signed, Root.type, nxt, f"root version {nxt.signed.version}")
        _verify(nxt.signed, Root.type, nxt, f"root version {nxt.signed.version}")
        trusted = nxt
    if roots and max(roots) > trusted.signed.version:
        raise TrustDataError("stored root history has a gap")
    root = trusted.signed
    ts = _metadata(signed_dir / "timestamp.json")
    snap = _metadata(signed_dir / "snapshot.json")
    targets = _metadata(signed_dir / "targets.json")
    for md, kind in ((ts, Timestamp), (snap, Snapshot), (targets, Targets)):
        if not isinstance(md.signed, kind):
            raise TrustDataError(f"stored {kind.type} metadata has the wrong type")
        _verify(root, kind.type, md, f"{kind.type} metadata")
    if ts.signed.snapshot_meta.version != snap.signed.version:
        raise TrustDataError("stored snapshot is not the one the timestamp signs")
    meta = snap.signed.meta.get("targets.json")
    if meta is None or meta.version != targets.signed.version:
        raise TrustDataError("stored targets are not the ones the snapshot signs")
    files = {}
    for path, info in targets.signed.targets.items():
        if "sha256" in info.hashes:
            files[path] = (info.length, info.hashes["sha256"])
    expires = min(md.signed.expires.timestamp() for md in (trusted, ts, snap, targets))
    return SignedTargets(files, root.version, expires, targets.signed.version)


# -- files --------------------------------------------------------------------------------


def file_sha256(path: Path) -> tuple[int, str]:
    """Length and SHA-256 of a file (hashlib releases the GIL while it reads big files)."""
    try:
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256")
            return f.tell(), digest.hexdigest()
    except OSError as e:
        raise TrustDataError(f"{path.name} unreadable: {e.strerror or e}") from e


def check_file(path: Path, signed: SignedTargets, target: str) -> None:
    """The file must be exactly the target the metadata signs."""
    want = signed.files.get(target)
    if want is None:
        raise TrustDataError(f"{target} is not a signed target")
    if file_sha256(path) != want:
        raise TrustDataError(f"{path.name} does not match its signed hash")


def read_signed_manifest(signed_dir: Path, signed: SignedTargets) -> dict[str, Any]:
    path = signed_dir / WIRE_MANIFEST
    check_file(path, signed, WIRE_MANIFEST)
    try:
        wire = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise TrustDataError("the signed manifest is unreadable") from e
    if (
        not isinstance(wire, dict)
        or wire.get("format") != 1
        or not isinstance(wire.get("version"), int)
    ):
        raise TrustDataError("the signed manifest is not a format-1 manifest")
    return wire


def inflate_pieces(fin: IO[bytes], length: int, what: str) -> Iterator[bytes]:
    """Inflate zlib data from ``fin`` in pieces of at most 1 MiB (memory stays bounded
    whatever the compression ratio); ``TrustDataError`` past ``length`` bytes or when the
    stream does not end exactly there."""
    inflater = zlib.decompressobj()
    seen = 0
    try:
        while chunk := fin.read(_CHUNK):
            data = chunk
            while True:
                out = inflater.decompress(data, min(_CHUNK, length + 1 - seen))
                seen += len(out)
                if seen > length:
                    raise TrustDataError(f"{what}: inflates past {length} bytes")
                if out:
                    yield out
                data = inflater.unconsumed_tail
                # A full piece may leave output pending inside zlib even with no input left.
                if not data and (len(out) < _CHUNK or inflater.eof):
                    break
    except zlib.error as e:
        raise TrustDataError(f"{what} does not inflate") from e
    if seen != length or not inflater.eof:
        raise TrustDataError(f"{what}: inflates to {seen}, not {length} bytes")


def check_inflated(wire: Path, inflated: Path, length: int) -> None:
    """``inflated`` must be exactly what ``wire`` (zlib, hash already checked) inflates to."""
    try:
        with wire.open("rb") as fin, inflated.open("rb") as fout:
            for out in inflate_pieces(fin, length, wire.name):
                if fout.read(len(out)) != out:
                    raise TrustDataError(f"{inflated.name} does not match its signed data")
            if fout.read(1):
                raise TrustDataError(f"{inflated.name} does not match its signed data")
    except OSError as e:
        raise TrustDataError(f"{inflated.name} unreadable: {e.strerror or e}") from e
    except TrustDataError as e:
        raise TrustDataError(f"{inflated.name} does not match its signed data ({e})") from e


def check_index(base: Path, index: Path, chunk_records: int = CHUNK_RECORDS) -> None:
    """The bucket index (built on the device) must be the one its signed, sorted base derives to.

    Value ``b`` is the count of records whose top 20 bits are below ``b``: the record just
    before it is below ``b`` and the one at it is not. The base is read in fixed-size
    chunks and only those records are looked at, so the check holds the 4 MiB index and
    one chunk, never the base (mapped, its pages would all count as resident: issue 14).
    """
    import numpy as np

    stored = _read_index(index)
    idx = np.frombuffer(stored, dtype="<u4")
    try:
        count, partial = divmod(base.stat().st_size, HASH_PREFIX_BYTES)
    except OSError as e:
        raise TrustDataError(f"{base.name} unreadable: {e.strerror or e}") from e
    if (
        partial
        or count >= 0xFFFFFFFF
        or idx[0] != 0
        or idx[-1] != count
        or np.any(idx[1:] < idx[:-1])
    ):
        raise TrustDataError("revoked-hash index does not match its base")
    at = idx[:-1]  # uint32: every position used below is >= the chunk's start
    buf = bytearray(max(1, chunk_records) * HASH_PREFIX_BYTES)
    start = 0
    try:
        with base.open("rb", buffering=0) as f:
            while start < count:
                got = read_full(f, memoryview(buf)) // HASH_PREFIX_BYTES
                if got == 0:
                    break
                recs = np.frombuffer(buf, dtype=np.uint8, count=got * HASH_PREFIX_BYTES)
                recs = recs.reshape(got, HASH_PREFIX_BYTES)
                _check_chunk(np, recs, at, start)
                start += got
    except OSError as e:
        raise TrustDataError(f"{base.name} unreadable: {e.strerror or e}") from e
    if start != count:
        raise TrustDataError("revoked-hash index does not match its base")


def _check_chunk(np: Any, recs: Any, at: Any, start: int) -> None:
    """Check the buckets whose first record, or the record before it, is in this chunk."""
    end = start + len(recs)

    def top(rows: Any) -> Any:
        r = recs[rows]
        return (
            (r[:, 0].astype(np.uint32) << 16)
            | (r[:, 1].astype(np.uint32) << 8)
            | r[:, 2].astype(np.uint32)
        ) >> (24 - INDEX_BITS)

    # Search with uint32 keys: mixed types would copy the 1M-entry index on every chunk.
    keys = np.array([start, end, start + 1, end + 1], dtype=np.uint32)
    lo, hi, lo1, hi1 = np.searchsorted(at, keys)
    first = np.arange(lo, hi, dtype=np.uint32)  # buckets starting at a record here
    lo, hi = lo1, hi1  # buckets whose previous record is here
    after = np.arange(lo, hi, dtype=np.uint32)
    if np.any(top(at[first] - start) < first) or np.any(top(at[after] - 1 - start) >= after):
        raise TrustDataError("revoked-hash index does not match its base")


def _read_index(index: Path) -> bytes:
    try:
        with index.open("rb") as f:
            stored = f.read(INDEX_BYTES + 1)
    except OSError as e:
        raise TrustDataError(f"{index.name} unreadable: {e.strerror or e}") from e
    if len(stored) != INDEX_BYTES:
        raise TrustDataError("revoked-hash index does not match its base")
    return stored
