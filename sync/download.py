"""One sync's download and install steps: the signed manifest, then a new version staged.

Apart from the sync client's order of steps (``appliance_sync.client``) because these
are the ones that touch the repository's bytes: every target is checked against its
signed length and hash with a size cap (a total deadline in the fetcher), unchanged parts
are hard-linked from the installed version, status lists inflated with a cap, and the
verified metadata kept with the version so the kiosk can check it offline.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tuf.api import exceptions
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater

from appliance.core.errors import TrustDataError
from appliance.core.isotime import instant_or_none as _epoch
from appliance.trust.install import StagedVersion
from appliance.trust.policy import parse_policy
from appliance.trust.signed import ROOT_HISTORY, SIGNED, WIRE_MANIFEST, Part, wire_layout
from appliance.trust.source import parse_issuers
from appliance.trust.store import load_version_dir
from appliance_sync.fetcher import DeadlineFetcher
from appliance_sync.part_reuse import companions, inflate_to, same_target, source_record
from appliance_sync.schedule import iso_or_none

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TARGET_BYTES = 1024 * 1024 * 1024


class VersionDownload:
    """Made per sync, with that sync's refreshed ``updater`` and ``fetcher``."""

    def __init__(
        self,
        *,
        url: str,
        updater: Updater,
        fetcher: DeadlineFetcher,
        state_dir: Path,
        trust_dir: Path,
        metadata_dir: Path,
    ) -> None:
        self.url = url
        self.updater = updater
        self.fetcher = fetcher
        self.state_dir = state_dir
        self.trust_dir = trust_dir
        self.metadata_dir = metadata_dir

    def info(self, path: str) -> TargetFile:
        """A target's signed entry; one without a sha256 is refused."""
        info = self.updater.get_targetinfo(path)
        if info is None:
            raise exceptions.RepositoryError(f"target {path} is not in the signed metadata")
        if "sha256" not in info.hashes:
            raise exceptions.RepositoryError(f"target {path} has no sha256")
        return info

    def read_manifest(self, info: TargetFile) -> tuple[bytes, dict[str, Any]]:
        """The signed manifest's bytes (kept with the version) and its parsed form."""
        with tempfile.TemporaryDirectory(dir=self.state_dir) as tmp:
            path = Path(tmp) / WIRE_MANIFEST
            self._download(info, path, MAX_MANIFEST_BYTES)
            raw = path.read_bytes()
        try:
            wire = json.loads(raw)
        except ValueError as e:
            raise TrustDataError("manifest.json is not valid JSON") from e
        if (
            not isinstance(wire, dict)
            or wire.get("format") != 1
            or not isinstance(wire.get("version"), int)
            or _epoch(wire.get("published")) is None
        ):
            raise TrustDataError("manifest.json is not a format-1 manifest")
        parse_policy(wire.get("policy", {}))
        return raw, wire

    def install(
        self,
        wire: dict[str, Any],
        raw_manifest: bytes,
        manifest_info: TargetFile,
        current: Path | None,
        installed: dict[str, Any] | None,
        root_version: int,
        expires: float,
        pinned_root: bytes,
    ) -> Path:
        """Stage the version ``wire`` describes and commit it (loaded with the kiosk's
        checked loader first); any failure removes the staged directory."""
        parts, layout = wire_layout(wire)
        staged = StagedVersion(self.trust_dir, wire["version"])
        try:
            sources: dict[str, Any] = {WIRE_MANIFEST: source_record(manifest_info)}
            for part in parts:
                info = self.info(part.target)
                sources[part.local] = source_record(info)
                if (
                    current is not None
                    and installed is not None
                    and same_target(installed, part.local, info)
                ):
                    for rel in companions(part):
                        staged.link_from(current / rel, rel)
                    continue
                self._fetch_part(staged, part, info)
                staged.note(f"fetched {part.local}")
            issuers = json.loads(staged.file("issuers.json").read_bytes())
            if not isinstance(issuers, dict):
                raise TrustDataError("issuers.json is not an object")
            parse_issuers(issuers.get("issuers", []))
            self._keep_signed(staged, raw_manifest)
            manifest = {
                "format": 1,
                "version": wire["version"],
                "published": wire["published"],
                "expires": iso_or_none(expires),
                "policy": wire.get("policy", {}),
                "root_version": root_version,
                "targets": sources,
                **layout,
            }
            return staged.commit(manifest, lambda path: load_version_dir(path, pinned_root))
        except BaseException:
            staged.abort()
            raise

    def _download(self, info: TargetFile, dest: Path, cap: int = MAX_TARGET_BYTES) -> None:
        """Fetch a target into ``dest``; its length and hash must match signed metadata."""
        if info.length > cap:
            raise exceptions.RepositoryError(f"target {info.path} is above {cap} bytes")
        dirname, sep, basename = info.path.rpartition("/")
        url = f"{self.url}/targets/{dirname}{sep}{info.hashes['sha256']}.{basename}"
        with dest.open("wb") as f:
            length, digest = self.fetcher.fetch_to(url, info.length, f)
        if length != info.length or digest != info.hashes["sha256"]:
            dest.unlink()
            raise exceptions.LengthOrHashMismatchError(
                f"target {info.path} does not match its signed length and hash"
            )

    def _keep_signed(self, staged: StagedVersion, raw_manifest: bytes) -> None:
        """Store the metadata just verified with the version, for the kiosk to check it by."""
        for role in ("timestamp", "snapshot", "targets"):
            staged.write_bytes(
                f"{SIGNED}/{role}.json", (self.metadata_dir / f"{role}.json").read_bytes()
            )
        for root in sorted((self.metadata_dir / ROOT_HISTORY).glob("*.root.json")):
            staged.write_bytes(f"{SIGNED}/{ROOT_HISTORY}/{root.name}", root.read_bytes())
        staged.write_bytes(f"{SIGNED}/{WIRE_MANIFEST}", raw_manifest)

    def _fetch_part(self, staged: StagedVersion, part: Part, info: TargetFile) -> None:
        dest = staged.file(part.local)
        if part.kind == "zlib":
            wire = dest.with_name(dest.name + ".zz")  # kept: the kiosk checks by it
            self._download(info, wire)
            inflate_to(wire, dest, part.max_length)
        else:
            if part.exact and info.length != part.max_length:
                raise TrustDataError(f"{part.target}: length does not match its entry count")
            self._download(info, dest, MAX_TARGET_BYTES if part.exact else part.max_length)
            if part.kind == "base":
                staged.write_index(part.local)
