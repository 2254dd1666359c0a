"""The device's sync client: fetch with python-tuf, verify, install atomically, report.

One ``sync_once``:

1. takes a lock (one installer at a time) and notes the attempt;
2. refreshes TUF metadata with ``ngclient`` from the pinned root (``bootstrap``), with
   expiry judged at max(system clock, trusted-time floor) so a clock set back cannot
   revive expired metadata (freeze), and every metadata write fsynced;
3. reads the signed ``manifest.json`` target; when it is the installed one, done;
4. refuses a lower version than the installed one unless the root was rotated since
   (recovery from a compromised online key);
5. stages a new version directory: unchanged parts are hard-linked from the current
   version, changed parts downloaded (total deadline, size cap from signed metadata,
   hash checked), status lists inflated with a cap, hash bases indexed;
6. loads the staged version with the verifier's own loader, fsyncs, switches
   ``trust/current`` by rename, prunes old versions;
7. marks the trusted-time floor when the system clock is NTP-synchronised;
8. writes ``state_dir/sync_state.json`` for the status page and metrics.

Any failure raises ``SyncError`` with one line; the installed data is untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tuf.api import exceptions
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater, UpdaterConfig

from appliance.clock import BUILD_TIME, FileTimeFloor, system_clock_synchronised, time_floor
from appliance.errors import SyncError, TrustDataError
from appliance.trust import MAX_STATUS_LIST_BYTES, parse_issuers, parse_policy
from appliance.trust_store import (
    StagedVersion,
    current_version_dir,
    fsync_dir,
    prune_versions,
    read_manifest,
)
from appliance_sync.fetcher import DeadlineFetcher

log = logging.getLogger(__name__)

STATE_FILE = "sync_state.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_ISSUERS_BYTES = 16 * 1024 * 1024
MAX_TARGET_BYTES = 1024 * 1024 * 1024
HASH_SETS = ("cti_sha256", "licence_sha256")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(iso: Any) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _DurableUpdater(Updater):
    """ngclient's Updater, but metadata it writes is fsynced (file and directory)."""

    def _persist_file(self, filename: str, data: bytes) -> None:
        directory = Path(filename).parent
        fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(filename)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(directory)


@dataclass(frozen=True)
class SyncResult:
    version: int
    updated: bool
    bytes_fetched: int
    published: float | None
    expires: float | None

    def describe(self) -> str:
        what = "installed" if self.updated else "unchanged"
        return (f"trust data version {self.version} {what}, published "
                f"{_iso(self.published)}, {self.bytes_fetched} bytes fetched")


@dataclass(frozen=True)
class _Part:
    target: str  # TUF target path
    local: str  # file name inside the version directory
    kind: str  # "plain", "zlib" or "base"
    max_length: int  # decompressed size for zlib; exact size of hash files
    exact: bool = False


class SyncClient:
    def __init__(
        self,
        *,
        state_dir: Path,
        url: str,
        root: Path,
        trust_dir: Path | None = None,
        gap_timeout_s: float = 30.0,
        deadline_s: float = 300.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        keep_versions: int = 2,
        wall: Callable[[], float] = time.time,
        build_time: float = BUILD_TIME,
        clock_synchronised: Callable[[], bool] = system_clock_synchronised,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url:
            raise SyncError("no sync URL configured ([sync] url)")
        self.state_dir = Path(state_dir)
        self.trust_dir = Path(trust_dir) if trust_dir is not None else self.state_dir / "trust"
        self.metadata_dir = self.state_dir / "tuf"
        self.url = url.rstrip("/")
        self.root = Path(root)
        self.keep_versions = keep_versions
        self._wall = wall
        self._build_time = build_time
        self._clock_synchronised = clock_synchronised
        self._fetcher_args = {"gap_timeout_s": gap_timeout_s, "deadline_s": deadline_s,
                              "retries": retries, "backoff_s": backoff_s, "sleep": sleep}
        self.floor = FileTimeFloor(self.state_dir / "clock.json")

    # -- public ---------------------------------------------------------------------------

    def sync_once(self) -> SyncResult:
        """Bring the device to the newest valid data; ``SyncError`` leaves the old in place."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            state = read_sync_state(self.state_dir)
            state["last_attempt"] = _iso(self._wall())
            fetcher = DeadlineFetcher(tmp_dir=str(self.state_dir), **self._fetcher_args)
            try:
                result = self._sync(fetcher)
            except SyncError as e:
                state.update(last_error=str(e), last_error_at=state["last_attempt"],
                             bytes_fetched=fetcher.bytes_fetched)
                self._record(state)
                raise
            state.update(last_success=state["last_attempt"], last_error=None,
                         bytes_fetched=result.bytes_fetched, updated=result.updated,
                         expires=_iso(result.expires))
            state["bytes_fetched_total"] = state.get("bytes_fetched_total", 0) \
                + result.bytes_fetched
            self._record(state)
            return result

    # -- the steps ------------------------------------------------------------------------

    def _sync(self, fetcher: DeadlineFetcher) -> SyncResult:
        try:
            bootstrap = self.root.read_bytes()
        except OSError as e:
            raise SyncError(f"cannot read the pinned root {self.root}: {e.strerror or e}") from e
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        current = current_version_dir(self.trust_dir)
        installed = self._installed_manifest(current)
        reference = self._reference_time(installed)
        try:
            updater = _DurableUpdater(
                str(self.metadata_dir), f"{self.url}/metadata/",
                target_base_url=f"{self.url}/targets/", fetcher=fetcher,
                config=UpdaterConfig(max_root_rotations=64), bootstrap=bootstrap)
            # ngclient judges expiry by the system clock; ours never goes below the floor.
            updater._trusted_set.reference_time = datetime.fromtimestamp(reference, UTC)
            updater.refresh()
            trusted = updater._trusted_set
            for role in (trusted.root, trusted.timestamp, trusted.snapshot, trusted.targets):
                if role.is_expired(datetime.fromtimestamp(reference, UTC)):
                    raise exceptions.ExpiredMetadataError(f"{role.type} metadata has expired")
            root_version = trusted.root.version
            expires = min(r.expires.timestamp() for r in
                          (trusted.root, trusted.timestamp, trusted.snapshot, trusted.targets))
            manifest_info = self._info(updater, "manifest.json")
            if installed is not None and _same(installed, "manifest.json", manifest_info):
                self._mark_floor()
                return SyncResult(installed["version"], False, fetcher.bytes_fetched,
                                  _epoch(installed.get("published")), expires)
            wire = self._read_manifest(updater, fetcher, manifest_info)
            self._check_version(wire, installed, root_version)
            final = self._install(updater, fetcher, wire, manifest_info, current, installed,
                                  root_version, expires)
        except exceptions.RepositoryError as e:
            raise SyncError(f"repository data rejected ({type(e).__name__}): {e}") from e
        except exceptions.DownloadError as e:
            raise SyncError(f"download failed ({type(e).__name__}): {e}") from e
        except TrustDataError as e:
            raise SyncError(f"published trust data refused: {e}") from e
        except OSError as e:
            raise SyncError(f"local storage failed: {e}") from e
        prune_versions(self.trust_dir, self.keep_versions)
        self._mark_floor()
        log.info("trust data version %s installed at %s", wire["version"], final)
        return SyncResult(wire["version"], True, fetcher.bytes_fetched,
                          _epoch(wire["published"]), expires)

    def _reference_time(self, installed: dict[str, Any] | None) -> float:
        published = _epoch(installed.get("published")) if installed else None
        floor = time_floor(self.floor.last_synchronised(), published, self._build_time)
        return max(self._wall(), floor)

    def _mark_floor(self) -> None:
        if self._clock_synchronised():
            self.floor.mark_synchronised(self._wall())

    def _installed_manifest(self, current: Path | None) -> dict[str, Any] | None:
        if current is None:
            return None
        try:
            manifest = read_manifest(current)
        except TrustDataError:
            return None
        return manifest if isinstance(manifest.get("version"), int) else None

    @staticmethod
    def _info(updater: Updater, path: str) -> TargetFile:
        info = updater.get_targetinfo(path)
        if info is None:
            raise exceptions.RepositoryError(f"target {path} is not in the signed metadata")
        if "sha256" not in info.hashes:
            raise exceptions.RepositoryError(f"target {path} has no sha256")
        return info

    def _download(self, updater: Updater, fetcher: DeadlineFetcher, info: TargetFile,
                  dest: Path, cap: int = MAX_TARGET_BYTES) -> None:
        """Fetch a target into ``dest``; its length and hash must match signed metadata."""
        if info.length > cap:
            raise exceptions.RepositoryError(f"target {info.path} is above {cap} bytes")
        dirname, sep, basename = info.path.rpartition("/")
        url = f"{self.url}/targets/{dirname}{sep}{info.hashes['sha256']}.{basename}"
        with dest.open("wb") as f:
            length, digest = fetcher.fetch_to(url, info.length, f)
        if length != info.length or digest != info.hashes["sha256"]:
            dest.unlink()
            raise exceptions.LengthOrHashMismatchError(
                f"target {info.path} does not match its signed length and hash")

    def _read_manifest(self, updater: Updater, fetcher: DeadlineFetcher,
                       info: TargetFile) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(dir=self.state_dir) as tmp:
            path = Path(tmp) / "manifest.json"
            self._download(updater, fetcher, info, path, MAX_MANIFEST_BYTES)
            try:
                wire = json.loads(path.read_bytes())
            except ValueError as e:
                raise TrustDataError("manifest.json is not valid JSON") from e
        if not isinstance(wire, dict) or wire.get("format") != 1 \
                or not isinstance(wire.get("version"), int) or _epoch(wire.get("published")) \
                is None:
            raise TrustDataError("manifest.json is not a format-1 manifest")
        parse_policy(wire.get("policy", {}))
        return wire

    @staticmethod
    def _check_version(wire: dict[str, Any], installed: dict[str, Any] | None,
                       root_version: int) -> None:
        if installed is None:
            return
        if wire["version"] <= installed["version"] and root_version <= installed.get(
                "root_version", 0):
            raise exceptions.BadVersionNumberError(
                f"version {wire['version']} is not newer than the installed "
                f"{installed['version']} (rollback)")

    def _parts(self, wire: dict[str, Any]) -> tuple[list[_Part], dict[str, Any]]:
        """Files of the new version and the installed manifest's references to them."""
        parts = [_Part(_str(wire.get("issuers")), "issuers.json", "plain", MAX_ISSUERS_BYTES)]
        status_lists = []
        for i, entry in enumerate(wire.get("status_lists", [])):
            if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
                raise TrustDataError(f"manifest status_lists[{i}] is invalid")
            target = _str(entry.get("target"))
            length = entry.get("length")
            if not isinstance(length, int) or not 0 <= length <= MAX_STATUS_LIST_BYTES:
                raise TrustDataError(f"manifest status_lists[{i}].length is invalid")
            local = "status/" + target.rpartition("/")[2].removesuffix(".zz")
            parts.append(_Part(target, local, "zlib", length))
            status_lists.append({"uri": entry["uri"], "bits": entry.get("bits"), "file": local})
        revoked: dict[str, Any] = {}
        for name in HASH_SETS:
            entry = wire.get("revoked", {}).get(name) or {"base": None, "deltas": []}
            base = entry.get("base")
            local_base = None
            if base is not None:
                local_base = _str(base.get("target"))
                parts.append(_Part(local_base, local_base, "base", 16 * _count(base), True))
            deltas = []
            for d in entry.get("deltas", []):
                target = _str(d.get("target"))
                parts.append(_Part(target, target, "plain", 16 * _count(d), True))
                deltas.append(target)
            revoked[name] = {"base": local_base, "deltas": deltas}
        layout = {"issuers": "issuers.json", "status_lists": status_lists, "revoked": revoked}
        return parts, layout

    def _install(self, updater: Updater, fetcher: DeadlineFetcher, wire: dict[str, Any],
                 manifest_info: TargetFile, current: Path | None,
                 installed: dict[str, Any] | None, root_version: int, expires: float) -> Path:
        parts, layout = self._parts(wire)
        staged = StagedVersion(self.trust_dir, wire["version"])
        try:
            sources: dict[str, Any] = {"manifest.json": _source(manifest_info)}
            for part in parts:
                info = self._info(updater, part.target)
                sources[part.local] = _source(info)
                if current is not None and installed is not None and _same(
                        installed, part.local, info):
                    staged.link_from(current / part.local, part.local)
                    if part.kind == "base":
                        idx = Path(part.local).with_suffix(".idx").as_posix()
                        staged.link_from(current / idx, idx)
                    continue
                self._fetch_part(updater, fetcher, staged, part, info)
                staged.note(f"fetched {part.local}")
            issuers = json.loads(staged.file("issuers.json").read_bytes())
            if not isinstance(issuers, dict):
                raise TrustDataError("issuers.json is not an object")
            parse_issuers(issuers.get("issuers", []))
            manifest = {"format": 1, "version": wire["version"], "published": wire["published"],
                        "expires": _iso(expires), "policy": wire.get("policy", {}),
                        "root_version": root_version, "targets": sources, **layout}
            return staged.commit(manifest)
        except BaseException:
            staged.abort()
            raise

    def _fetch_part(self, updater: Updater, fetcher: DeadlineFetcher, staged: StagedVersion,
                    part: _Part, info: TargetFile) -> None:
        dest = staged.file(part.local)
        if part.kind == "zlib":
            wire = dest.with_name(dest.name + ".zz")
            self._download(updater, fetcher, info, wire)
            _inflate(wire, dest, part.max_length)
            wire.unlink()
        else:
            if part.exact and info.length != part.max_length:
                raise TrustDataError(f"{part.target}: length does not match its entry count")
            self._download(updater, fetcher, info, dest,
                           MAX_TARGET_BYTES if part.exact else part.max_length)
            if part.kind == "base":
                staged.write_index(part.local)

    # -- state ----------------------------------------------------------------------------

    def _record(self, state: dict[str, Any]) -> None:
        current = current_version_dir(self.trust_dir)
        installed = self._installed_manifest(current)
        if installed is not None:
            published = _epoch(installed.get("published"))
            state.update(version=installed.get("version"), published=installed.get("published"),
                         age_s=None if published is None else round(self._wall() - published, 1))
            state.setdefault("expires", installed.get("expires"))
        write_sync_state(self.state_dir, state)

    @contextlib.contextmanager
    def _lock(self):
        fd = os.open(self.state_dir / "sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                raise SyncError("another sync is running") from e
            yield
        finally:
            os.close(fd)


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        raise TrustDataError(f"manifest names an unsafe target {value!r}")
    return value


def _count(entry: Any) -> int:
    count = entry.get("count") if isinstance(entry, dict) else None
    if not isinstance(count, int) or count < 0:
        raise TrustDataError("manifest revoked entry has no valid count")
    return count


def _source(info: TargetFile) -> dict[str, Any]:
    return {"target": info.path, "sha256": info.hashes["sha256"], "length": info.length}


def _same(installed: dict[str, Any], local: str, info: TargetFile) -> bool:
    src = installed.get("targets", {}).get(local)
    return isinstance(src, dict) and src.get("target") == info.path \
        and src.get("sha256") == info.hashes["sha256"]


def _inflate(src: Path, dest: Path, length: int) -> None:
    """Decompress a verified zlib file; the result must be exactly ``length`` bytes."""
    inflater = zlib.decompressobj()
    written = 0
    with src.open("rb") as fin, dest.open("wb") as fout:
        while chunk := fin.read(1 << 20):
            out = inflater.decompress(chunk, length + 1 - written)
            while out:
                written += len(out)
                if written > length:
                    raise TrustDataError(f"{dest.name}: inflates past {length} bytes")
                fout.write(out)
                out = inflater.decompress(inflater.unconsumed_tail, length + 1 - written) \
                    if inflater.unconsumed_tail else b""
    if written != length or not inflater.eof:
        raise TrustDataError(f"{dest.name}: inflates to {written}, not {length} bytes")


def read_sync_state(state_dir: Path) -> dict[str, Any]:
    """The last recorded sync state (empty when none) for status pages and metrics."""
    try:
        state = json.loads((Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_sync_state(state_dir: Path, state: dict[str, Any]) -> None:
    path = Path(state_dir) / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    with tmp.open("w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def run_periodic(sync: Callable[[], SyncResult], interval_s: float, jitter_s: float, *,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, rounds: int | None = None) -> None:
    """Sync every ``interval_s`` plus up to ``jitter_s`` (spreading a fleet's load)."""
    done = 0
    while rounds is None or done < rounds:
        try:
            log.info("%s", sync().describe())
        except SyncError as e:
            log.warning("sync failed, keeping the last good data: %s", e)
        done += 1
        if rounds is None or done < rounds:
            sleep(interval_s + jitter_s * rng())


def client_from_config(config: Any, **overrides: Any) -> SyncClient:
    sync = config.sync
    if not sync.url:
        raise SyncError("no sync URL configured ([sync] url)")
    if sync.root is None:
        raise SyncError("no pinned trust root configured ([sync] root)")
    kwargs = {
        "state_dir": config.paths.state_dir, "trust_dir": config.trust_dir,
        "url": sync.url, "root": sync.root, "gap_timeout_s": sync.timeout_s,
        "deadline_s": getattr(sync, "download_deadline_s", 600.0),
        "retries": getattr(sync, "retries", 3),
        "backoff_s": getattr(sync, "retry_backoff_s", 1.0),
        "keep_versions": getattr(sync, "keep_versions", 2),
    }
    kwargs.update(overrides)
    return SyncClient(**kwargs)
