"""Retention of the audit log: its size on disk and the pruning of uploaded records.

Only records already uploaded are ever deleted, never the newest, and always up to a
signed checkpoint that stays, so the remaining chain still verifies from its anchor.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from appliance.audit.schema import read_meta, rollback


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes in use (pages not on the free list): what the size cap is measured in."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * conn.execute("PRAGMA page_size").fetchone()[0])


def pending_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM records WHERE uploaded_at IS NULL").fetchone()[0])


def prune_uploaded(
    conn: sqlite3.Connection,
    before: str | None,
    anchor: Callable[[int, str], None],
    *,
    acked_through: int,
) -> int:
    """Delete uploaded records (older than ``before``) up to a signed anchor checkpoint.

    Never the newest record, never one not yet uploaded, never one above
    ``acked_through`` (the seq the hub's checked, signed acknowledgement covers).
    ``anchor(seq, hash)`` signs a checkpoint at the last pruned seq when there is none; it
    stays, so ``verify`` can still anchor the first remaining record. Returns how many
    records were deleted.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        head = int(read_meta(conn, "head_seq") or 0)
        pending = conn.execute("SELECT min(seq) FROM records WHERE uploaded_at IS NULL").fetchone()[
            0
        ]
        limit = min(head, pending if pending is not None else head, acked_through + 1)
        query = "SELECT max(seq) FROM records WHERE seq < ?"
        params: list[Any] = [limit]
        if before is not None:
            query += " AND time < ?"
            params.append(before)
        target = conn.execute(query, params).fetchone()[0]
        if not target:
            conn.execute("COMMIT")
            return 0
        head_hash = conn.execute("SELECT hash FROM records WHERE seq = ?", (target,)).fetchone()[0]
        if not conn.execute("SELECT 1 FROM checkpoints WHERE seq = ?", (target,)).fetchone():
            anchor(target, head_hash)
        count = int(conn.execute("DELETE FROM records WHERE seq <= ?", (target,)).rowcount)
        conn.execute("DELETE FROM checkpoints WHERE seq < ?", (target,))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('pruned_through', ?)", (str(target),))
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return count
