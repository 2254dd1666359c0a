"""The small interface the web screens read the kiosk through: all the web knows of it.

``KioskPort`` is implemented in the kiosk process by ``appliance.kiosk.local_port`` and
served on a Unix socket by ``appliance.kiosk.bridge``; the web holds a client of the same
methods (``appliance_web.socket_port``). Verdicts cross it as event dicts
(``appliance.port.events.verdict_event``), JSON-serialisable, so a socket carries them
unchanged. The rule for accepted licence types lives here because both sides apply it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from appliance.port.errors import InvalidTypes
from appliance.port.events import Event

log = logging.getLogger(__name__)

# The one rule for accepted licence types, used by the admin screen and the kiosk socket.
TYPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
MAX_TYPES = 32


def check_accepted_types(types: object) -> tuple[str, ...]:
    """``types`` as a tuple if it is at most MAX_TYPES names matching TYPE_NAME.

    Raises ``InvalidTypes`` otherwise: whatever the caller (screen or socket), nothing
    else reaches the checkpoint rules or ``local_policy.json``.
    """
    if isinstance(types, str) or not isinstance(types, Sequence) or len(types) > MAX_TYPES:
        raise InvalidTypes(f"accepted types must be a list of at most {MAX_TYPES} names")
    if not all(isinstance(t, str) and TYPE_NAME.fullmatch(t) for t in types):
        raise InvalidTypes("licence types are names of 1 to 32 letters, digits, '.', '_' or '-'")
    return tuple(types)


class KioskPort(Protocol):
    """What the web screens need from the kiosk. Every method may be called from any thread."""

    def status(self) -> dict[str, Any]:
        """Device health: see ``LocalKioskPort.status`` for the keys."""
        ...

    def recent_verdicts(self, limit: int = 20) -> list[Event]:
        """Verdict events of this session, newest first (held in memory only)."""
        ...

    def get_verdict(self, event_id: str) -> Event | None:
        """One verdict event of this session by its ``id``, or None once forgotten."""
        ...

    def verdicts_per_hour(self, hours: int = 24) -> list[dict[str, Any]]:
        """Counts per clock hour, oldest first: ``{"hour": epoch, "PASS": n, "FAIL": n,
        "UNVERIFIABLE": n}``. No personal data."""
        ...

    def verdict_totals(self) -> dict[str, int]:
        """Verdicts of this session by outcome."""
        ...

    def events(self, timeout_s: float = 15.0) -> Iterator[Event | None]:
        """Live events as they come; ``None`` after ``timeout_s`` of quiet (keep-alive)."""
        ...

    def verify_text(self, text: str, source: str = "web-text") -> Event:
        """Verify and audit one QR text as the camera would; publishes and returns the event.
        Raises ``appliance.core.errors.AuditUnavailable`` when no audit record could be made."""
        ...

    def verify_image(self, data: bytes, source: str = "web-image") -> list[Event]:
        """Every QR code in an image file's bytes; one NO_QR_FOUND event when there is none.
        Raises ``appliance.core.errors.ImageReadError`` for bytes that are not a picture."""
        ...

    def trigger_sync(self) -> str:
        """Start a trust-data sync now; returns a short message. ``PortUnavailable`` if none."""
        ...

    def trigger_upload(self) -> str:
        """Start an audit upload now; returns a short message. ``PortUnavailable`` if none."""
        ...

    def export_audit(self, since: float | None = None, until: float | None = None) -> bytes:
        """Audit records in [since, until) as JSON lines (keyed hashes, no personal data)."""
        ...

    def accepted_types(self) -> tuple[str, ...]:
        """Licence types accepted at this checkpoint; empty means any."""
        ...

    def set_accepted_types(self, types: Sequence[str]) -> None:
        """Accept only these licence types from now on (empty: any)."""
        ...


def event_public(event: Event) -> dict[str, Any]:
    """A verdict event without personal data, for ``/api/verdicts`` and logs."""
    keys: Iterable[str] = (
        "id",
        "at",
        "source",
        "outcome",
        "reason",
        "profile",
        "live",
        "typ",
        "iss",
    )
    return {k: event.get(k) for k in keys}
