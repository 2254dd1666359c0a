"""Schema step for the hub's logins: sessions every worker shares, and the access log.

Sessions live in the database, not in a worker's memory: under gunicorn a browser's next
request may reach another worker, and logout in one must end the session in all. The access
log records every auditor or admin access (who, when, from where, what query or export).
"""

from __future__ import annotations


def logins_step(postgres: bool) -> list[str]:
    """DDL of the step (``migrations.steps``)."""
    real = "DOUBLE PRECISION" if postgres else "REAL"
    return [
        "CREATE TABLE hub_sessions (sid_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, "
        f"role TEXT NOT NULL, csrf TEXT NOT NULL, started {real} NOT NULL, "
        f"seen {real} NOT NULL)",
        "CREATE TABLE auditor_access (id {} PRIMARY KEY, at TEXT NOT NULL, "
        "user_name TEXT NOT NULL, role TEXT NOT NULL, client TEXT NOT NULL, "
        "action TEXT NOT NULL, query TEXT NOT NULL)".format("BIGSERIAL" if postgres else "INTEGER"),
        "CREATE INDEX auditor_access_at ON auditor_access (at)",
    ]
