"""The audit hub: receives devices' signed batches, keeps each record once, serves auditors.

A small Flask application (``create_app``) for any WSGI server; ``appliance hub serve``
runs it with the bounded threaded server (``appliance.platform.bounded_server``). The
factory builds the shared ``context.HubContext`` and registers the blueprints, which hold
the routes:

- ``api``: ``POST /v1/batches`` from devices, ``GET /v1/records`` and ``/v1/integrity`` for
  auditors.
- ``fleet_api``: ``POST /v1/heartbeats``, ``GET /v1/devices``, ``/healthz``, ``/readyz``,
  ``/metrics``; ``fleet_page``: ``GET /fleet``.
- ``auth`` and ``audit_view`` (with ``logins``): the login pages and the auditor's screens.

Every refusal is JSON (``context.http_error``). Enrolled devices' keys: ``DeviceRegistry``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from appliance.audit.head import HubSigner
from appliance.audit.identity import DevicePublicKey
from appliance.core.errors import DeviceKeyError, SyncError
from appliance.platform.files import write_atomic
from appliance_hub import api, context, fleet_api, fleet_page, i18n
from appliance_hub.api import MAX_BATCH_BYTES
from appliance_hub.audit_view import register_screens
from appliance_hub.auth import HubLogins
from appliance_hub.fleet import Fleet
from appliance_hub.fleet_page import fleet_access
from appliance_hub.store import HubStore

log = logging.getLogger(__name__)

DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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


def create_app(
    store: HubStore,
    devices_dir: Path,
    auditor_token: str | None,
    admin_token: str | None = None,
    clock: Callable[[], float] = time.time,
    disabled_devices: Callable[[], Collection[str]] = frozenset,
    logins: HubLogins | None = None,
    trusted_proxies: int = 0,
    ack_key: HubSigner | None = None,
) -> Flask:
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
    i18n.install(app)
    digest = hashlib.sha256(auditor_token.encode()).digest() if auditor_token else None
    app.extensions[context.KEY] = context.HubContext(
        store=store,
        registry=DeviceRegistry(devices_dir),
        clock=clock,
        disabled_devices=disabled_devices,
        ack_key=ack_key,
        auditor_digest=digest,
        fleet=Fleet(store),
        fleet_reader=fleet_access((auditor_token, admin_token)),
    )
    app.register_error_handler(HTTPException, context.http_error)
    for blueprint in (api.bp, fleet_api.bp, fleet_page.bp):
        app.register_blueprint(blueprint)
    return app


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
