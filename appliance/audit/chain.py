"""The audit hash chain and checkpoint message: shared by the device log and the hub.

A record's hash is SHA-256 over a canonical JSON of its fields, including the previous
record's hash; the first record chains on a genesis hash bound to the random log id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Fields covered by each record's hash, in export order; ``hash`` and ``uploaded_at`` follow.
HASHED_FIELDS = (
    "seq",
    "time",
    "device_id",
    "log_id",
    "source",
    "verdict",
    "reason",
    "profile",
    "iss",
    "kid",
    "licence_type",
    "licence_hash",
    "cti_hash",
    "live",
    "trust_version",
    "software_version",
    "prev_hash",
)
EXPORT_FIELDS = (*HASHED_FIELDS, "hash", "uploaded_at")
_INT_FIELDS = {"seq", "trust_version"}


def canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def normalise(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed fields of a record with their canonical types (SQLite gives ints for bools)."""
    out: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = row.get(name)
        if name == "live":
            value = bool(value)
        elif name in _INT_FIELDS:
            value = None if value is None else int(value)
        elif value is not None:
            value = str(value)
        out[name] = value
    return out


def record_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(b"appliance-audit-record-v1\n" + canonical(normalise(row))).hexdigest()


def genesis_hash(log_id: str) -> str:
    return hashlib.sha256(b"appliance-audit-genesis-v1\n" + log_id.encode()).hexdigest()


def checkpoint_message(device_id: str, log_id: str, seq: int, head: str, time: str) -> bytes:
    return canonical(
        {
            "type": "appliance-audit-checkpoint-v1",
            "device_id": device_id,
            "log_id": log_id,
            "seq": int(seq),
            "hash": head,
            "time": time,
        }
    )


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
