"""The hub's fleet and operations endpoints: heartbeats in, the fleet out, health, metrics.

- ``POST /v1/heartbeats``: a device's signed heartbeat (appliance_hub.fleet).
- ``GET /v1/devices``: auditor or admin bearer token; ``?device_id=X`` adds its history.
  ``GET /fleet`` is the same, as a page (appliance_hub.fleet_page).
- ``GET /healthz``: 200 while the process answers.
- ``GET /readyz``: 200 when the database answers, else 503.
- ``GET /metrics``: Prometheus text; fleet gauges per device (nginx lets loopback only).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from appliance.core.errors import SyncError
from appliance_hub.batches import open_envelope
from appliance_hub.context import error, hub
from appliance_hub.errors import BatchInvalid, HeartbeatStale
from appliance_hub.fleet import MAX_HEARTBEAT_BYTES, Fleet, check_heartbeat
from appliance_hub.heads import verified_head

log = logging.getLogger(__name__)

UNAUTHENTICATED = "heartbeat not accepted: unknown device or signature that does not verify"


bp = Blueprint("fleet_api", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@bp.post("/v1/heartbeats")
def receive_heartbeat() -> Any:
    h = hub()
    if (request.content_length or 0) > MAX_HEARTBEAT_BYTES:
        return error(413, f"a heartbeat is at most {MAX_HEARTBEAT_BYTES} bytes")
    body = request.get_data(cache=False)
    if len(body) > MAX_HEARTBEAT_BYTES:
        return error(413, f"a heartbeat is at most {MAX_HEARTBEAT_BYTES} bytes")
    try:
        payload, signature, hb = _open(body)
    except BatchInvalid as e:
        return error(400, str(e))
    device_id = hb.get("device_id")
    key = h.registry.get(device_id) if isinstance(device_id, str) else None
    if key is None or not key.verify(signature, payload):
        log.info("heartbeat refused: %s", "bad signature" if key else "unknown device id")
        return error(401, UNAUTHENTICATED)
    try:
        checked = check_heartbeat(hb)
        h.fleet.record(
            checked,
            payload,
            h.clock(),
            head=verified_head(key, checked.get("audit_head"), str(device_id)),
        )
    except HeartbeatStale as e:
        return jsonify({"status": "stale", "error": str(e)}), 409
    except BatchInvalid as e:
        return error(400, str(e))
    except (SyncError, *h.store._errors()) as e:
        log.error("heartbeat from %s not stored: %s", device_id, e)
        return error(503, "hub storage unavailable, retry later")
    return jsonify({"status": "stored", "device_id": device_id})


@bp.get("/v1/devices")
def devices() -> Any:
    h = hub()
    if not h.fleet_reader():
        return error(401, "auditor or admin token required")
    listed = h.fleet.devices(h.clock())
    wanted = request.args.get("device_id")
    if wanted is not None:
        listed = [d for d in listed if d["device_id"] == wanted]
        for d in listed:
            d["history"] = h.fleet.history(wanted)
    for d in listed:
        d.pop("last_seen_epoch", None)
    return jsonify({"devices": listed})


@bp.get("/readyz")
def readyz() -> Any:
    store = hub().store
    try:
        version = store.ping()
    except (SyncError, *store._errors()) as e:
        log.error("not ready: %s", e)
        return jsonify({"status": "unavailable", "error": "database unreachable"}), 503
    return jsonify({"status": "ready", "schema_version": version})


@bp.get("/metrics")
def metrics() -> Response:
    h = hub()
    return Response(
        render_metrics(h.store, h.fleet, h.clock()), mimetype="text/plain; version=0.0.4"
    )


_PER_DEVICE = [
    (
        "appliance_hub_device_last_seen_timestamp_seconds",
        "When the hub last heard from the device (Unix time).",
        "last_seen_epoch",
    ),
    (
        "appliance_hub_device_trust_age_seconds",
        "Age of the device's trust data now (reported age plus time since).",
        "trust_age_now_s",
    ),
    ("appliance_hub_device_trust_version", "Installed trust data version.", "trust_version"),
    ("appliance_hub_device_audit_backlog", "Audit records not yet uploaded.", "audit_backlog"),
    (
        "appliance_hub_device_disk_free_bytes",
        "Free bytes on the state partition.",
        "disk_free_bytes",
    ),
    ("appliance_hub_device_uptime_seconds", "Uptime reported in the last heartbeat.", "uptime_s"),
    (
        "appliance_hub_device_clock_trusted",
        "1 when the device's clock is trusted.",
        "clock_trusted",
    ),
    (
        "appliance_hub_device_last_sync_ok",
        "1 when the device's last sync succeeded.",
        "last_sync_ok",
    ),
    (
        "appliance_hub_device_out_of_service",
        "1 while remote policy (disabled device, outdated software) stops the device.",
        "out_of_service_flag",
    ),
    ("appliance_hub_device_camera_ok", "1 when the camera works (or none is fitted).", "camera_ok"),
    ("appliance_hub_chain_forks", "Audit-chain forks held for the device.", "chain_forks"),
    (
        "appliance_hub_audit_anomalies",
        "Audit records the device wrote that are gone or out of order (cut log, replaced log, "
        "time going backwards).",
        "audit_anomalies",
    ),
]


def render_metrics(store: Any, fleet: Fleet, now: float) -> str:
    """Prometheus text format: hub health, fleet counts and per-device gauges."""
    out: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out.extend(f"{name}{labels} {_number(v)}" for labels, v in samples if v is not None)

    try:
        store.ping()
        devices = fleet.devices(now)
        records = store.count()
        up = 1
    except (SyncError, *store._errors()) as e:
        log.error("metrics without the database: %s", e)
        devices, records, up = [], None, 0
    gauge("appliance_hub_database_up", "1 when the hub's database answers.", [("", up)])
    gauge("appliance_hub_records", "Audit records held.", [("", records)])
    gauge("appliance_hub_devices", "Devices that sent a heartbeat.", [("", len(devices))])
    for flag in ("silent", "stale", "failing"):
        gauge(
            f"appliance_hub_devices_{flag}",
            f"Devices now {flag}.",
            [("", sum(1 for d in devices if d[flag]))],
        )
    for d in devices:
        d["last_sync_ok"] = (
            None if d["last_sync_result"] is None else int(d["last_sync_result"] == "ok")
        )
        d["camera_ok"] = int(d["camera"] in ("ok", "none"))
        d["clock_trusted"] = int(d["clock_trusted"])
        d["out_of_service_flag"] = int(d.get("out_of_service") is not None)
    for name, help_text, field in _PER_DEVICE:
        gauge(name, help_text, [(_labels(d["device_id"]), d[field]) for d in devices])
    return "\n".join(out) + "\n"


def _labels(device_id: str) -> str:
    escaped = device_id.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{device_id="{escaped}"}}'


def _number(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def _open(body: bytes) -> tuple[bytes, bytes, dict[str, Any]]:
    payload, signature, hb = open_envelope(body, max_containers=4)
    if not isinstance(hb, dict):
        raise BatchInvalid("not a heartbeat")
    return payload, signature, hb
