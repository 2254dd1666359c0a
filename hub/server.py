"""The audit hub: receives devices' signed batches, keeps each record once, serves auditors.

A small Flask application (``create_app``) for any WSGI server; ``appliance hub serve``
runs it with the bounded threaded server (``appliance.platform.bounded_server``). Endpoints:

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
import re
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from appliance.audit.chain import checkpoint_message, iso_time
from appliance.audit.head import HubSigner
from appliance.audit.identity import DevicePublicKey
from appliance.core.errors import DeviceKeyError, SyncError
from appliance.core.isotime import parse_instant
from appliance.platform.files import write_atomic
from appliance_hub import auth_access
from appliance_hub.audit_view import register_screens
from appliance_hub.auth import HubLogins
from appliance_hub.batches import BATCH_TYPE, MAX_BATCH_RECORDS, check_shape, load_json
from appliance_hub.errors import BatchConflict, BatchInvalid, RequestRefused
from appliance_hub.fleet_api import register_fleet
from appliance_hub.heads import signed_ack, verified_head
from appliance_hub.signed_requests import read_signed_body
from appliance_hub.spreadsheet import csv_chunks
from appliance_hub.store import RECORD_COLUMNS, HubStore

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 16 * 2**20
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UNAUTHENTICATED = "batch not accepted: unknown device or signature that does not verify"
DISABLED = ("batch not accepted: this device is disabled by policy (policy.disabled_devices); "
            "ask the fleet administrator to re-enable it")


class DeviceRegistry:
    """Enrolled device public keys, one PEM file per device id."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, tuple[float, DevicePublicKey]] = {}

    def path(self, device_id: str) -> Path:
        if not DEVICE_ID.fullmatch(device_id):
            raise SyncError(f"invalid device id {device_id!r}")
        return self.directory / f"{device_id}.pem"

    def enrol(self, device_id: str, pem: bytes | str) -> DevicePublicKey:
        key = DevicePublicKey.from_pem(pem, f"public key of {device_id}")
        path = self.path(device_id)
        write_atomic(path, key.pem.encode(), make_parents=True)
        return key

    def get(self, device_id: str) -> DevicePublicKey | None:
        try:
            path = self.path(device_id)
            mtime = path.stat().st_mtime
        except (SyncError, OSError):
            return None
        cached = self._cache.get(device_id)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            key = DevicePublicKey.from_pem(path.read_bytes(), str(path))
        except (OSError, DeviceKeyError) as e:
            log.error("enrolled key for %s unusable: %s", device_id, e)
            return None
        self._cache[device_id] = (mtime, key)
        return key


def create_app(store: HubStore, devices_dir: Path, auditor_token: str | None,
               admin_token: str | None = None,
               clock: Callable[[], float] = time.time,
               disabled_devices: Callable[[], Collection[str]] = frozenset,
               logins: HubLogins | None = None, trusted_proxies: int = 0,
               ack_key: HubSigner | None = None) -> Flask:
    """``disabled_devices``: ids whose uploads are refused (403), from ``policy.py``.
    ``ack_key``: the hub's key; it signs every acknowledgement (``appliance_hub.heads``),
    and devices, which pin its public half, mark nothing uploaded without that signature.
    ``logins``: the admin/auditor screens (``auth``, ``audit_view``); ``trusted_proxies``:
    reverse proxies in front whose X-Forwarded-For names the client (nginx: 1)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BATCH_BYTES
    if trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies)  # type: ignore[method-assign]
    if logins is not None:
        register_screens(app, store, logins)
    registry = DeviceRegistry(devices_dir)
    register_fleet(app, store, registry, (auditor_token, admin_token), clock)
    token_digest = hashlib.sha256(auditor_token.encode()).digest() if auditor_token else None

    def error(status: int, message: str) -> tuple[Response, int]:
        return jsonify({"status": "error", "error": message}), status

    def authorised() -> bool:
        header = request.headers.get("Authorization", "")
        if token_digest is None or not header.startswith("Bearer "):
            return False
        given = hashlib.sha256(header[len("Bearer "):].strip().encode()).digest()
        return hmac.compare_digest(given, token_digest)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Any:
        """Every refusal is JSON (a 413 too), so a device's client can read it."""
        return error(e.code or 500, e.description or e.name)

    @app.post("/v1/batches")
    def receive_batch() -> Any:
        try:  # authenticated before anything parses the body (signed_requests)
            device_id, key, body = read_signed_body(request, registry, MAX_BATCH_BYTES,
                                                    UNAUTHENTICATED)
        except RequestRefused as e:
            return error(e.status, str(e))
        if device_id in disabled_devices():  # after authentication: tells only the device
            log.warning("batch refused: device %s is disabled by policy", device_id)
            return error(403, DISABLED)
        try:
            batch = _parse_batch(body, device_id)
            check_shape(batch, MAX_BATCH_RECORDS)
            _check_checkpoints(key, batch)
            ack = store.ingest(batch, head=verified_head(key, batch.get("head"), device_id))
        except BatchInvalid as e:
            return error(400, str(e))
        except BatchConflict as e:
            log.error("device %s log %s: %s", device_id, batch.get("log_id"), e)
            return jsonify({"status": "conflict", "error": str(e)}), 409
        except SyncError as e:
            log.error("batch from %s not stored: %s", device_id, e)
            return error(503, "hub storage unavailable, retry later")
        if ack["gaps"]:
            log.info("device %s log %s: records missing from seq %d", device_id,
                     ack["log_id"], ack["gaps"][0][0])
        return jsonify(signed_ack(ack_key, ack))

    def logged(action: str) -> bool:
        """Bearer-token reads go to the auditors' access log too; False: not written."""
        refusals: tuple[type[BaseException], ...] = (SyncError, *store._errors())
        try:
            auth_access.record(store, clock(), "bearer-token", "auditor",
                               request.remote_addr or "?", action, request.args.to_dict())
        except refusals as e:
            log.error("access log not written, %s refused: %s", action, type(e).__name__)
            return False
        return True

    @app.get("/v1/integrity")
    def integrity() -> Any:
        if not authorised():
            return error(401, "auditor token required")
        if not logged("api_integrity"):
            return error(503, "access log unavailable, retry later")
        return jsonify({"logs": store.integrity(request.args.get("device_id"))})

    @app.get("/v1/records")
    def records() -> Any:
        if not authorised():
            return error(401, "auditor token required")
        fmt = request.args.get("format", "jsonl")
        if fmt not in ("jsonl", "csv", "sqlite"):
            return error(400, "format must be jsonl, csv or sqlite")
        try:
            since, until = (_instant(request.args.get(k)) for k in ("since", "until"))
        except (ValueError, OverflowError, OSError):
            return error(400, "since and until must be ISO 8601 times with a zone")
        if not logged(f"api_records_{fmt}"):
            return error(503, "access log unavailable, retry later")
        rows = store.records(request.args.get("device_id"), since, until)
        if fmt == "sqlite":  # sqlite-utils: the hub's extra, imported only for this export
            from appliance_hub.sqlite_export import export_response

            return export_response(rows, {"device_id": request.args.get("device_id"),
                                          "since": since, "until": until})
        mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return Response(_lines(rows, fmt), mimetype=mimetype)

    return app


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
        message = checkpoint_message(batch["device_id"], batch["log_id"], cp["seq"], cp["hash"],
                                     cp["time"])
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


def serve(app: Flask, host: str, port: int, ssl_context: Any = None) -> None:
    """Serve with the bounded threaded server (``appliance.platform.bounded_server``: idle
    connections hold no thread, capped workers and per-client connections, read
    timeouts); gunicorn behind nginx at fleet scale."""
    from appliance.platform.bounded_server import make_bounded_server

    server = make_bounded_server(host, port, app, ssl_context=ssl_context)
    log.info("audit hub listening on %s:%d", host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
