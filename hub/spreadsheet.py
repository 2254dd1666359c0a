"""The hub's one CSV writer, for the auditor screen's export and the API's ``format=csv``.

CSV is for spreadsheets, so a cell a spreadsheet would run as a formula (``=``, ``+``,
``-``, ``@``, tab, CR first) is prefixed with ``'``: device-uploaded text such as
``=HYPERLINK(...)`` is shown, never evaluated. The API's export used to pass such cells
through while the screen's defused them (issue 21, finding 12); both now call
``csv_chunks``. JSON lines keep the records exactly as hashed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK_CHARS = 64 * 1024


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_chunks(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    """A header and one defused line per row, streamed in chunks of about 64 KiB."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([spreadsheet_safe(row.get(c)) for c in columns])
        if buf.tell() > CHUNK_CHARS:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
