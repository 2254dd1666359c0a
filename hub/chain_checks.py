"""The hub's chain checks: a batch by itself, a batch against what is held, a stored log.

Pure functions over records, no database: ingest, the integrity report and the audit view
check chains with one implementation. A batch that differs from a record held at the same
seq, or whose neighbour's hash disagrees, is a fork (``BatchConflict``, its ``seq`` set);
a stored log is re-verified record by record, gaps and breaks listed, never held at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from appliance.audit.chain import genesis_hash, record_hash
from appliance_hub.batches import check_shape
from appliance_hub.errors import BatchConflict, BatchInvalid


def check_batch(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Shape, hashes and internal chain of a batch; returns its records."""
    check_shape(batch)
    records = batch["records"]
    device_id, log_id = batch["device_id"], batch["log_id"]
    first = batch["first_seq"]
    if first != records[0].get("seq") or batch.get("last_seq") != first + len(records) - 1:
        raise BatchInvalid("first_seq/last_seq do not match the records")
    prev = None
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or rec.get("seq") != first + i:
            raise BatchInvalid(f"record {i}: seq not contiguous")
        if rec.get("device_id") != device_id or rec.get("log_id") != log_id:
            raise BatchInvalid(f"seq {rec.get('seq')}: another device or log")
        if record_hash(rec) != rec.get("hash"):
            raise BatchInvalid(f"seq {rec['seq']}: contents do not match its hash")
        if prev is not None and rec.get("prev_hash") != prev:
            raise BatchInvalid(f"seq {rec['seq']}: chain broken within the batch")
        if rec["seq"] == 1 and rec.get("prev_hash") != genesis_hash(log_id):
            raise BatchInvalid("seq 1: does not start from the log's genesis hash")
        prev = rec["hash"]
    return records


def check_continuity(
    records: list[dict[str, Any]], held: dict[int, tuple[str, str, str]], first: int, last: int
) -> None:
    """``BatchConflict`` when the batch forks from ``held`` (seq: hash, prev_hash, time)."""
    for rec in records:
        if rec["seq"] in held and held[rec["seq"]][0] != rec["hash"]:
            raise _conflict(
                rec["seq"],
                f"seq {rec['seq']}: differs from the record held "
                "(fork: two different records with one seq)",
            )
    if first - 1 in held and held[first - 1][0] != records[0]["prev_hash"]:
        raise _conflict(first, f"seq {first}: does not follow the held seq {first - 1} (fork)")
    if last + 1 in held and held[last + 1][1] != records[-1]["hash"]:
        raise _conflict(last, f"seq {last}: the held seq {last + 1} does not follow it (fork)")


def verify_rows(log_id: str, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Recompute hashes and links of one log's stored records; list gaps and breaks.
    ``rows`` (in seq order) may be a generator, so a long log is never held at once."""
    gaps, broken, prev, first, count = [], [], None, None, 0
    for row in rows:
        count += 1
        first = row["seq"] if first is None else first
        seq = row["seq"]
        expected_prev = genesis_hash(log_id) if seq == 1 else None
        if prev is not None:
            if seq != prev["seq"] + 1:
                gaps.append([prev["seq"] + 1, seq - 1])
            else:
                expected_prev = prev["hash"]
        elif seq != 1:
            gaps.append([1, seq - 1])
        if record_hash(row) != row["hash"] or (
            expected_prev is not None and row["prev_hash"] != expected_prev
        ):
            broken.append(seq)
        prev = row
    return {
        "records": count,
        "first_seq": first,
        "last_seq": prev["seq"] if prev else None,
        "gaps": gaps,
        "broken": broken,
        "complete": not gaps and not broken,
    }


def _conflict(seq: int, message: str) -> BatchConflict:
    e = BatchConflict(message)
    e.seq = seq  # type: ignore[attr-defined]
    return e
