"""The fleet audit secret: the HMAC key that hides licence numbers in every device's log.

One key for the whole fleet, so the same licence gives the same keyed hash on every device
(docs/adr/0005); a device without it makes a random one so it can still record.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from appliance.core.errors import AuditError
from appliance.platform.secret_files import create_secret

log = logging.getLogger(__name__)

HMAC_KEY_NAME = "audit_hmac_key"


def load_hmac_key(secrets_dir: Path) -> bytes:
    """The fleet audit secret; a random one (0600) is created, and said so, when absent."""
    path = Path(secrets_dir) / HMAC_KEY_NAME
    try:
        if not path.exists() and create_secret(path, (secrets.token_hex(32) + "\n").encode()):
            log.warning(
                "created a random fleet audit key at %s: keyed hashes will not "
                "match other devices' until the fleet key is installed",
                path,
            )
        raw = path.read_bytes().strip()
    except OSError as e:
        raise AuditError(f"cannot read the fleet audit key {path}: {e.strerror or e}") from e
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < 16:
        raise AuditError(f"fleet audit key {path} is shorter than 16 bytes")
    return key
