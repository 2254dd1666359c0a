"""The kiosk port in the kiosk's own process: history, counts, status and actions.

``LocalKioskPort`` implements ``KioskPort`` over the process's ``VerificationService`` and
``EventBus``; ``appliance.kiosk.compose.build_port`` builds it once from the
configuration, and the socket bridge serves it to the web process.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from appliance import __version__
from appliance.core.errors import ApplianceError
from appliance.core.reasons import Outcome, Reason
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Verdict
from appliance.kiosk.verification import VerificationService
from appliance.port.errors import PortUnavailable
from appliance.port.events import Event, EventBus, verdict_event
from appliance.trust.clock import Clock

log = logging.getLogger(__name__)

HOUR_S = 3600


StatusProvider = Callable[[], Mapping[str, Any]]


class LocalKioskPort:
    """``KioskPort`` over an in-process ``VerificationService`` and ``EventBus``.

    ``providers`` fill parts of ``status()`` the service cannot know, each merged into the
    section of its name: ``"camera"`` (fps, last_frame_at), ``"trust"`` (last_sync_at,
    next_sync_at, last_error) and ``"audit"`` (pending, last_upload_at). Actions (sync,
    upload, export, persisting accepted types) are callables; where one is missing, the
    method raises ``PortUnavailable``.
    """

    def __init__(
        self,
        service: VerificationService,
        bus: EventBus,
        *,
        device: Mapping[str, str] | None = None,
        trust: Callable[[], TrustSnapshot] | None = None,
        clock: Clock | None = None,
        show_holder: bool = False,
        decoder_backend: str = "both",
        history_size: int = 50,
        providers: Mapping[str, StatusProvider] | None = None,
        sync: Callable[[], str] | None = None,
        upload: Callable[[], str] | None = None,
        export: Callable[[float | None, float | None], bytes] | None = None,
        on_accepted_types: Callable[[tuple[str, ...]], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._bus = bus
        self._device = dict(device or {})
        self._trust = trust
        self._clock = clock
        self.show_holder = show_holder
        self._decoder_backend = decoder_backend
        self._providers = dict(providers or {})
        self._sync = sync
        self._upload = upload
        self._export = export
        self._on_accepted_types = on_accepted_types
        self._wall = wall
        self._lock = threading.Lock()
        self._history: collections.deque[Event] = collections.deque(maxlen=max(1, history_size))
        self._hours: collections.Counter[tuple[int, str]] = collections.Counter()
        self._totals: collections.Counter[str] = collections.Counter()
        self._unlisten = bus.listen(self._record)

    def close(self) -> None:
        self._unlisten()

    # -- verdicts -------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        if event.get("type") != "verdict":
            return
        at = float(event.get("at") or self._wall())
        outcome = str(event.get("outcome"))
        with self._lock:
            self._history.appendleft(event)
            self._hours[(int(at // HOUR_S) * HOUR_S, outcome)] += 1
            self._totals[outcome] += 1
            cutoff = (int(at // HOUR_S) - 48) * HOUR_S
            for key in [k for k in self._hours if k[0] < cutoff]:
                del self._hours[key]

    def recent_verdicts(self, limit: int = 20) -> list[Event]:
        with self._lock:
            return list(self._history)[: max(0, limit)]

    def get_verdict(self, event_id: str) -> Event | None:
        with self._lock:
            return next((e for e in self._history if e.get("id") == event_id), None)

    def verdicts_per_hour(self, hours: int = 24) -> list[dict[str, Any]]:
        current = int(self._wall() // HOUR_S) * HOUR_S
        with self._lock:
            counts = dict(self._hours)
        out = []
        for i in range(hours - 1, -1, -1):
            hour = current - i * HOUR_S
            row: dict[str, Any] = {"hour": hour}
            for outcome in Outcome:
                row[str(outcome)] = counts.get((hour, str(outcome)), 0)
            out.append(row)
        return out

    def verdict_totals(self) -> dict[str, int]:
        with self._lock:
            return {str(o): self._totals.get(str(o), 0) for o in Outcome}

    def events(self, timeout_s: float = 15.0) -> Iterator[Event | None]:
        # A stalled screen loses its oldest events, never the kiosk loop (EventBus).
        return self._bus.subscribe(timeout_s)

    def publish_verdict(self, verdict: Verdict, source: str) -> Event:
        event = verdict_event(verdict, self.show_holder, at=self._wall(), source=source)
        self._bus.publish(event)
        return event

    def verify_text(self, text: str, source: str = "web-text") -> Event:
        return self.publish_verdict(self._service.verify(text, source=source), source)

    def verify_image(self, data: bytes, source: str = "web-image") -> list[Event]:
        from appliance.devices.picture_worker import decode_upload

        # Decoded in a child process with a memory budget: a picture costs that upload,
        # never this process; never written (issue 21).
        texts = decode_upload(data, self._decoder_backend, "upload")
        if not texts:
            return [self.publish_verdict(Verdict(Outcome.FAIL, Reason.NO_QR_FOUND), source)]
        return [self.verify_text(text, source) for text in texts]

    # -- actions --------------------------------------------------------------------------

    def trigger_sync(self) -> str:
        if self._sync is None:
            raise PortUnavailable("trust-data sync is not configured on this device")
        return self._sync()

    def trigger_upload(self) -> str:
        if self._upload is None:
            raise PortUnavailable("audit upload is not configured on this device")
        return self._upload()

    def export_audit(self, since: float | None = None, until: float | None = None) -> bytes:
        if self._export is None:
            raise PortUnavailable("the audit log is not available to this screen")
        return self._export(since, until)

    def accepted_types(self) -> tuple[str, ...]:
        return tuple(sorted(self._service.checkpoint.accepted_types))

    def set_accepted_types(self, types: Sequence[str]) -> None:
        chosen = tuple(sorted(set(types)))
        self._service.set_accepted_types(chosen)
        log.info("accepted licence types set to %s", ", ".join(chosen) or "any")
        if self._on_accepted_types is not None:
            self._on_accepted_types(chosen)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self._wall()
        out: dict[str, Any] = {
            "device": {
                "id": self._device.get("id"),
                "name": self._device.get("name"),
                "mode": self._device.get("mode"),
            },
            "software": {"version": __version__},
            "camera": {"source": self._device.get("camera"), "fps": None, "last_frame_at": None},
            "trust": self._trust_status(now),
            "clock": self._clock_status(now),
            "audit": {
                "pending": None,
                "last_upload_at": None,
                "fault": self._service.audit_fault,
                "verdicts_dropped": self._service.verdicts_dropped,
            },
            "accepted_types": list(self.accepted_types()),
            "verdicts": self.verdict_totals(),
        }
        for name, provider in self._providers.items():
            try:
                out.setdefault(name, {}).update(provider())
            except Exception as e:  # noqa: BLE001 - one broken status provider must not cost the status page
                log.warning("status provider %s failed: %s", name, e)
                out.setdefault(name, {})["error"] = str(e)
        return out

    def _trust_status(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": None,
            "published_at": None,
            "expires_at": None,
            "age_s": None,
            "issuers": None,
            "error": None,
            "last_sync_at": None,
            "next_sync_at": None,
            "last_error": None,
            "out_of_service": None,
        }
        if self._trust is None:
            return out
        try:
            snap = self._trust()
        except ApplianceError as e:
            out["error"] = str(e)
            return out
        out["version"] = snap.version
        out["published_at"] = snap.published_at
        out["expires_at"] = snap.expires_at
        out["age_s"] = None if snap.published_at is None else max(0.0, now - snap.published_at)
        out["max_age_hours"] = snap.policy.max_age_hours
        out["issuers"] = sorted(set(snap.issuer_names().values()))
        # Remote policy (spec LC1 s.4): the reason code every verdict gets, or None.
        stopped = self._service.out_of_service()
        out["out_of_service"] = None if stopped is None else str(stopped)
        out["min_software_version"] = snap.policy.min_software_version
        return out

    def _clock_status(self, now: float) -> dict[str, Any]:
        if self._clock is None:
            return {"now": now, "trusted": None}
        reading = self._clock.read()
        return {"now": reading.now, "trusted": reading.trusted}
