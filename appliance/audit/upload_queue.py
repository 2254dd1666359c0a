"""The device's side of the upload: which records go next, and what the hub took.

Records go up in the order written, one contiguous run at a time with the checkpoints in
it, so the hub checks each batch's chain by itself. They are marked uploaded by the hub's
acknowledgement, which is kept (like the signed head sent) when higher than the one held:
``appliance.audit.truncation`` later checks the log against both.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from appliance.audit.chain import HASHED_FIELDS
from appliance.audit.head import HubAck, SignedHead
from appliance.audit.schema import read_rows
from appliance.audit.truncation import ACK_KEY, HEAD_KEY, keep_higher


def pending_run(
    conn: sqlite3.Connection, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The oldest contiguous run of records not yet uploaded, and checkpoints within it."""
    first = conn.execute("SELECT min(seq) FROM records WHERE uploaded_at IS NULL").fetchone()[0]
    if first is None:
        return [], []
    rows = list(
        read_rows(conn, "SELECT * FROM records WHERE seq >= ? ORDER BY seq LIMIT ?", (first, limit))
    )
    run: list[dict[str, Any]] = []
    for row in rows:
        if row["uploaded_at"] is not None or row["seq"] != first + len(run):
            break
        run.append({n: row[n] for n in (*HASHED_FIELDS, "hash")})
        run[-1]["live"] = bool(run[-1]["live"])
    cps = list(
        read_rows(
            conn,
            "SELECT seq, time, hash, key_id, signature FROM "
            "checkpoints WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first, run[-1]["seq"]),
        )
    )
    return run, cps


def mark_run_uploaded(
    conn: sqlite3.Connection,
    first: int,
    last: int,
    at: str,
    ack: HubAck | None,
    head: SignedHead | None,
) -> int:
    """Mark first..last uploaded at ``at``; keep ``ack`` and ``head`` when higher than
    those held. Run inside the caller's transaction; returns how many were marked."""
    n = conn.execute(
        "UPDATE records SET uploaded_at = ? WHERE seq BETWEEN ? AND ? AND uploaded_at IS NULL",
        (at, first, last),
    ).rowcount
    keep_higher(conn, ACK_KEY, ack)
    keep_higher(conn, HEAD_KEY, head)
    return n
