"""What is wrong with the device right now, worst first, in the viewer's language.

One reading of the kiosk's status (``KioskPort.status()``) for every screen, so that no
screen can show a verdict or "all fine" beside a fact that contradicts it: ``/status``
headlines the first fault, ``/kiosk`` turns into an out-of-service screen while any
*blocking* fault lasts (the kiosk cannot give a verdict that means anything), and
``/healthz`` lists the codes. The cause comes before its consequences: with the kiosk
process down, the trust data it cannot report is not a second fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext

from appliance.core.staleness import past_max_age

# A timer-started sync may start a few minutes late (RandomizedDelaySec, a busy Pi).
SYNC_GRACE_S = 300.0


@dataclass(frozen=True)
class Fault:
    """One current fault: its code (for machines), whether it stops verification."""

    code: str
    blocking: bool

    @property
    def text(self) -> str:
        """The fault in the viewer's language (needs a request or app context)."""
        return str(TEXTS[self.code])


# Worst first: this order is the headline order.
TEXTS = {
    "device_disabled": lazy_gettext(
        "This device has been taken out of service by the "
        "licence authority: licences cannot be checked."
    ),
    "software_outdated": lazy_gettext(
        "This device's software is out of date and must be updated: licences cannot be checked."
    ),
    "kiosk_not_running": lazy_gettext(
        "The kiosk program is not running: licences cannot be checked."
    ),
    "trust_data_unreadable": lazy_gettext(
        "The trust data cannot be read: licences cannot be checked."
    ),
    "trust_data_stale": lazy_gettext("The trust data is out of date: licences cannot be checked."),
    "clock_untrusted": lazy_gettext("The clock cannot be trusted: licences cannot be checked."),
    "audit_unavailable": lazy_gettext(
        "The audit log cannot be written: licences cannot be checked."
    ),
    "camera_lost": lazy_gettext("The camera is not working: codes cannot be read."),
    "sync_failing": lazy_gettext("The last trust-data sync failed."),
    "sync_overdue": lazy_gettext("The trust-data sync is overdue."),
}
NOT_BLOCKING = {"sync_failing", "sync_overdue"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _trust_faults(trust: dict[str, Any], now: float) -> list[str]:
    found = []
    if trust.get("error"):
        found.append("trust_data_unreadable")
    age, max_age = _num(trust.get("age_s")), _num(trust.get("max_age_hours"))
    expires = _num(trust.get("expires_at"))
    if (age is not None and max_age is not None and past_max_age(age, max_age)) or (
        expires is not None and now > expires
    ):
        found.append("trust_data_stale")
    return found


def _sync_faults(trust: dict[str, Any], now: float) -> list[str]:
    found = []
    error_at, success_at = _num(trust.get("last_error_at")), _num(trust.get("last_sync_at"))
    if trust.get("last_error") and (
        error_at is None or success_at is None or error_at >= success_at
    ):
        found.append("sync_failing")
    due = _num(trust.get("next_sync_at"))
    if due is not None and now > due + SYNC_GRACE_S:
        found.append("sync_overdue")
    return found


def current(status: dict[str, Any], now: float | None = None) -> list[Fault]:
    """Every current fault of ``status``, worst first. ``now`` defaults to the status's
    own clock reading, else the wall clock."""
    if now is None:
        now = _num((status.get("clock") or {}).get("now")) or time.time()
    if (status.get("kiosk") or {}).get("running") is False:
        return [Fault("kiosk_not_running", True)]
    trust = status.get("trust") or {}
    camera, audit = status.get("camera") or {}, status.get("audit") or {}
    codes = _trust_faults(trust, now)
    # Remote policy in signed trust data (spec LC1 s.4): the device verifies nothing.
    out_of_service = trust.get("out_of_service")
    if out_of_service == "DEVICE_DISABLED":
        codes.append("device_disabled")
    elif out_of_service == "SOFTWARE_OUTDATED":
        codes.append("software_outdated")
    if (status.get("clock") or {}).get("trusted") is False:
        codes.append("clock_untrusted")
    if audit.get("fault") or audit.get("error"):
        codes.append("audit_unavailable")
    if camera.get("camera_ok") is False or camera.get("error"):
        codes.append("camera_lost")
    codes += _sync_faults(trust, now)
    order = list(TEXTS)
    return [Fault(c, c not in NOT_BLOCKING) for c in sorted(set(codes), key=order.index)]


def blocking(status: dict[str, Any], now: float | None = None) -> Fault | None:
    """The worst fault that stops the kiosk from verifying, or None."""
    return next((f for f in current(status, now) if f.blocking), None)
