"""Remote policy of spec LC1 s.4: whether the trust data takes this device out of service.

A lost or stolen kiosk is listed in ``policy.disabled_devices``; a kiosk running software
with a known flaw is below ``policy.min_software_version``. Either verifies nothing while
that trust data is installed. Pure: the device id and software version are passed in
(``Checkpoint``), never read here; an authoring check passes neither and is never refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from appliance.core.reasons import Reason
from appliance.core.snapshot import Policy

if TYPE_CHECKING:
    from packaging.version import Version


@lru_cache(maxsize=64)
def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or None when ``text`` is not one (cached: called per verdict).
    packaging is imported here, where a policy sets a minimum, not on every start."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def is_outdated(software_version: str, minimum: str) -> bool:
    """Whether ``software_version`` is below ``minimum``; an unreadable own version counts
    as outdated (fail closed), an unreadable minimum never reaches here (refused on load)."""
    floor = parse_version(minimum)
    own = parse_version(software_version)
    return floor is not None and (own is None or own < floor)


def out_of_service(
    policy: Policy, device_id: str | None, software_version: str | None
) -> Reason | None:
    """``DEVICE_DISABLED`` or ``SOFTWARE_OUTDATED`` when the policy stops this device, else
    None. A disabled device is named first: updating its software does not re-enable it."""
    if device_id is not None and device_id in policy.disabled_devices:
        return Reason.DEVICE_DISABLED
    if (
        software_version is not None
        and policy.min_software_version is not None
        and is_outdated(software_version, policy.min_software_version)
    ):
        return Reason.SOFTWARE_OUTDATED
    return None
