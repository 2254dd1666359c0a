"""The online timestamp refresh: only the timestamp key, and devices accept its output.

A repository whose timestamp lapsed (signed three hours ago for one hour; targets and
snapshot still valid from the ceremony) is refused by a real device sync; after
``appliance publish refresh`` with a folder holding timestamp.pem alone, the same device
accepts it, served over loopback HTTP. Times are relative to the wall clock because
python-tuf reads it for expiry; margins are hours.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sync_support import Authority, RepoServer, device
from tuf.api.metadata import Metadata, Root

from appliance.cli import main
from appliance.core.errors import SyncError
from appliance_sync.publisher_refresh import refresh_timestamp


@pytest.fixture
def published(tmp_path: Path) -> tuple[Authority, Path]:
    earlier = datetime.now(UTC) - timedelta(hours=3)
    authority = Authority.create(tmp_path / "authority", now=earlier)
    authority.publish(now=earlier, expires_hours=30 * 24)  # the ceremony: targets, snapshot
    online = tmp_path / "online-keys"
    online.mkdir()
    shutil.copy2(authority.keys / "timestamp.pem", online / "timestamp.pem")
    # The last refresh ran three hours ago with a one-hour timestamp: it has lapsed.
    refresh_timestamp(authority.repo, online, expires_hours=1, now=earlier)
    return authority, online


def test_refresh_revives_an_expired_timestamp_for_devices(tmp_path, published):
    authority, online = published
    server = RepoServer(authority.repo)
    try:
        with pytest.raises(SyncError):
            device(tmp_path / "state", server.url, authority.root_file).sync_once()
        before = Metadata.from_file(str(authority.repo / "metadata/timestamp.json")).signed
        assert (
            main(
                [
                    "publish",
                    "refresh",
                    "--repo",
                    str(authority.repo),
                    "--keys",
                    str(online),
                    "--expires-hours",
                    "24",
                ]
            )
            == 0
        )
        after = Metadata.from_file(str(authority.repo / "metadata/timestamp.json"))
        assert after.signed.version == before.version + 1
        assert after.signed.snapshot_meta == before.snapshot_meta
        root = Metadata[Root].from_file(str(authority.root_file)).signed
        root.verify_delegate("timestamp", after.signed_bytes, after.signatures)
        result = device(tmp_path / "state", server.url, authority.root_file).sync_once()
        assert result.updated
    finally:
        server.stop()


def test_refresh_needs_no_offline_key_and_refuses_a_wrong_one(tmp_path, published):
    authority, online = published
    assert sorted(p.name for p in online.iterdir()) == ["timestamp.pem"]
    refresh_timestamp(authority.repo, online, expires_hours=24)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy2(authority.keys / "targets.pem", wrong / "timestamp.pem")
    with pytest.raises(SyncError, match="not the one the current root trusts"):
        refresh_timestamp(authority.repo, wrong, expires_hours=24)


def test_refresh_of_an_empty_folder_says_so(tmp_path, published):
    _, online = published
    with pytest.raises(SyncError, match="no published version"):
        refresh_timestamp(tmp_path / "empty", online, expires_hours=24)
