"""The fleet page: every device's latest heartbeat, filtered, the bad ones marked.

``GET /fleet?show=all|silent|stale|failing|out_of_service&lang=th|en``. Read by the admin
and the auditor: a bearer token today, or a session of the hub's logins where they are
installed; ``fleet_access`` is the one check, used by ``GET /v1/devices`` too. Thai or
English per request (``?lang=``, else Accept-Language, else English): the hub has no Babel
catalogue, so the page's few texts are a table here. Jinja escapes every value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, render_template, request

from appliance.core.isotime import format_utc
from appliance_hub.fleet import Fleet

FILTERS = ("all", "silent", "stale", "failing", "out_of_service")
ROLES = ("admin", "auditor")
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"

_TH = {
    "Fleet": "อุปกรณ์ทั้งหมด",
    "all": "ทั้งหมด", "silent": "เงียบ", "stale": "ข้อมูลเก่า", "failing": "ขัดข้อง",
    "out_of_service": "หยุดให้บริการ",
    "Device": "อุปกรณ์", "Last seen": "ติดต่อล่าสุด", "Software": "ซอฟต์แวร์",
    "Trust data": "ข้อมูลความเชื่อถือ", "age": "อายุ", "Last sync": "ซิงก์ล่าสุด",
    "Audit backlog": "บันทึกรอส่ง", "Camera": "กล้อง", "Clock": "นาฬิกา",
    "Disk free": "พื้นที่ว่าง", "Uptime": "เวลาทำงาน", "Marks": "สถานะ",
    "trusted": "เชื่อถือได้", "untrusted": "ไม่น่าเชื่อถือ", "ok": "ปกติ",
    "error": "ผิดพลาด", "none": "ไม่มี", "never": "ยังไม่เคย", "unknown": "ไม่ทราบ",
    "kiosk-down": "ตู้ไม่ทำงาน", "failed": "เสีย",
    "DEVICE_DISABLED": "อุปกรณ์ถูกระงับ", "SOFTWARE_OUTDATED": "ซอฟต์แวร์ล้าสมัย",
    "No device matches.": "ไม่มีอุปกรณ์ที่ตรงกับตัวกรอง",
    "devices": "เครื่อง", "h": "ชม.", "d": "วัน", "GB": "GB",
    "Sign in as an administrator or auditor.": "โปรดเข้าสู่ระบบในฐานะผู้ดูแลหรือผู้ตรวจสอบ",
}


def language() -> str:
    """``?lang=`` when it names one, else the browser's first of Thai/English, else English."""
    asked = request.args.get("lang")
    if asked in ("th", "en"):
        return asked
    return request.accept_languages.best_match(["en", "th"], default="en") or "en"


def translator(lang: str) -> Callable[[str], str]:
    return (lambda text: _TH.get(text, text)) if lang == "th" else (lambda text: text)


def fleet_access(tokens: Iterable[str | None]) -> Callable[[], bool]:
    """The one check for reading the fleet: an admin/auditor bearer token, or a session
    of either role where the hub's logins are installed (``appliance_hub.auth``)."""
    digests = [hashlib.sha256(t.encode()).digest() for t in tokens if t]

    def allowed() -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = hashlib.sha256(header[len("Bearer "):].strip().encode()).digest()
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


def _age(seconds: Any, _: Callable[[str], str]) -> str:
    if seconds is None:
        return "-"
    hours = float(seconds) / 3600
    return f"{hours / 24:.1f} {_('d')}" if hours >= 48 else f"{hours:.1f} {_('h')}"


def rows(devices: list[dict[str, Any]], _: Callable[[str], str]) -> list[dict[str, Any]]:
    """What each table cell shows (texts, not markup: the template escapes them)."""
    out = []
    for d in devices:
        marks = [m for m in ("silent", "stale", "failing") if d.get(m)]
        if d.get("out_of_service"):
            marks.append("out_of_service")
        out.append({
            "device_id": d["device_id"],
            "last_seen": d["last_seen"],
            "software_version": d["software_version"] or "-",
            "trust": "-" if d["trust_version"] is None else str(d["trust_version"]),
            "trust_age": _age(d.get("trust_age_now_s"), _),
            "last_sync": _(d["last_sync_result"] or "never"),
            "last_sync_time": d.get("last_sync_time") or "",
            "backlog": "-" if d["audit_backlog"] is None else str(d["audit_backlog"]),
            "camera": _(str(d["camera"])),
            "clock": _("trusted" if d["clock_trusted"] else "untrusted"),
            "disk": f"{(d['disk_free_bytes'] or 0) / 2**30:.1f} {_('GB')}",
            "uptime": _age(d["uptime_s"], _),
            "out_of_service": _(d["out_of_service"]) if d.get("out_of_service") else "",
            "marks": marks,
            "chain_forks": d.get("chain_forks", 0),
            "audit_anomalies": d.get("audit_anomalies", 0),
        })
    return out


def register_fleet_page(app: Flask, fleet: Fleet, allowed: Callable[[], bool],
                        clock: Callable[[], float]) -> None:
    """Add ``GET /fleet`` to the hub's app; ``allowed`` is ``fleet_access``'s check."""

    @app.get("/fleet")
    def fleet_page() -> Any:
        lang = language()
        _ = translator(lang)
        if not allowed():
            resp = Response(render_template("fleet/denied.html", _=_, lang=lang), status=401)
            resp.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
            return _headers(resp)
        show = request.args.get("show", "all")
        if show not in FILTERS:
            show = "all"
        now = clock()
        devices = fleet.devices(now)
        counts = {f: len(select(devices, f)) for f in FILTERS}
        page = render_template("fleet/devices.html", _=_, lang=lang, show=show,
                               filters=FILTERS, counts=counts, now=format_utc(now),
                               rows=rows(select(devices, show), _))
        return _headers(Response(page))


def _headers(resp: Response) -> Response:
    """The hub's page headers with the fleet page's own CSP (inline styles)."""
    from appliance_hub.auth import security_headers

    return security_headers(resp, CSP)
