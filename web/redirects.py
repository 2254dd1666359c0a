"""The same-origin ``next`` check; shared with the hub, so it lives in ``appliance.webauth``."""

from appliance.webauth.redirects import MAX_NEXT_CHARS, safe_next

__all__ = ["MAX_NEXT_CHARS", "safe_next"]
