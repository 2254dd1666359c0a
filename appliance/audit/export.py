"""Audit export formats: CSV with a header, or JSON lines (the auditor's tools read both).

The rows are the export fields of ``appliance.audit.chain``: no personal data, only keyed
hashes of licence numbers and credential ids (docs/adr/0005). The one export of the
device: ``appliance audit export`` and the admin screen's download (``port_export``, for
``run`` and the demo alike) both go through ``write_records``.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from typing import IO, Any, Protocol

from appliance.audit.chain import EXPORT_FIELDS, iso_time
from appliance.core.errors import AuditError

FORMATS = ("csv", "jsonl")


def record_writer(out: IO[str], fmt: str) -> Callable[[dict[str, Any]], None]:
    """A function writing one exported row to ``out`` (CSV: the header is written now).

    Raises ``AuditError`` for an unknown format, before anything is read or written.
    """
    if fmt not in FORMATS:
        raise AuditError(f"unknown export format {fmt!r}: use csv or jsonl")
    if fmt == "csv":
        writer = csv.DictWriter(out, EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()

        def write_csv(row: dict[str, Any]) -> None:
            writer.writerow({**row, "live": bool(row["live"])})

        return write_csv

    def write_json(row: dict[str, Any]) -> None:
        out.write(json.dumps({**row, "live": bool(row["live"])}, sort_keys=False) + "\n")

    return write_json


def write_records(
    conn: sqlite3.Connection,
    writer: Callable[[dict[str, Any]], None],
    since: float | None,
    until: float | None = None,
) -> int:
    """Every record (``since`` <= time < ``until``) in seq order through ``writer``; how many.

    Times are compared as stored: ``iso_time`` text of fixed width, which sorts as time.
    """
    sql, params = f"SELECT {', '.join(EXPORT_FIELDS)} FROM records", []  # noqa: S608
    where = []
    if since is not None:
        where.append("time >= ?")
        params.append(iso_time(since))
    if until is not None:
        where.append("time < ?")
        params.append(iso_time(until))
    if where:
        sql += " WHERE " + " AND ".join(where)
    cur = conn.execute(sql + " ORDER BY seq", params)
    names = [d[0] for d in cur.description]
    n = 0
    for values in cur:
        writer(dict(zip(names, values, strict=True)))
        n += 1
    return n


class Exportable(Protocol):
    def export(
        self,
        out: IO[str],
        *,
        since: float | None = None,
        until: float | None = None,
        fmt: str = "jsonl",
    ) -> int: ...


def port_export(audit: Exportable) -> Callable[[float | None, float | None], bytes]:
    """The kiosk port's ``export``: JSON lines of the records in [since, until)."""

    def export(since: float | None, until: float | None) -> bytes:
        out = io.StringIO()
        audit.export(out, since=since, until=until, fmt="jsonl")
        return out.getvalue().encode("utf-8")

    return export
