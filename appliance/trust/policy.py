"""The ``policy`` object of trust data (spec LC1 s.4, LP1), read into a ``Policy``.

Shared by the trust source reader, the installed store, the publisher (which refuses what
devices would refuse) and the hub (which learns the disabled devices). Imports nothing
heavy, so the hub can read it. A bad value refuses the trust data whole, naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.core.errors import TrustDataError
from appliance.core.remote_policy import parse_version
from appliance.core.snapshot import UNKNOWN_STATUS_CHOICES, Policy

# The hub's rule for device ids (appliance_hub.server.DEVICE_ID): an id no device can have
# would disable nothing and hide a typo.
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_DISABLED_DEVICES = 100_000
MAX_VERSION_CHARS = 64
KNOWN_KEYS = frozenset(
    {
        "max_age_hours",
        "unknown_status",
        "clock_skew_s",
        "presentation_window_s",
        "require_presentation_types",
        "min_software_version",
        "disabled_devices",
    }
)


def parse_policy(raw: Any) -> Policy:
    if not isinstance(raw, dict):
        raise TrustDataError("policy must be an object")
    for k in raw:
        if k not in KNOWN_KEYS:
            raise TrustDataError(f"policy.{k}: unknown policy key")
    defaults = Policy()
    unknown_status = raw.get("unknown_status", defaults.unknown_status)
    if unknown_status not in UNKNOWN_STATUS_CHOICES:
        raise TrustDataError(f"policy.unknown_status must be one of {UNKNOWN_STATUS_CHOICES}")
    types = raw.get("require_presentation_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise TrustDataError("policy.require_presentation_types must be a list of text")
    return Policy(
        max_age_hours=_number(
            raw.get("max_age_hours", defaults.max_age_hours), "policy.max_age_hours"
        ),
        unknown_status=unknown_status,
        clock_skew_s=int(
            _number(raw.get("clock_skew_s", defaults.clock_skew_s), "policy.clock_skew_s")
        ),
        presentation_window_s=int(
            _number(
                raw.get("presentation_window_s", defaults.presentation_window_s),
                "policy.presentation_window_s",
            )
        ),
        require_presentation_types=frozenset(types),
        min_software_version=parse_min_software_version(raw.get("min_software_version")),
        disabled_devices=parse_disabled_devices(raw.get("disabled_devices", [])),
    )


def parse_min_software_version(value: Any) -> str | None:
    """``policy.min_software_version``: absent/None, or a PEP 440 version (kept as given)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_VERSION_CHARS or parse_version(value) is None:
        raise TrustDataError("policy.min_software_version must be a PEP 440 version such as 1.4.2")
    return value


def parse_disabled_devices(value: Any) -> frozenset[str]:
    """``policy.disabled_devices``: a list of device ids (a string would match by substring
    in careless code, so it is refused, as is any id no device could have)."""
    if not isinstance(value, list) or len(value) > MAX_DISABLED_DEVICES:
        raise TrustDataError(
            f"policy.disabled_devices must be a list of at most {MAX_DISABLED_DEVICES} device ids"
        )
    for i, device_id in enumerate(value):
        if not isinstance(device_id, str) or DEVICE_ID.fullmatch(device_id) is None:
            raise TrustDataError(
                f"policy.disabled_devices[{i}] is not a device id (1 to 64 "
                "of A-Z, a-z, 0-9, '.', '_', '-')"
            )
    return frozenset(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TrustDataError(f"{where} must be a non-negative number")
    return float(value)
