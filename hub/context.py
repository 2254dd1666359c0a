"""What the hub's blueprints share: the store, the enrolled devices, the clock, the checks.

``create_app`` (``appliance_hub.server``) builds one ``HubContext`` per app and keeps it in
``app.extensions``; the blueprints (``api``, ``fleet_api``, ``fleet_page``) read it with
``hub()`` during a request, so their routes are plain module-level functions (Flask's
application-factory pattern) instead of closures inside the factory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from appliance.audit.head import HubSigner
from appliance_hub.fleet import Fleet

if TYPE_CHECKING:
    from appliance_hub.server import DeviceRegistry

KEY = "hub"


@dataclass(frozen=True)
class HubContext:
    """``disabled_devices``: ids whose uploads are refused (403), from ``policy.py``.
    ``ack_key``: signs every acknowledgement; ``auditor_digest``: SHA-256 of the auditor's
    bearer token (None: no token reads); ``fleet_reader``: ``fleet_page.fleet_access``."""

    store: Any
    registry: DeviceRegistry
    clock: Callable[[], float]
    disabled_devices: Callable[[], Collection[str]]
    ack_key: HubSigner | None
    auditor_digest: bytes | None
    fleet: Fleet
    fleet_reader: Callable[[], bool]


def hub() -> HubContext:
    """This request's hub."""
    context: HubContext = current_app.extensions[KEY]
    return context


def error(status: int, message: str) -> tuple[Response, int]:
    """A refusal as JSON, which a device's client reads."""
    return jsonify({"status": "error", "error": message}), status


def http_error(e: HTTPException) -> tuple[Response, int]:
    """Every refusal is JSON (a 413 too), so a device's client can read it."""
    return error(e.code or 500, e.description or e.name)
