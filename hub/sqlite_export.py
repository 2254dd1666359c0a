"""The auditor's own copy: records exported as a SQLite file, ready for Datasette or the
``sqlite-utils`` command line.

Built with sqlite-utils (the hub's extra only: ADR 0009 keeps it off the device, and this
is the one module that imports it; the hub imports this module only when such an export is
asked for). The file holds ``records`` (the columns of the CSV and JSON lines exports,
keyed by device, log and seq, values exactly as hashed), indexes on time, verdict, reason
and licence type, a full-text index over ``reason`` (``sqlite-utils search FILE records
REVOKED``), and ``export_meta`` (when, by which hub, with which filters, how many). It is
written in a private temporary folder, streamed from an open handle and never kept.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from flask import Response, send_file

from appliance import __version__
from appliance_hub.store import RECORD_COLUMNS

COLUMNS = (*RECORD_COLUMNS, "received_at")
INTEGERS = frozenset({"seq", "trust_version", "live"})
INDEXED = (("time",), ("verdict",), ("reason",), ("licence_type",), ("device_id", "time"))
FTS_COLUMNS = ("reason",)
INSERT_BATCH = 1000
MIMETYPE = "application/vnd.sqlite3"


def write_export(
    path: Path,
    rows: Iterable[Mapping[str, Any]],
    filters: Mapping[str, Any],
    now: datetime | None = None,
) -> int:
    """Write ``rows`` to a new SQLite file at ``path``; how many records it holds."""
    db = sqlite_utils.Database(path)
    try:
        records = db.table("records")
        records.create(
            {c: int if c in INTEGERS else str for c in COLUMNS},
            pk=("device_id", "log_id", "seq"),
            not_null={"device_id", "log_id", "seq", "hash"},
        )
        count = 0

        def counted() -> Iterable[dict[str, Any]]:
            nonlocal count
            for row in rows:
                count += 1
                yield {c: row.get(c) for c in COLUMNS}

        records.insert_all(counted(), batch_size=INSERT_BATCH)
        for columns in INDEXED:
            records.create_index(columns)
        records.enable_fts(FTS_COLUMNS, create_triggers=False)
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        db.table("export_meta").insert_all(
            [
                {"key": "exported_at", "value": stamp},
                {"key": "hub_version", "value": __version__},
                {"key": "filters", "value": json.dumps(dict(filters), sort_keys=True)},
                {"key": "records", "value": str(count)},
                {"key": "columns", "value": ",".join(COLUMNS)},
            ],
            pk="key",
        )
        db.vacuum()
    finally:
        db.close()
    return count


def export_response(
    rows: Iterable[Mapping[str, Any]],
    filters: Mapping[str, Any],
    download_name: str = "audit-records.db",
) -> Response:
    """The export as a download: built in a private temporary folder, which is gone by the
    time the answer streams (the open handle keeps the file until it is read)."""
    folder = Path(tempfile.mkdtemp(prefix="hub-export-"))
    try:
        path = folder / "export.db"
        write_export(path, rows, filters)
        handle = path.open("rb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return send_file(
        handle, mimetype=MIMETYPE, as_attachment=True, download_name=download_name, max_age=0
    )
