"""The publisher's online half: re-sign the TUF timestamp with the timestamp key alone.

Run hourly by appliance-publish-timestamp.timer on the repository host, which holds no
other key (docs/central.md). The new timestamp points at the same snapshot with the next
version and a fresh expiry, so devices keep seeing fresh trust data between signing
ceremonies; nothing it signs can change what the trust data says.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from tuf.api.metadata import Metadata, Timestamp

from appliance.core.errors import SyncError
from appliance_sync.publisher import Repository, _expiry, _write_atomic
from appliance_sync.publisher_keys import load_signer

log = logging.getLogger(__name__)


def refresh_timestamp(
    repo: Path, keys: Path, *, expires_hours: float, now: datetime | None = None
) -> int:
    """Write timestamp.json (next version, same snapshot); returns its version."""
    now = now or datetime.now(UTC)
    r = Repository(repo, keys)
    if not r.published():
        raise SyncError(f"{repo} holds no published version: copy in a signing ceremony's")
    signer = load_signer(keys, Timestamp.type)
    root = r.root().signed
    if signer.public_key.keyid not in root.roles[Timestamp.type].keyids:
        raise SyncError("the timestamp key given is not the one the current root trusts")
    old = r.timestamp().signed
    snapshot = r.metadata_dir / f"{old.snapshot_meta.version}.snapshot.json"
    if not snapshot.exists():
        raise SyncError(f"{snapshot} is missing: the repository copy is incomplete")
    ts = Metadata(
        Timestamp(
            version=old.version + 1,
            spec_version=old.spec_version,
            expires=_expiry(expires_hours, now),
            snapshot_meta=old.snapshot_meta,
        )
    )
    ts.sign(signer)
    _write_atomic(r.metadata_dir / "timestamp.json", ts.to_bytes())
    log.info("timestamp refreshed to version %d", old.version + 1)
    return old.version + 1
