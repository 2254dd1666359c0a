"""The sync state file (``state_dir/sync_state.json``): written by sync, read by status.

It lives in the trust package so that the kiosk's status page can read what sync
recorded without importing the sync package (and tuf) into the network-less kiosk.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from appliance.platform.files import write_atomic

log = logging.getLogger(__name__)

STATE_FILE = "sync_state.json"
MAX_STATE_BYTES = 4096  # the state file is padded to this, so a full disk can still record


def read_sync_state(state_dir: Path) -> dict[str, Any]:
    """The last recorded sync state (empty when none) for status pages and metrics."""
    try:
        state = json.loads((Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_sync_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically; on a full disk, overwrite it in place.

    The file is padded to ``MAX_STATE_BYTES`` so that its blocks stay allocated: a disk
    with no space for the temporary copy can still take the overwrite, and the failure
    that filled it is recorded. ``OSError`` only when neither works.
    """
    path = Path(state_dir) / STATE_FILE
    data = json.dumps(state, indent=1, sort_keys=True).encode()
    if len(data) > MAX_STATE_BYTES - 1:
        data = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    padded = data + b"\n" + b" " * max(0, MAX_STATE_BYTES - len(data) - 1)
    try:
        write_atomic(path, padded)
        return
    except OSError as e:
        if not path.is_file():
            raise
        log.warning("sync state written in place (%s)", e.strerror or e)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, padded, 0)
        if os.fstat(fd).st_size > len(padded):
            os.ftruncate(fd, len(padded))
        os.fsync(fd)
    finally:
        os.close(fd)
