"""Truncation the device can see by itself: what the hub acknowledged, what it signed it sent.

The chain and checkpoints prove the records between the first and the head are intact, but
the head rows and checkpoints are in the same file: cut the newest records together with
them and the chain still verifies; delete the oldest down to a checkpoint and it looks like
retention pruning. Two claims kept in ``meta`` are signed by someone else's key or were
sent away, so they cannot be moved back unnoticed: the hub's acknowledgement (``hub_ack``,
signed by the pinned hub key) and the last head the uploader signed and sent
(``sent_head``). A log holding less than either, or other records at their seq, was cut
or rewritten; records missing below the first one are allowed only up to what the hub
acknowledged (or what an earlier release pruned before this rule, ``unacked_pruned_through``).

Whoever can rewrite the file can also delete these rows: then the hub, which keeps the
highest head it has seen, is the one that notices (``appliance_hub.heads``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from appliance.audit.head import HubAck, SignedHead
from appliance.audit.identity import DevicePublicKey
from appliance.audit.schema import read_meta

ACK_KEY = "hub_ack"
HEAD_KEY = "sent_head"
UNACKED_KEY = "unacked_pruned_through"
MAX_META_JSON = 4096

_T = TypeVar("_T")


def read_json_meta(conn: sqlite3.Connection, key: str, parse: Callable[[Any], _T]) -> _T | None:
    """A signed claim kept as JSON in ``meta``; None when absent or unreadable."""
    text = read_meta(conn, key)
    if text is None or len(text) > MAX_META_JSON:
        return None
    try:
        return parse(json.loads(text))
    except ValueError:
        return None


def keep_higher(conn: sqlite3.Connection, key: str, claim: HubAck | SignedHead | None) -> None:
    """Keep ``claim`` (a signed head or acknowledgement) unless a higher one is held."""
    if claim is None:
        return
    text = read_meta(conn, key)
    try:
        held = json.loads(text) if text is not None else None
    except ValueError:
        held = None
    held_seq = held.get("seq") if isinstance(held, dict) else None
    if isinstance(held_seq, int) and held_seq > claim.seq:
        return
    conn.execute(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        (key, json.dumps(claim.as_dict(), sort_keys=True)),
    )


def adopt_ack_rule(conn: sqlite3.Connection) -> None:
    """Once per log, inside a write: what earlier releases pruned without a hub signature."""
    conn.execute(
        "INSERT OR IGNORE INTO meta SELECT ?, coalesce((SELECT value FROM meta "
        "WHERE key = 'pruned_through'), '0')",
        (UNACKED_KEY,),
    )


def acked_through(
    conn: sqlite3.Connection, device_id: str, log_id: str, hub_key: DevicePublicKey | None
) -> int:
    """The seq the hub's stored acknowledgement covers; 0 without a pinned key that
    verifies it (then nothing may be pruned)."""
    ack = read_json_meta(conn, ACK_KEY, HubAck.parse)
    if (
        hub_key is None
        or ack is None
        or (ack.device_id, ack.log_id) != (device_id, log_id)
        or not ack.verify(hub_key)
    ):
        return 0
    return ack.seq


def check_claims(
    conn: sqlite3.Connection,
    device_id: str,
    log_id: str,
    hub_key: DevicePublicKey | None,
    device_key: DevicePublicKey | None,
) -> tuple[int, str] | None:
    """The first truncation or rewrite the stored claims reveal: (seq, problem), or None."""
    first, last = conn.execute("SELECT min(seq), max(seq) FROM records").fetchone()
    last = last or 0

    def hash_at(seq: int) -> str | None:
        row = conn.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    findings: list[tuple[int, str]] = []
    ack = read_json_meta(conn, ACK_KEY, HubAck.parse)
    acked = 0
    if ack is not None:
        if (ack.device_id, ack.log_id) != (device_id, log_id):
            findings.append((ack.seq, "the hub acknowledgement held is for another log"))
        elif hub_key is not None and not ack.verify(hub_key):
            findings.append(
                (
                    ack.seq,
                    f"hub acknowledgement of seq {ack.seq}: signature "
                    "invalid (not from the pinned hub key)",
                )
            )
        else:
            acked = ack.seq
            findings += _claim(ack.seq, ack.hash, last, hash_at, "the hub acknowledged")
    head = read_json_meta(conn, HEAD_KEY, SignedHead.parse)
    if head is not None and (head.device_id, head.log_id) == (device_id, log_id):
        if device_key is not None and not head.verify(device_key):
            findings.append((head.seq, f"signed head at seq {head.seq}: signature invalid"))
        else:
            findings += _claim(
                head.seq, head.hash, last, hash_at, "this device signed and sent a head at"
            )
    unacked = read_meta(conn, UNACKED_KEY)
    allowed = max(
        acked, int(unacked if unacked is not None else read_meta(conn, "pruned_through") or 0)
    )
    if first is not None and first - 1 > allowed:
        findings.append(
            (
                1,
                f"seq 1..{first - 1}: deleted, but the hub acknowledged "
                f"{'only up to seq ' + str(acked) if acked else 'none of them'} "
                "(not pruned after upload)",
            )
        )
    return min(findings) if findings else None


def _claim(
    seq: int, head: str, last: int, hash_at: Callable[[int], str | None], who: str
) -> list[tuple[int, str]]:
    if seq > last:
        return [
            (
                last + 1,
                f"seq {last + 1}: missing ({who} seq {seq}, the log ends at "
                f"seq {last}: deleted at the end)",
            )
        ]
    held = hash_at(seq)
    if held is not None and held != head:
        return [(seq, f"seq {seq}: differs from the record {who} (chain rewritten)")]
    return []
