"""Checkpoint rules an administrator set on the admin screen, kept across restarts.

The configuration file is provisioning's (Ansible rewrites it); a change made on the
device itself lives in ``state_dir/local_policy.json`` and overrides the configured
``policy.accepted_types`` until provisioning or the admin screen changes it again.
Written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from appliance.platform.files import write_atomic

log = logging.getLogger(__name__)

FILE = "local_policy.json"


def load_accepted_types(state_dir: Path) -> tuple[str, ...] | None:
    """The types set on the device, or None when none were set (or the file is unreadable)."""
    try:
        raw = json.loads((state_dir / FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable %s: %s", state_dir / FILE, e)
        return None
    types = raw.get("accepted_types") if isinstance(raw, dict) else None
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        log.warning("ignoring %s: accepted_types is not a list of text", state_dir / FILE)
        return None
    return tuple(types)


def save_accepted_types(state_dir: Path, types: tuple[str, ...]) -> None:
    path = state_dir / FILE
    write_atomic(path, json.dumps({"accepted_types": list(types)}).encode())
