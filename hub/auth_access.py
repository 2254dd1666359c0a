"""The auditors' access log: every login, view, search and export, in the hub's database.

Who (account and role), when (UTC), from where (client address) and what (the action and
its query parameters as JSON). The State Audit Office can then audit its own auditors. A
failure to write the entry refuses the access (no unlogged access).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from appliance.core.isotime import format_utc

MAX_QUERY_CHARS = 2000
PAGE = 200


def record(
    store: Any, now: float, user: str, role: str, client: str, action: str, query: Mapping[str, Any]
) -> None:
    """Write one access entry; raises the store's error when it cannot."""
    text = json.dumps(dict(query), sort_keys=True, ensure_ascii=False)[:MAX_QUERY_CHARS]
    with store._tx() as cur:
        cur.execute(
            "INSERT INTO auditor_access (at, user_name, role, client, action, query) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (format_utc(now), user[:64], role[:16], client[:64], action[:32], text),
        )


def latest(store: Any, limit: int = PAGE, before_id: int | None = None) -> Iterator[dict[str, Any]]:
    """Entries newest first, ``limit`` of them, older than ``before_id`` when given."""
    where, params = ("WHERE id < ?", [before_id]) if before_id is not None else ("", [])
    with store._tx() as cur:
        cur.execute(
            "SELECT id, at, user_name, role, client, action, query "  # noqa: S608
            f"FROM auditor_access {where} ORDER BY id DESC LIMIT ?",
            (*params, int(limit)),
        )
        rows = cur.fetchall()
    for row in rows:
        yield dict(zip(("id", "at", "user", "role", "client", "action", "query"), row, strict=True))
