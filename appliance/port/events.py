"""Live events from the kiosk loop to the screens (in-process; a Unix socket bridges processes).

Events are small dicts. A ``verdict`` event carries the screen view of a verdict; holder
details travel only in memory, never to disk or logs.
"""

from __future__ import annotations

import base64
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from appliance.platform.log_limits import RepeatLimiter

if TYPE_CHECKING:
    from appliance.core.verifier import Verdict

log = logging.getLogger(__name__)

Event = dict[str, Any]

# The kiosk's own inputs: a code held up at the device (camera, a serial or keyboard-wedge
# scanner). Only their verdicts are shown on the walk-up screen and the LEDs; a submission
# from a screen ("web-text", "web-image") is answered to its submitter alone, and the kiosk
# socket refuses these names from the web (issue 21).
DEVICE_SOURCES = frozenset({"camera", "serial", "hid", "scanner"})


class EventBus:
    """Fan-out to any number of subscribers; a slow subscriber loses old events, not the bus.

    A listener that raises loses that event, never the publisher (the kiosk loop).
    """

    def __init__(self, max_queued: int = 64) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[Event]] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._max_queued = max_queued
        self._faults = RepeatLimiter(log)

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception as e:  # noqa: BLE001 - one broken screen must not stop the kiosk
                self._faults.fault("event listener raised", e)
        for q in subscribers:
            try:
                q.put_nowait(event)
            except queue.Full:
                try:
                    q.get_nowait()
                    q.put_nowait(event)
                except (queue.Empty, queue.Full):
                    pass

    def subscribe(self, timeout_s: float = 15.0) -> Iterator[Event | None]:
        """Events as they come; ``None`` after ``timeout_s`` of quiet (for keep-alives).

        Registered at once, before the first ``next()``, so nothing published between
        subscribing and reading is lost. Closing the iterator unsubscribes.
        """
        q: queue.Queue[Event] = queue.Queue(self._max_queued)
        with self._lock:
            self._subscribers.append(q)
        return self._drain(q, timeout_s)

    def _drain(self, q: queue.Queue[Event], timeout_s: float) -> Iterator[Event | None]:
        try:
            while True:
                try:
                    yield q.get(timeout=timeout_s)
                except queue.Empty:
                    yield None
        finally:
            with self._lock:
                if q in self._subscribers:
                    self._subscribers.remove(q)

    def listen(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` synchronously on every publish; returns an unlisten function.

        For cheap, non-blocking work only (appending to a deque, putting on a queue): it runs
        in the publisher's thread. Registration is immediate, unlike ``subscribe``.
        """
        with self._lock:
            self._listeners.append(callback)

        def unlisten() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unlisten


def holder_details_allowed(mode: str, show_holder_details: bool) -> bool:
    """Holder details (name, photo, number) go to screens only at an inspector's device,
    or where the configuration says so; a walk-up kiosk shows none by default."""
    return mode == "inspector" or show_holder_details


def verdict_event(
    verdict: Verdict,
    show_holder: bool,
    *,
    at: float | None = None,
    source: str = "camera",
    event_id: str | None = None,
) -> Event:
    """The screen view of a verdict: JSON-serialisable, so a Unix socket can carry it.

    Without ``show_holder`` it carries no personal data (no name, number, birth date or
    photo): outcome, reason, profile, licence type and issuer only. Every text in it may
    come from a QR code and is hostile: screens must render it escaped. ``scanned``: a code
    presented at the device itself (``DEVICE_SOURCES``), the only verdicts the walk-up
    screen shows; a web submission is not one, whatever else it shares with a scan.
    """
    cred = verdict.credential
    event: Event = {
        "type": "verdict",
        "id": event_id or secrets.token_hex(8),
        "at": time.time() if at is None else float(at),
        "source": source,
        "scanned": source in DEVICE_SOURCES,
        "outcome": str(verdict.outcome),
        "reason": str(verdict.reason),
        "profile": verdict.profile,
        "live": bool(verdict.live),
        "typ": cred.typ if cred is not None else None,
        "iss": verdict.iss,
        "issuer_name": verdict.key.issuer_name if verdict.key is not None else None,
        "holder": None,
    }
    if show_holder and cred is not None:
        event["holder"] = {
            "nm": cred.nm,
            "nml": cred.nml,
            "no": cred.no,
            "dob": cred.dob,
            "cls": list(cred.cls),
            "vf": cred.vf,
            "vu": cred.vu,
            "exp": cred.exp,
            "nbf": cred.nbf,
            "iat": cred.iat,
            "ext": [list(pair) for pair in cred.ext],
            "photo": _photo(cred.ph),
        }
    return event


def _photo(ph: bytes | None) -> dict[str, str] | None:
    """The holder photo as base64 with its media type, for JPEG and WebP only."""
    if not ph:
        return None
    if ph[:3] == b"\xff\xd8\xff":
        media = "image/jpeg"
    elif ph[:4] == b"RIFF" and ph[8:12] == b"WEBP":
        media = "image/webp"
    else:
        return None
    return {"type": media, "b64": base64.b64encode(ph).decode("ascii")}
