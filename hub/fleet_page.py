"""The fleet page: every device's latest heartbeat, filtered, the bad ones marked.

``GET /fleet?show=all|silent|stale|failing|out_of_service&lang=th|en``. Read by the admin
and the auditor: a bearer token today, or a session of the hub's logins where they are
installed; ``fleet_access`` is the one check, used by ``GET /v1/devices`` too. Thai or
English per request (``appliance_hub.i18n``). Jinja escapes every value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext, lazy_gettext

from appliance.core.isotime import format_utc
from appliance_hub import i18n
from appliance_hub.context import hub

FILTERS = ("all", "silent", "stale", "failing", "out_of_service")
ROLES = ("admin", "auditor")
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"

# The filters' names and the words a heartbeat carries, as the page shows them; any other
# word a device sends is shown as it came. The two reason codes stay codes in English.
WORDS = {
    "all": lazy_gettext("all"),
    "silent": lazy_gettext("silent"),
    "stale": lazy_gettext("stale"),
    "failing": lazy_gettext("failing"),
    "out_of_service": lazy_gettext("out of service"),
    "trusted": lazy_gettext("trusted"),
    "untrusted": lazy_gettext("untrusted"),
    "ok": lazy_gettext("ok"),
    "error": lazy_gettext("error"),
    "none": lazy_gettext("none"),
    "never": lazy_gettext("never"),
    "unknown": lazy_gettext("unknown"),
    "kiosk-down": lazy_gettext("kiosk-down"),
    "failed": lazy_gettext("failed"),
    "DEVICE_DISABLED": lazy_gettext("DEVICE_DISABLED"),
    "SOFTWARE_OUTDATED": lazy_gettext("SOFTWARE_OUTDATED"),
}


def word(value: str) -> str:
    """``value`` in this request's language when it is one of ``WORDS``."""
    return str(WORDS[value]) if value in WORDS else value


def fleet_access(tokens: Iterable[str | None]) -> Callable[[], bool]:
    """The one check for reading the fleet: an admin/auditor bearer token, or a session
    of either role where the hub's logins are installed (``appliance_hub.auth``)."""
    digests = [hashlib.sha256(t.encode()).digest() for t in tokens if t]

    def allowed() -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = hashlib.sha256(header[len("Bearer ") :].strip().encode()).digest()
            # Compare with every token, so the time taken does not say which one matched.
            return sum(hmac.compare_digest(given, d) for d in digests) > 0
        if "hub_logins" in current_app.extensions:
            from appliance_hub.auth import current_session

            session = current_session()
            return session is not None and session.role in ROLES
        return False

    return allowed


def select(devices: list[dict[str, Any]], show: str) -> list[dict[str, Any]]:
    """The devices one filter shows (``out_of_service``: stopped by remote policy)."""
    if show == "all":
        return devices
    if show == "out_of_service":
        return [d for d in devices if d.get("out_of_service")]
    return [d for d in devices if d.get(show)]


def _age(seconds: Any) -> str:
    if seconds is None:
        return "-"
    hours = float(seconds) / 3600
    if hours >= 48:
        return gettext("%(days).1f d", days=hours / 24)
    return gettext("%(hours).1f h", hours=hours)


def rows(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each table cell shows (texts, not markup: the template escapes them)."""
    out = []
    for d in devices:
        marks = [m for m in ("silent", "stale", "failing") if d.get(m)]
        if d.get("out_of_service"):
            marks.append("out_of_service")
        out.append(
            {
                "device_id": d["device_id"],
                "last_seen": d["last_seen"],
                "software_version": d["software_version"] or "-",
                "trust": "-" if d["trust_version"] is None else str(d["trust_version"]),
                "trust_age": _age(d.get("trust_age_now_s")),
                "last_sync": word(d["last_sync_result"] or "never"),
                "last_sync_time": d.get("last_sync_time") or "",
                "backlog": "-" if d["audit_backlog"] is None else str(d["audit_backlog"]),
                "camera": word(str(d["camera"])),
                "clock": word("trusted" if d["clock_trusted"] else "untrusted"),
                "disk": f"{(d['disk_free_bytes'] or 0) / 2**30:.1f} GB",
                "uptime": _age(d["uptime_s"]),
                "out_of_service": word(d["out_of_service"]) if d.get("out_of_service") else "",
                "marks": marks,
                "chain_forks": d.get("chain_forks", 0),
                "audit_anomalies": d.get("audit_anomalies", 0),
            }
        )
    return out


bp = Blueprint("fleet_page", __name__)


@bp.get("/fleet")
def fleet_page() -> Any:
    h = hub()
    lang = i18n.current()
    if not h.fleet_reader():
        resp = Response(render_template("fleet/denied.html", lang=lang), status=401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
        return _headers(resp)
    show = request.args.get("show", "all")
    if show not in FILTERS:
        show = "all"
    now = h.clock()
    devices = h.fleet.devices(now)
    counts = {f: len(select(devices, f)) for f in FILTERS}
    page = render_template(
        "fleet/devices.html",
        lang=lang,
        show=show,
        word=word,
        filters=FILTERS,
        counts=counts,
        now=format_utc(now),
        rows=rows(select(devices, show)),
    )
    return _headers(Response(page))


def _headers(resp: Response) -> Response:
    """The hub's page headers with the fleet page's own CSP (inline styles)."""
    from appliance_hub.auth import security_headers

    return security_headers(resp, CSP)
