"""The kiosk loop: frames -> QR texts -> verdicts -> audit -> LEDs -> live events.

One thread reads the camera; optional text inputs (a USB/serial QR scanner) feed the same
path from text on. Faults never stop the loop: a lost camera turns the indicator to
"camera lost" and is reopened with backoff; a decoder exception costs one frame; an audit
fault shows "audit failing" and (``audit.required``) withholds the verdict; any other
exception while handling one input costs that input (a FAIL verdict, red LED) and is
logged once a minute with a count (``appliance.platform.log_limits``), never per frame.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from appliance.core.credential import lp1
from appliance.core.errors import (
    ApplianceError,
    AuditUnavailable,
    CameraError,
    RateLimited,
    TrustDataError,
)
from appliance.core.reasons import Outcome
from appliance.core.verifier import Verdict
from appliance.devices.camera import FrameSource
from appliance.devices.indicator import DeviceState, Indicator
from appliance.devices.scanner import FrameScanner, RepeatSuppressor
from appliance.kiosk.mdoc_session import MdocSessions
from appliance.kiosk.verification import FAULT_VERDICT, VerificationService
from appliance.platform.backoff import Backoff
from appliance.platform.log_limits import RepeatLimiter
from appliance.platform.systemd_notify import Watchdog, sd_notify
from appliance.port.events import EventBus, verdict_event

log = logging.getLogger(__name__)

STATE_CHECK_EVERY_S = 5.0
IDLE_STEP_S = 0.2  # how long a wait goes without checking stop, texts and the watchdog
MAX_BACKOFF_S = 30.0


def credential_key(text: str) -> Hashable:
    """Repeat-suppression identity: the credential inside an LP1 code, else the text.

    A live LP1 code changes every few seconds while the same licence is held in view, so
    keying on the text would give a new verdict for every refresh. Never raises.
    """
    if text.startswith(lp1.PREFIX):
        try:
            credential, _ = lp1.decode(text)
        except Exception:  # noqa: BLE001 - a Rejection, or any fault on a hostile text: key on the text
            return text
        return ("LP1", hashlib.sha256(credential).digest())
    return text


@dataclass
class KioskStats:
    frames: int = 0
    decode_errors: int = 0
    verdicts: int = 0
    # Inputs over the per-minute verdict cap (no verdict, no record; issue 21).
    verdicts_dropped: int = 0
    # Frames whose decoder budget ran out before every look (scanner.CascadeDecoder).
    decoder_budget_spent: int = 0
    camera_failures: int = 0
    last_frame_at: float | None = None
    fps: float = 0.0
    # Seconds from frame arrival to the LED call, for the latency benchmark.
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class Kiosk:
    def __init__(
        self,
        source: FrameSource,
        scanner: FrameScanner,
        service: VerificationService,
        indicator: Indicator,
        events: EventBus,
        *,
        repeat_after_absent_s: float = 2.0,
        show_holder: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        watchdog: Watchdog | None = None,
        mdoc: MdocSessions | None = None,
    ) -> None:
        self._mdoc = mdoc  # `mdoc:` codes go to a session worker, never block this loop
        self._source = source
        self._scanner = scanner
        self._service = service
        self._indicator = indicator
        self._events = events
        self._suppressor = RepeatSuppressor(repeat_after_absent_s, key=credential_key)
        self._show_holder = show_holder
        self._monotonic = monotonic
        self._wall = wall  # event times (epoch seconds): the screens show them
        self._sleep = sleep
        self._watchdog = watchdog or Watchdog()
        self._texts: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=32)
        self._lock = threading.Lock()  # one verification at a time: camera and serial
        self.stats = KioskStats()
        self.camera_ok = False
        self._next_state_check = 0.0
        self._faults = RepeatLimiter(log, clock=monotonic)

    # -- inputs ---------------------------------------------------------------------------

    def submit_text(self, text: str, source: str = "scanner") -> None:
        """A text from a second input (USB/serial scanner); verified on the loop thread."""
        try:
            self._texts.put_nowait((text, source))
        except queue.Full:
            log.warning("text input queue full; dropping a scan")

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        sd_notify("READY=1")
        reopen = Backoff(1.0, MAX_BACKOFF_S)
        try:
            while not stop.is_set():
                if not self.camera_ok:
                    if self._open_camera():
                        reopen.reset()
                    else:
                        self._idle_wait(stop, reopen.next())
                        continue
                try:
                    self.poll_once(timeout_s=0.2)
                except Exception as e:  # noqa: BLE001 - a bug on one input costs that input, not the loop
                    self._faults.fault("kiosk loop step failed", e)
                    self._sleep(0.05)  # no busy loop if the fault repeats at once
        finally:
            sd_notify("STOPPING=1")
            self._faults.flush()
            self._source.close()

    def poll_once(self, timeout_s: float = 0.2) -> list[Verdict]:
        """One frame (or timeout) plus any queued texts; returns the verdicts shown."""
        self._watchdog.pet()
        self._check_device_state()
        verdicts = self._drain_texts()
        try:
            frame = self._source.read(timeout_s)
        except CameraError as e:
            self._camera_lost(e)
            return verdicts
        if frame is None:
            return verdicts
        self._count_frame(frame.captured_at)
        try:
            texts = self._scanner.scan(frame.grey)
        except Exception as e:  # noqa: BLE001 - a decoder fault costs one frame, not the loop
            self.stats.decode_errors += 1
            self._faults.fault("decoder failed on a frame", e)
            return verdicts
        finally:
            self.stats.decoder_budget_spent = getattr(self._scanner.decoder, "budget_spent", 0)
        for text in self._suppressor.new_texts(texts, frame.captured_at):
            verdict = self._decide(text, "camera", frame.captured_at)
            if verdict is not None:
                verdicts.append(verdict)
        return verdicts

    # -- internals ------------------------------------------------------------------------

    def _drain_texts(self) -> list[Verdict]:
        out: list[Verdict] = []
        while True:
            try:
                text, source = self._texts.get_nowait()
            except queue.Empty:
                return out
            verdict = self._decide(text, source, self._monotonic())
            if verdict is not None:
                out.append(verdict)

    def _decide(self, text: str, source: str, arrived_at: float) -> Verdict | None:
        """Verify, show and publish one input; whatever fails costs this input only."""
        if self._mdoc is not None and self._mdoc.take(text, source):
            return None  # an mDL session: its worker shows, audits and publishes the verdict
        with self._lock:
            try:
                verdict = self._service.verify(text, source=source)
            except AuditUnavailable:
                self._indicator.set_state(DeviceState.AUDIT_FAILING)
                self._events.publish({"type": "fault", "fault": "audit", "at": self._wall()})
                return None
            except TrustDataError as e:
                log.error("no trust data: %s", e)
                self._indicator.set_state(DeviceState.TRUST_STALE)
                return None
            except RateLimited:
                self.stats.verdicts_dropped += 1  # counted; no verdict, no record, no LED
                return None
            except Exception as e:  # noqa: BLE001 - the service failed before auditing: show a FAIL
                self._faults.fault(f"verification failed on one input from {source}", e)
                verdict = FAULT_VERDICT
            self._show(verdict.outcome)
            self.stats.latencies_s.append(self._monotonic() - arrived_at)
            self.stats.verdicts += 1
        if self._service.audit_fault is None and self._indicator.state is (
            DeviceState.AUDIT_FAILING
        ):
            self._next_state_check = 0.0
        try:
            self._events.publish(
                verdict_event(verdict, self._show_holder, at=self._wall(), source=source)
            )
        except Exception as e:  # noqa: BLE001 - a screen's fault must not cost the verdict
            self._faults.fault("publishing a verdict failed", e)
        log.info("verdict %s %s (%s, %s)", verdict.outcome, verdict.reason, verdict.profile, source)
        return verdict

    def _show(self, outcome: Outcome) -> None:
        try:
            self._indicator.show_verdict(outcome)
        except Exception as e:  # noqa: BLE001 - a pin driver fault must not cost the verdict or the loop
            self._faults.fault("indicator failed to show a verdict", e)

    def _open_camera(self) -> bool:
        try:
            self._source.open()
        except CameraError as e:
            self._camera_lost(e)
            return False
        if not self.camera_ok:
            log.info("camera open")
        self.camera_ok = True
        self._next_state_check = 0.0
        return True

    def _camera_lost(self, error: ApplianceError) -> None:
        if self.camera_ok or self.stats.camera_failures == 0:
            log.error("camera lost: %s", error)
        self.camera_ok = False
        self.stats.camera_failures += 1
        self._indicator.set_state(DeviceState.CAMERA_LOST)
        self._events.publish({"type": "fault", "fault": "camera", "at": self._wall()})
        try:
            self._source.close()
        except Exception:  # closing a broken camera must not raise
            log.debug("closing the lost camera failed", exc_info=True)

    def _idle_wait(self, stop: threading.Event, seconds: float) -> None:
        """Wait ``seconds`` on the loop's clock in short ``sleep`` steps, so the watchdog is
        fed, scanner texts are verified and ``stop`` is seen within a step."""
        end = self._monotonic() + seconds
        while not stop.is_set():
            left = end - self._monotonic()
            if left <= 0:
                return
            self._watchdog.pet()
            self._drain_texts()
            self._sleep(min(IDLE_STEP_S, left))

    def _count_frame(self, captured_at: float) -> None:
        stats = self.stats
        if stats.last_frame_at is not None:
            gap = captured_at - stats.last_frame_at
            if gap > 0:
                stats.fps = 0.9 * stats.fps + 0.1 / gap if stats.fps else 1.0 / gap
        stats.last_frame_at = captured_at
        stats.frames += 1

    def _check_device_state(self) -> None:
        now = self._monotonic()
        if now < self._next_state_check:
            return
        self._next_state_check = now + STATE_CHECK_EVERY_S
        if not self.camera_ok:
            return
        if self._service.audit_fault is not None:
            self._indicator.set_state(DeviceState.AUDIT_FAILING)
        elif self._service.trust_is_stale() or self._service.out_of_service() is not None:
            # Amber: out of service by remote policy verifies nothing, like stale data.
            self._indicator.set_state(DeviceState.TRUST_STALE)
        else:
            self._indicator.set_state(DeviceState.IDLE)


def latency_percentiles(samples: deque[float] | list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50_ms": pick(0.50) * 1e3, "p99_ms": pick(0.99) * 1e3, "n": float(len(ordered))}
