"""The kiosk port's faults, under the one root (``appliance.core.errors.ApplianceError``).

Kept with the port, not in the core's error module: the kiosk socket names an error by its
class name (``wire``), and the radio has a ``MessageTooLarge`` of its own (ADR 0012)."""

from __future__ import annotations

from appliance.core.errors import ApplianceError


class InvalidTypes(ApplianceError):
    """Accepted licence types that are not a short list of short names."""


class PortUnavailable(ApplianceError):
    """The kiosk cannot do this here (no sync client, no audit log wired, ...)."""


class BridgeError(ApplianceError):
    """The kiosk bridge broke its protocol: a malformed, truncated or late message."""


class MessageTooLarge(BridgeError):
    """A message over the bridge's size cap; refused without being read or sent."""


class BadRequest(BridgeError):
    """A request naming an unknown method or carrying arguments of the wrong kind."""
