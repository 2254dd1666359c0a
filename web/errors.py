"""The device web's faults, under the one root (``appliance.core.errors.ApplianceError``)."""

from __future__ import annotations

from appliance.core.errors import ApplianceError
from appliance.port.errors import BridgeError, PortUnavailable


class TooManyStreams(ApplianceError):
    """Every stream slot is taken; the client should come back later."""


class KioskTimeout(BridgeError):
    """The kiosk took longer than the call timeout to answer."""


class KioskNotRunning(PortUnavailable):
    """Nothing answers on the kiosk socket: ``appliance run`` is stopped or restarting."""
