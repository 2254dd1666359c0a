"""The hub's audit API: devices' signed batches in, records and completeness out.

- ``POST /v1/batches`` - a device's batch: the canonical JSON batch as the body, the
  device id in ``X-Appliance-Device`` and Ed25519 over the raw body in
  ``X-Appliance-Signature`` (``appliance.audit.signed_body``), checked with the key
  enrolled for that device (``{devices_dir}/{device_id}.pem``, written by ``appliance hub
  enrol``) before the body is parsed (``signed_requests``). Answers the acknowledgement
  the device waits for before marking records uploaded.
- ``GET /v1/records`` and ``GET /v1/integrity`` - for auditors, with
  ``Authorization: Bearer TOKEN``: records as JSON lines, CSV or a SQLite file
  (``sqlite_export``) (``device_id``, ``since``, ``until``, ``format``) and per-log
  completeness (gaps, forks, chain re-verified).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request

from appliance.audit.chain import checkpoint_message, iso_time
from appliance.audit.identity import DevicePublicKey
from appliance.core.errors import SyncError
from appliance.core.isotime import parse_instant
from appliance_hub import auth_access
from appliance_hub.batches import BATCH_TYPE, MAX_BATCH_RECORDS, check_shape, load_json
from appliance_hub.context import error, hub
from appliance_hub.errors import BatchConflict, BatchInvalid, RequestRefused
from appliance_hub.heads import signed_ack, verified_head
from appliance_hub.signed_requests import read_signed_body
from appliance_hub.spreadsheet import csv_chunks
from appliance_hub.store import RECORD_COLUMNS

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 16 * 2**20
UNAUTHENTICATED = "batch not accepted: unknown device or signature that does not verify"
DISABLED = (
    "batch not accepted: this device is disabled by policy (policy.disabled_devices); "
    "ask the fleet administrator to re-enable it"
)

bp = Blueprint("api", __name__)


@bp.post("/v1/batches")
def receive_batch() -> Any:
    h = hub()
    try:  # authenticated before anything parses the body (signed_requests)
        device_id, key, body = read_signed_body(
            request, h.registry, MAX_BATCH_BYTES, UNAUTHENTICATED
        )
    except RequestRefused as e:
        return error(e.status, str(e))
    if device_id in h.disabled_devices():  # after authentication: tells only the device
        log.warning("batch refused: device %s is disabled by policy", device_id)
        return error(403, DISABLED)
    try:
        batch = _parse_batch(body, device_id)
        check_shape(batch, MAX_BATCH_RECORDS)
        _check_checkpoints(key, batch)
        ack = h.store.ingest(batch, head=verified_head(key, batch.get("head"), device_id))
    except BatchInvalid as e:
        return error(400, str(e))
    except BatchConflict as e:
        log.error("device %s log %s: %s", device_id, batch.get("log_id"), e)
        return jsonify({"status": "conflict", "error": str(e)}), 409
    except SyncError as e:
        log.error("batch from %s not stored: %s", device_id, e)
        return error(503, "hub storage unavailable, retry later")
    if ack["gaps"]:
        log.info(
            "device %s log %s: records missing from seq %d",
            device_id,
            ack["log_id"],
            ack["gaps"][0][0],
        )
    return jsonify(signed_ack(h.ack_key, ack))


@bp.get("/v1/integrity")
def integrity() -> Any:
    if not _authorised():
        return error(401, "auditor token required")
    if not _logged("api_integrity"):
        return error(503, "access log unavailable, retry later")
    return jsonify({"logs": hub().store.integrity(request.args.get("device_id"))})


@bp.get("/v1/records")
def records() -> Any:
    if not _authorised():
        return error(401, "auditor token required")
    fmt = request.args.get("format", "jsonl")
    if fmt not in ("jsonl", "csv", "sqlite"):
        return error(400, "format must be jsonl, csv or sqlite")
    try:
        since, until = (_instant(request.args.get(k)) for k in ("since", "until"))
    except (ValueError, OverflowError, OSError):
        return error(400, "since and until must be ISO 8601 times with a zone")
    if not _logged(f"api_records_{fmt}"):
        return error(503, "access log unavailable, retry later")
    rows = hub().store.records(request.args.get("device_id"), since, until)
    if fmt == "sqlite":  # sqlite-utils: the hub's extra, imported only for this export
        from appliance_hub.sqlite_export import export_response

        return export_response(
            rows, {"device_id": request.args.get("device_id"), "since": since, "until": until}
        )
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Response(_lines(rows, fmt), mimetype=mimetype)


def _authorised() -> bool:
    digest = hub().auditor_digest
    header = request.headers.get("Authorization", "")
    if digest is None or not header.startswith("Bearer "):
        return False
    given = hashlib.sha256(header[len("Bearer ") :].strip().encode()).digest()
    return hmac.compare_digest(given, digest)


def _logged(action: str) -> bool:
    """Bearer-token reads go to the auditors' access log too; False: not written."""
    h = hub()
    refusals: tuple[type[BaseException], ...] = (SyncError, *h.store._errors())
    try:
        auth_access.record(
            h.store,
            h.clock(),
            "bearer-token",
            "auditor",
            request.remote_addr or "?",
            action,
            request.args.to_dict(),
        )
    except refusals as e:
        log.error("access log not written, %s refused: %s", action, type(e).__name__)
        return False
    return True


def _parse_batch(body: bytes | bytearray, device_id: str) -> dict[str, Any]:
    """The authenticated body as a batch of the device that signed it, the parse bounded."""
    batch = load_json(body, max_containers=2 * MAX_BATCH_RECORDS + 4)
    if not isinstance(batch, dict) or batch.get("type") != BATCH_TYPE:
        raise BatchInvalid("not an audit batch")
    if batch.get("device_id") != device_id:
        raise BatchInvalid("device_id differs from the device that signed the batch")
    return batch


def _check_checkpoints(key: DevicePublicKey, batch: dict[str, Any]) -> None:
    """Each checkpoint must be signed by the device key (shape already checked)."""
    for cp in batch.get("checkpoints", []):
        message = checkpoint_message(
            batch["device_id"], batch["log_id"], cp["seq"], cp["hash"], cp["time"]
        )
        try:
            valid = key.verify(base64.b64decode(cp["signature"], validate=True), message)
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise BatchInvalid(f"checkpoint at seq {cp['seq']}: signature invalid")


def _instant(value: str | None) -> str | None:
    """An ISO 8601 parameter in the records' own format, so text comparison orders by time."""
    if not value:
        return None
    return iso_time(parse_instant(value))


def _lines(rows: Iterator[dict[str, Any]], fmt: str) -> Iterator[str]:
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row) + "\n"
        return
    yield from csv_chunks(rows, (*RECORD_COLUMNS, "received_at"))
