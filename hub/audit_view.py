"""The State Audit Office's screens: chains per device and log, records, exports.

Behind an auditor (or admin) login (``auth``). Every page, search and export is written to
the access log before anything is shown. Pages are Thai or English (``i18n``)
and rendered by Jinja with autoescape, so text a device uploaded (reasons, profiles) is
shown, never run. Exports stream in bounded pages (``audit_view_query``): JSONL carries the
records exactly as hashed; CSV is for spreadsheets, its formula-like cells defused by the
hub's one CSV writer (``spreadsheet``), the same as the API's export.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request

from appliance_hub import audit_view_query as query
from appliance_hub import auth, auth_access
from appliance_hub.errors import QueryInvalid
from appliance_hub.i18n import current
from appliance_hub.spreadsheet import csv_chunks

log = logging.getLogger(__name__)

bp = Blueprint("audit_view", __name__, url_prefix="/audit")
READERS = ("auditor", "admin")
DEFAULT_PAGE = 100


def _store() -> Any:
    return current_app.extensions["hub_logins"]["store"]


def _page(template: str, status: int = 200, **values: Any) -> Any:
    response = current_app.make_response(
        (
            render_template(template, lang=current(), hub_session=auth.current_session(), **values),
            status,
        )
    )
    return auth.page_headers(response)


@bp.errorhandler(QueryInvalid)
def _invalid(e: QueryInvalid) -> Any:
    return _page("auditor/error.html", 400, message=str(e))


@bp.get("/")
@auth.login_required(*READERS)
def logs() -> Any:
    filters = query.Filters.parse(request.args)
    auth.access("logs", filters.as_query())
    listed = query.logs(_store(), filters.device_id)
    return _page("auditor/logs.html", logs=listed, filters=filters, max_logs=query.MAX_LOGS)


@bp.get("/chain")
@auth.login_required(*READERS)
def chain() -> Any:
    device_id, log_id = request.args.get("device_id", ""), request.args.get("log_id", "")
    if not device_id or not log_id or len(device_id) > 128 or len(log_id) > 128:
        raise QueryInvalid("device_id and log_id are required")
    auth.access("chain", {"device_id": device_id, "log_id": log_id})
    return _page("auditor/chain.html", result=query.verify_log(_store(), device_id, log_id))


@bp.get("/records")
@auth.login_required(*READERS)
def records() -> Any:
    filters = query.Filters.parse(request.args)
    after = query.decode_cursor(request.args.get("after"))
    limit = _limit(request.args.get("limit"))
    auth.access(
        "records", {**filters.as_query(), "after": request.args.get("after", ""), "limit": limit}
    )
    rows, cursor = query.page(_store(), filters, after, limit)
    return _page("auditor/records.html", rows=rows, cursor=cursor, filters=filters, limit=limit)


@bp.get("/export.<fmt>")
@auth.login_required(*READERS)
def export(fmt: str) -> Any:
    if fmt not in ("csv", "jsonl", "sqlite"):
        abort(404)
    filters = query.Filters.parse(request.args)
    auth.access(f"export_{fmt}", filters.as_query())
    rows = query.every(_store(), filters)
    if fmt == "sqlite":  # sqlite-utils: the hub's extra, imported only for this export
        from appliance_hub.sqlite_export import export_response

        return auth.page_headers(export_response(rows, filters.as_query()))
    body = (
        csv_chunks(rows, query.COLUMNS)
        if fmt == "csv"
        else (json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    )
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-records.{fmt}"'
    return auth.page_headers(response)


@bp.get("/access")
@auth.login_required("admin")
def access_log() -> Any:
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) < 19 else None
    auth.access("access_log", {"before": before})
    entries = list(auth_access.latest(_store(), auth_access.PAGE, before_id))
    older = entries[-1]["id"] if len(entries) == auth_access.PAGE else None
    return _page("auditor/access.html", entries=entries, older=older)


def _limit(text: str | None) -> int:
    try:
        value = int(text or DEFAULT_PAGE)
    except ValueError as e:
        raise QueryInvalid("limit: a whole number") from e
    return max(1, min(value, query.MAX_PAGE))


def register_screens(app: Any, store: Any, logins: auth.HubLogins) -> None:
    """The login pages and the auditor's view on the hub's app (``create_app``)."""
    auth.install(app, store, logins)
    app.register_blueprint(bp)
