"""The device's sync client: fetch with python-tuf, verify, install atomically, report.

One ``sync_once``:

1. takes a lock (one installer at a time) and notes the attempt; with no network yet,
   points ``trust/current`` back at the highest version it installed and brings the
   high-water mark (``appliance.trust.high_water``) up to it;
2. refreshes TUF metadata with ``ngclient`` from the pinned root (``bootstrap``), with
   expiry judged at max(system clock, trusted-time floor) so a clock set back cannot
   revive expired metadata (freeze), and every metadata write fsynced;
3. reads the signed ``manifest.json`` target; when it is the installed one (from this
   client's own record, ``trust/installed.json``, checked under the pinned root, never
   from where ``current`` points), done, with ``current`` pointed back at it if moved;
4. refuses a lower version than the installed one unless the root was rotated since
   (recovery from a compromised online key);
5. stages a new version directory (``appliance_sync.download``): unchanged parts are
   hard-linked from the current version, changed parts downloaded (total deadline, size
   cap from signed metadata, hash checked), status lists inflated with a cap, hash bases
   indexed;
6. keeps the verified metadata with the version (``signed/``), loads it with the kiosk's
   checked loader, fsyncs, records it, switches ``trust/current`` by rename, raises the
   high-water mark to it, prunes old versions it installed;
7. marks the trusted-time floor when the system clock is NTP-synchronised, never above
   the signed publication time, and not at all when the clock jumped forward since the
   last sync of this boot (recorded in the state file instead);
8. writes ``state_dir/sync_state.json`` for the status page and metrics.

Any failure, a full disk included, raises ``SyncError`` with one line and is recorded in
the state file where at all possible; the installed data is untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuf.api import exceptions
from tuf.ngclient import Updater, UpdaterConfig

from appliance.core.errors import SyncError, TrustDataError
from appliance.core.isotime import instant_or_none as _epoch
from appliance.platform.files import write_atomic
from appliance.trust.clock import (
    BUILD_TIME,
    boot_clock,
    system_clock_synchronised,
)
from appliance.trust.high_water import mark_of
from appliance.trust.install import prune_versions, switch_current
from appliance.trust.signed import SIGNED, WIRE_MANIFEST, verify_signed
from appliance.trust.store import current_version_dir
from appliance.trust.sync_state import read_sync_state, write_sync_state
from appliance_sync.clock_guard import SyncClock
from appliance_sync.download import VersionDownload
from appliance_sync.fetcher import DeadlineFetcher
from appliance_sync.installed import InstalledVersions
from appliance_sync.part_reuse import same_target
from appliance_sync.schedule import SyncResult, iso_or_none

if TYPE_CHECKING:
    from appliance.config import Config

log = logging.getLogger(__name__)


class _DurableUpdater(Updater):
    """ngclient's Updater, but metadata it writes is fsynced (file and directory)."""

    def _persist_file(self, filename: str, data: bytes) -> None:
        write_atomic(Path(filename), data, sync_folder=True)


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
        boot: Callable[[], tuple[str, float]] = boot_clock,
        max_clock_jump_s: float = 3600.0,
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
        self.clock = SyncClock(
            self.state_dir,
            wall=wall,
            build_time=build_time,
            clock_synchronised=clock_synchronised,
            boot=boot,
            max_clock_jump_s=max_clock_jump_s,
        )
        self.installs = InstalledVersions(self.trust_dir, self.root)
        self._new_fetcher = functools.partial(
            DeadlineFetcher,
            gap_timeout_s=gap_timeout_s,
            deadline_s=deadline_s,
            retries=retries,
            backoff_s=backoff_s,
            sleep=sleep,
        )

    # -- public ---------------------------------------------------------------------------

    def sync_once(self) -> SyncResult:
        """Bring the device to the newest valid data; ``SyncError`` leaves the old in place.

        Every failure, local storage included (a full disk), is recorded in the state file
        where at all possible and raised as one ``SyncError`` line.
        """
        with contextlib.ExitStack() as stack:
            try:
                self.state_dir.mkdir(parents=True, exist_ok=True)
                stack.enter_context(self._lock())
            except OSError as e:
                raise SyncError(f"local storage failed: {e.strerror or e}") from None
            return self._sync_recorded()

    def _sync_recorded(self) -> SyncResult:
        state = read_sync_state(self.state_dir)
        state["last_attempt"] = iso_or_none(self._wall())
        self.clock.check(state)
        self.installs.mark_error = None
        fetcher = self._new_fetcher(tmp_dir=str(self.state_dir))
        try:
            try:
                result = self._sync(fetcher)
            except OSError as e:
                raise SyncError(f"local storage failed: {e.strerror or e}") from e
        except SyncError as e:
            state.update(
                last_error=str(e),
                last_error_at=state["last_attempt"],
                bytes_fetched=fetcher.bytes_fetched,
                high_water_error=self.installs.mark_error,
            )
            unrecorded = self._record(state)
            if unrecorded:
                raise SyncError(f"{e} ({unrecorded})") from None
            raise SyncError(str(e)) from None
        state.update(
            last_success=state["last_attempt"],
            last_error=None,
            bytes_fetched=result.bytes_fetched,
            updated=result.updated,
            expires=iso_or_none(result.expires),
            high_water_error=self.installs.mark_error,
        )
        state["bytes_fetched_total"] = state.get("bytes_fetched_total", 0) + result.bytes_fetched
        unrecorded = self._record(state)
        if unrecorded:
            raise SyncError(f"{result.describe()}, but {unrecorded}")
        return result

    # -- the steps ------------------------------------------------------------------------

    def _sync(self, fetcher: DeadlineFetcher) -> SyncResult:
        try:
            bootstrap = self.root.read_bytes()
        except OSError as e:
            raise SyncError(f"cannot read the pinned root {self.root}: {e.strerror or e}") from e
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        installed_dir, installed = self.installs.highest()
        self.installs.repair_offline(installed_dir, installed)  # before any network step
        reference = self.clock.reference_time(installed)
        try:
            updater = _DurableUpdater(
                str(self.metadata_dir),
                f"{self.url}/metadata/",
                target_base_url=f"{self.url}/targets/",
                fetcher=fetcher,
                config=UpdaterConfig(max_root_rotations=64),
                bootstrap=bootstrap,
            )
            # ngclient judges expiry by the system clock; ours never goes below the floor.
            updater._trusted_set.reference_time = datetime.fromtimestamp(reference, UTC)
            updater.refresh()
            trusted = updater._trusted_set
            for role in (trusted.root, trusted.timestamp, trusted.snapshot, trusted.targets):
                if role.is_expired(datetime.fromtimestamp(reference, UTC)):
                    raise exceptions.ExpiredMetadataError(f"{role.type} metadata has expired")
            root_version = trusted.root.version
            expires = min(
                r.expires.timestamp()
                for r in (trusted.root, trusted.timestamp, trusted.snapshot, trusted.targets)
            )
            download = VersionDownload(
                url=self.url,
                updater=updater,
                fetcher=fetcher,
                state_dir=self.state_dir,
                trust_dir=self.trust_dir,
                metadata_dir=self.metadata_dir,
            )
            manifest_info = download.info(WIRE_MANIFEST)
            if installed is not None and same_target(installed, WIRE_MANIFEST, manifest_info):
                assert installed_dir is not None
                if current_version_dir(self.trust_dir) != installed_dir:
                    log.warning(
                        "trust/current did not point at the installed %s; repaired",
                        installed_dir.name,
                    )
                    switch_current(self.trust_dir, installed_dir.name)
                prune_versions(
                    self.trust_dir, self.keep_versions, InstalledVersions.genuine(bootstrap)
                )
                self.clock.mark_floor(_epoch(installed.get("published")))
                return SyncResult(
                    installed["version"],
                    False,
                    fetcher.bytes_fetched,
                    _epoch(installed.get("published")),
                    expires,
                )
            raw, wire = download.read_manifest(manifest_info)
            self._check_version(wire, installed or self.installs.floor_as_installed(), root_version)
            final = download.install(
                wire, raw, manifest_info, installed_dir, installed, root_version, expires, bootstrap
            )
            self.installs.write_mark(mark_of(final, verify_signed(final / SIGNED, bootstrap), wire))
        except exceptions.RepositoryError as e:
            raise SyncError(f"repository data rejected ({type(e).__name__}): {e}") from e
        except exceptions.DownloadError as e:
            raise SyncError(f"download failed ({type(e).__name__}): {e}") from e
        except TrustDataError as e:
            raise SyncError(f"published trust data refused: {e}") from e
        prune_versions(self.trust_dir, self.keep_versions, InstalledVersions.genuine(bootstrap))
        self.clock.mark_floor(_epoch(wire["published"]))
        log.info("trust data version %s installed at %s", wire["version"], final)
        return SyncResult(
            wire["version"], True, fetcher.bytes_fetched, _epoch(wire["published"]), expires
        )

    @staticmethod
    def _check_version(
        wire: dict[str, Any], installed: dict[str, Any] | None, root_version: int
    ) -> None:
        if installed is None:
            return
        if wire["version"] <= installed["version"] and root_version <= installed.get(
            "root_version", 0
        ):
            raise exceptions.BadVersionNumberError(
                f"version {wire['version']} is not newer than the installed "
                f"{installed['version']} (rollback)"
            )

    # -- state ----------------------------------------------------------------------------

    def _record(self, state: dict[str, Any]) -> str | None:
        """Write the state file; returns why it could not be written, or None."""
        _, installed = self.installs.highest()
        if installed is not None:
            published = _epoch(installed.get("published"))
            state.update(
                version=installed.get("version"),
                published=installed.get("published"),
                age_s=None if published is None else round(self._wall() - published, 1),
            )
            state.setdefault("expires", installed.get("expires"))
        try:
            write_sync_state(self.state_dir, state)
        except OSError as e:
            log.error("sync state not recorded: %s", e.strerror or e)
            return f"state not recorded: {e.strerror or e}"
        return None

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


def client_from_config(config: Config) -> SyncClient:
    """The device's client, every setting from ``[sync]`` (each argument type-checked)."""
    sync = config.sync
    if not sync.url:
        raise SyncError("no sync URL configured ([sync] url)")
    if sync.root is None:
        raise SyncError("no pinned trust root configured ([sync] root)")
    return SyncClient(
        state_dir=config.paths.state_dir,
        trust_dir=config.trust_dir,
        url=sync.url,
        root=sync.root,
        gap_timeout_s=sync.timeout_s,
        deadline_s=sync.download_deadline_s,
        retries=sync.retries,
        backoff_s=sync.retry_backoff_s,
        keep_versions=sync.keep_versions,
    )
