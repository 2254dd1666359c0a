"""Device health for people (``/status``) and machines (``/healthz``, ``/api/*``, ``/metrics``).

Nothing here carries personal data: verdict lists hold outcome, reason, type and issuer only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from appliance.port.interface import event_public
from appliance_web import faults, port_of, views

bp = Blueprint("status", __name__)
MAX_API_VERDICTS = 500


def full_status() -> dict[str, Any]:
    out = dict(port_of(current_app).status())
    out["system"] = current_app.extensions["system_info"]()
    return out


def problems(status: dict[str, Any]) -> list[str]:
    """Machine-readable reasons the device cannot give PASS verdicts right now, worst
    first (the cause only: a stopped kiosk is not also unreadable trust data)."""
    return [f.code for f in faults.current(status) if f.blocking]


@bp.get("/status")
def page() -> str:
    """The worst current fault is the headline; "all fine" only when nothing is wrong."""
    status = full_status()
    rows = port_of(current_app).verdicts_per_hour(24)
    return render_template(
        "status.html", s=status, faults=faults.current(status), chart=views.chart(rows)
    )


@bp.get("/healthz")
def healthz() -> Any:
    status = full_status()
    found = problems(status)
    body = {
        "status": "degraded" if found else "ok",
        "problems": found,
        "version": status["software"]["version"],
    }
    return jsonify(body), (503 if found else 200)


@bp.get("/api/status")
def api_status() -> Any:
    return jsonify(full_status())


@bp.get("/api/verdicts")
def api_verdicts() -> Any:
    try:
        limit = int(request.args.get("limit", "20"))
    except ValueError:
        limit = 20
    limit = max(0, min(limit, MAX_API_VERDICTS))
    events = port_of(current_app).recent_verdicts(limit)
    return jsonify({"verdicts": [event_public(e) for e in events]})


def _label(value: Any) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(int(value))


@bp.get("/metrics")
def metrics() -> Response:
    s = full_status()
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, Any]]) -> None:
        values = [(labels, _num(v)) for labels, v in samples]
        values = [(labels, v) for labels, v in values if v is not None]
        if not values:
            return
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {v}" for labels, v in values)

    dev = s.get("device") or {}
    metric(
        "appliance_info",
        "gauge",
        "Software version and device identity.",
        [
            (
                f'{{version="{_label(s["software"]["version"])}",device="{_label(dev.get("id"))}",'
                f'mode="{_label(dev.get("mode"))}"}}',
                1,
            )
        ],
    )
    metric(
        "appliance_verdicts_total",
        "counter",
        "Verdicts since the web screen started.",
        [(f'{{outcome="{o}"}}', n) for o, n in (s.get("verdicts") or {}).items()],
    )
    trust, clock = s.get("trust") or {}, s.get("clock") or {}
    camera, audit, sysinfo = s.get("camera") or {}, s.get("audit") or {}, s.get("system") or {}
    metric(
        "appliance_trust_version",
        "gauge",
        "Version of the installed trust data.",
        [("", trust.get("version"))],
    )
    metric(
        "appliance_trust_published_timestamp_seconds",
        "gauge",
        "Publication time of the installed trust data.",
        [("", trust.get("published_at"))],
    )
    metric(
        "appliance_trust_expires_timestamp_seconds",
        "gauge",
        "Expiry of the installed trust data.",
        [("", trust.get("expires_at"))],
    )
    metric(
        "appliance_trust_age_seconds",
        "gauge",
        "Age of the installed trust data.",
        [("", trust.get("age_s"))],
    )
    metric(
        "appliance_trust_last_sync_timestamp_seconds",
        "gauge",
        "Last successful sync.",
        [("", trust.get("last_sync_at"))],
    )
    metric(
        "appliance_clock_trusted",
        "gauge",
        "1 when the clock is above the time floor.",
        [("", clock.get("trusted"))],
    )
    metric(
        "appliance_camera_fps",
        "gauge",
        "Frames per second read from the camera.",
        [("", camera.get("fps"))],
    )
    metric(
        "appliance_camera_last_frame_timestamp_seconds",
        "gauge",
        "Time of the last frame.",
        [("", camera.get("last_frame_at"))],
    )
    metric(
        "appliance_audit_pending_records",
        "gauge",
        "Audit records waiting for upload.",
        [("", audit.get("pending"))],
    )
    metric(
        "appliance_audit_last_upload_timestamp_seconds",
        "gauge",
        "Last audit upload.",
        [("", audit.get("last_upload_at"))],
    )
    metric(
        "appliance_audit_fault",
        "gauge",
        "1 while the audit log cannot be written.",
        [("", bool(audit.get("fault")))],
    )
    metric(
        "appliance_verdicts_dropped_total",
        "counter",
        "Inputs over the per-minute verdict cap: no verdict, no audit record.",
        [("", audit.get("verdicts_dropped"))],
    )
    metric(
        "appliance_cpu_temperature_celsius",
        "gauge",
        "CPU temperature.",
        [("", sysinfo.get("cpu_temperature_c"))],
    )
    throttled = sysinfo.get("throttled") or {}
    metric(
        "appliance_throttled_flags",
        "gauge",
        "vcgencmd get_throttled bit field.",
        [("", throttled.get("value"))],
    )
    diskinfo = sysinfo.get("disk") or {}
    metric(
        "appliance_disk_free_bytes",
        "gauge",
        "Free bytes on the state partition.",
        [("", diskinfo.get("free_bytes"))],
    )
    metric(
        "appliance_health_problems",
        "gauge",
        "Number of health problems (see /healthz).",
        [("", len(problems(s)))],
    )
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4; charset=utf-8")
