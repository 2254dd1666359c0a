"""The per-client login delay; shared with the hub, so it lives in ``appliance.webauth``."""

from appliance.webauth.throttle import MAX_CLIENTS, LoginThrottle

__all__ = ["MAX_CLIENTS", "LoginThrottle"]
