"""The auditor view's queries: logs with their chain state, records by filter, in pages.

Every query is bounded: records come in keyset pages (after a cursor of device, log and
seq, in primary-key order) of at most ``MAX_PAGE`` rows, each page its own short
transaction, so a search or an export of millions of records never holds more than one
page in memory nor one transaction open while the browser reads. Filters are exact matches
(device, verdict, reason) and a half-open time range; records hold no personal data (hashes
of licence numbers only, as the devices upload them).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from appliance.audit.chain import iso_time
from appliance.core.isotime import parse_instant
from appliance_hub.chain_checks import verify_rows
from appliance_hub.errors import QueryInvalid
from appliance_hub.heads import TRUNCATION_KINDS, head_summary
from appliance_hub.store import RECORD_COLUMNS

MAX_PAGE = 500
EXPORT_PAGE = 1000
MAX_LOGS = 500
MAX_FILTER_CHARS = 128
COLUMNS = (*RECORD_COLUMNS, "received_at")


@dataclass(frozen=True)
class Filters:
    device_id: str | None = None
    since: str | None = None
    until: str | None = None
    verdict: str | None = None
    reason: str | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> Filters:
        """Filters from query parameters; times normalised to the records' own format."""
        values: dict[str, str | None] = {}
        for name in ("device_id", "since", "until", "verdict", "reason"):
            value = (args.get(name) or "").strip()
            if len(value) > MAX_FILTER_CHARS or "\x00" in value:
                raise QueryInvalid(f"{name}: at most {MAX_FILTER_CHARS} characters")
            values[name] = value or None
        for name in ("since", "until"):
            if values[name] is not None:
                try:
                    values[name] = iso_time(parse_instant(values[name]))
                except (ValueError, OverflowError, OSError) as e:
                    raise QueryInvalid(f"{name}: an ISO 8601 time with a zone") from e
        return cls(**values)

    def as_query(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def encode_cursor(row: Mapping[str, Any]) -> str:
    raw = json.dumps([row["device_id"], row["log_id"], row["seq"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[str, str, int] | None:
    """The (device, log, seq) a page starts after; QueryInvalid when it is not ours."""
    if not text:
        return None
    try:
        if len(text) > 1024:
            raise ValueError("too long")
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        device, log, seq = value
        if not (isinstance(device, str) and isinstance(log, str) and type(seq) is int):
            raise ValueError("wrong types")
    except (ValueError, TypeError, binascii.Error) as e:
        raise QueryInvalid("after: not a cursor from this view") from e
    return device, log, seq


def page(
    store: Any, filters: Filters, after: tuple[str, str, int] | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` (capped at MAX_PAGE) records after ``after``, and the next cursor."""
    limit = max(1, min(int(limit), MAX_PAGE, EXPORT_PAGE))
    clauses: list[str] = []
    params: list[str | int] = []
    for clause, value in (
        ("device_id = ?", filters.device_id),
        ("time >= ?", filters.since),
        ("time < ?", filters.until),
        ("verdict = ?", filters.verdict),
        ("reason = ?", filters.reason),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if after is not None:
        clauses.append(
            "(device_id > ? OR (device_id = ? AND (log_id > ? OR (log_id = ? AND seq > ?))))"
        )
        params += [after[0], after[0], after[1], after[1], after[2]]
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    with store._tx() as cur:
        cur.execute(
            f"SELECT {', '.join(COLUMNS)} FROM records {where} "  # noqa: S608
            "ORDER BY device_id, log_id, seq LIMIT ?",
            (*params, limit + 1),
        )
        fetched = cur.fetchall()
    rows = [_row(values) for values in fetched[:limit]]
    more = len(fetched) > limit
    return rows, encode_cursor(rows[-1]) if more else None


def every(store: Any, filters: Filters) -> Iterator[dict[str, Any]]:
    """All matching records, one bounded page at a time (for exports)."""
    after = None
    while True:
        rows, cursor = page(store, filters, after, EXPORT_PAGE)
        yield from rows
        if cursor is None:
            return
        after = decode_cursor(cursor)


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(COLUMNS, values, strict=True))
    row["live"] = bool(row["live"])
    return row


def logs(store: Any, device_id: str | None = None) -> list[dict[str, Any]]:
    """Per device and log: what ingest knows (complete through, highest seq, gaps), forks
    held, and the last signed checkpoint; at most MAX_LOGS, in device order."""
    where, params = ("WHERE l.device_id = ?", [device_id]) if device_id else ("", [])
    with store._tx() as cur:
        cur.execute(
            "SELECT l.device_id, l.log_id, l.first_seen, l.contiguous_through, l.max_seq, "  # noqa: S608
            "(SELECT count(*) FROM anomalies a WHERE a.device_id = l.device_id AND "
            "a.log_id = l.log_id AND a.kind = 'fork'), "
            "(SELECT max(c.seq) FROM checkpoints c WHERE c.device_id = l.device_id AND "
            "c.log_id = l.log_id), "
            # What the device signed it had, and records gone or out of order (heads.py).
            "(SELECT h.seq FROM log_heads h WHERE h.device_id = l.device_id AND "
            "h.log_id = l.log_id), "
            "(SELECT count(*) FROM anomalies a WHERE a.device_id = l.device_id AND "
            f"a.log_id = l.log_id AND a.kind IN ({', '.join('?' * len(TRUNCATION_KINDS))})) "
            f"FROM logs l {where} ORDER BY l.device_id, l.log_id "
            "LIMIT ?",
            (*TRUNCATION_KINDS, *params, MAX_LOGS + 1),
        )
        rows = cur.fetchall()
        out = []
        for dev, lid, first_seen, through, max_seq, forks, cp_seq, head, cut in rows[:MAX_LOGS]:
            checkpoint = None
            if cp_seq is not None:
                cur.execute(
                    "SELECT seq, time FROM checkpoints WHERE device_id = ? AND "
                    "log_id = ? AND seq = ?",
                    (dev, lid, cp_seq),
                )
                seq, at = cur.fetchone()
                checkpoint = {"seq": seq, "time": at}
            out.append(
                {
                    "device_id": dev,
                    "log_id": lid,
                    "first_seen": first_seen,
                    "contiguous_through": through,
                    "max_seq": max_seq,
                    "gaps": through < max(max_seq, head or 0) or cut > 0,
                    "forks": forks,
                    "last_checkpoint": checkpoint,
                }
            )
    return out


def verify_log(store: Any, device_id: str, log_id: str) -> dict[str, Any]:
    """The chain of one log re-verified from the stored records, read in pages; with the
    forks held for it."""

    def rows() -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            with store._tx() as cur:
                cur.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM records "  # noqa: S608
                    "WHERE device_id = ? AND log_id = ? AND seq > ? ORDER BY seq "
                    "LIMIT ?",
                    (device_id, log_id, after, EXPORT_PAGE),
                )
                fetched = cur.fetchall()
            yield from (_row(v) for v in fetched)
            if len(fetched) < EXPORT_PAGE:
                return
            after = fetched[-1][COLUMNS.index("seq")]

    result = verify_rows(log_id, rows())
    with store._tx() as cur:
        cur.execute(
            "SELECT seq, detail, received_at FROM anomalies WHERE device_id = ? AND "
            "log_id = ? AND kind = 'fork' ORDER BY received_at LIMIT 100",
            (device_id, log_id),
        )
        result["forks"] = [
            dict(zip(("seq", "detail", "received_at"), r, strict=True)) for r in cur.fetchall()
        ]
        head = head_summary(cur, device_id, log_id)
        cur.execute(
            "SELECT count(*) FROM anomalies WHERE device_id = ? AND log_id = ? AND "  # noqa: S608
            f"kind IN ({', '.join('?' * len(TRUNCATION_KINDS))})",
            (device_id, log_id, *TRUNCATION_KINDS),
        )
        cut = int(cur.fetchone()[0])
    held = result["last_seq"] or 0
    # Records the device signed it had that never arrived, or gone (appliance_hub.heads).
    if (head is not None and head["seq"] > held) or cut:
        result["complete"] = False
    result.update(device_id=device_id, log_id=log_id)
    return result
