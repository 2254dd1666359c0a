"""mDL sessions in the kiosk: an `mdoc:` QR hands off to a worker, one session at a time.

The camera loop must never wait for a phone (spec mdl-reader s.3, issue 23): ``MdocSessions``
takes the QR text, starts the session on its own thread and returns at once. The worker runs
``mdoc_flow.read_mdoc`` on a fresh asyncio loop, publishes the screen states ("connecting",
"approve") on the event bus, has the verdict decided and audited by the device's
``VerificationService`` (spec s.6: the same record as every profile, source ``camera``), then
lights the LEDs and publishes the verdict. A second `mdoc:` code while a session runs is
ignored (the phone shows its QR again after the verdict). ``appliance mdoc read`` calls
``run_session`` directly, on the same code path.

Nothing here imports the mdoc core or Bluetooth until the first `mdoc:` code arrives.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.core.errors import AuditUnavailable, ConfigError, TrustDataError
from appliance.devices.indicator import DeviceState, Indicator
from appliance.kiosk.verification import FAULT_VERDICT, VerificationService
from appliance.platform.log_limits import RepeatLimiter
from appliance.port.events import EventBus

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.core.credential.mdoc.verify import MdocResult
    from appliance.core.verifier import Verdict
    from appliance.devices.mdoc_transport import MdocTransport
    from appliance.kiosk.mdoc_flow import SessionSettings

log = logging.getLogger(__name__)

SCHEME = "mdoc:"


def is_mdoc(text: str) -> bool:
    """An `mdoc:` engagement (scheme compared case-insensitively), without any import."""
    return text[: len(SCHEME)].lower() == SCHEME


class MdocReader:
    """What a session needs from the device: its settings (built at the first `mdoc:` code,
    so the kiosk loads no mdoc code before), how to open the radio, and why mDL is off
    (``off`` set: every `mdoc:` code is UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT)."""

    def __init__(
        self,
        settings: Callable[[], SessionSettings],
        transport: Callable[[], MdocTransport],
        off: str | None = None,
    ) -> None:
        self._make_settings, self.transport, self.off = settings, transport, off
        self._settings: SessionSettings | None = None

    @property
    def settings(self) -> SessionSettings:
        if self._settings is None:
            self._settings = self._make_settings()
        return self._settings


def mdoc_reader(config: Config, *, radio: Any = None) -> MdocReader:
    """The device's reader from ``[mdoc]``; says at start when mDL is off, and why, and
    refuses an unreadable reader key at start (ConfigError)."""
    from appliance.devices.mdoc_transport import Deadlines, mdl_available, open_transport

    mdoc = config.mdoc
    deadlines = Deadlines.from_config(mdoc)
    reader_key = load_reader_key(config)

    def settings() -> SessionSettings:
        from appliance.core.credential.mdoc.request import ReaderAuthKey
        from appliance.kiosk.mdoc_flow import SessionSettings

        return SessionSettings(
            profile=mdoc.request,
            age_threshold=mdoc.age_threshold,
            central_client_mode=mdoc.central_client_mode,
            max_response_bytes=mdoc.max_response_bytes,
            reader_auth=ReaderAuthKey(*reader_key) if reader_key else None,
            deadlines=deadlines,
        )

    # With a radio socket the radio service drives the controller and checks it per
    # session; this process needs no Bluetooth stack at all.
    off = mdl_available(mdoc.transport, remote=bool(mdoc.radio_socket))
    if off is not None:
        log.warning("%s; other formats are read as usual", off)

    def transport() -> MdocTransport:
        return open_transport(
            mdoc.transport,
            deadlines,
            radio=radio,
            radio_socket=mdoc.radio_socket,
            max_message_bytes=mdoc.max_response_bytes,
        )

    return MdocReader(settings, transport, off)


def load_reader_key(config: Config) -> tuple[bytes, Any] | None:
    """(reader certificate DER, P-256 private key) of s.3.4 from secrets_dir, if configured."""
    cert_name, key_name = config.mdoc.reader_cert_file, config.mdoc.reader_key_file
    if not cert_name and not key_name:
        return None
    if not cert_name or not key_name:
        raise ConfigError("mdoc.reader_cert_file and mdoc.reader_key_file go together")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    secrets = Path(config.paths.secrets_dir)
    try:
        cert_bytes = (secrets / cert_name).read_bytes()
        key = serialization.load_pem_private_key((secrets / key_name).read_bytes(), None)
        cert = (
            x509.load_pem_x509_certificate(cert_bytes)
            if cert_bytes.startswith(b"-----")
            else x509.load_der_x509_certificate(cert_bytes)
        )
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"mdoc reader certificate or key unreadable: {e}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError("mdoc reader key must be an EC P-256 key (readerAuth is ES256)")
    return cert.public_bytes(Encoding.DER), key


def run_session(
    text: str,
    reader: MdocReader,
    service: VerificationService,
    source: str,
    on_event: Callable[[str], None] = lambda _: None,
) -> MdocResult:
    """One audited session: the verdict as ``service`` decides and records it (raises
    ``AuditUnavailable`` like ``service.verify`` when the record cannot be written)."""
    from appliance.core.credential.mdoc.verify import MdocResult, verify_mdoc
    from appliance.core.reasons import Reason
    from appliance.kiosk.mdoc_flow import read_mdoc, step0
    from appliance.trust.clock import local_utc_offset

    settings = reader.settings
    judged: list[MdocResult] = []
    audited: list[Verdict] = []

    def judge(response: bytes, session: Any) -> MdocResult:
        def decide(trust: Any, now: float, trusted: bool, checkpoint: Any) -> Verdict:
            judged.append(
                verify_mdoc(
                    response,
                    session_transcript_bytes=session.transcript,
                    e_reader_key=session.e_reader_key,
                    trust=trust,
                    now=now,
                    profile=settings.profile,
                    age_threshold=settings.age_threshold,
                    clock_trusted=trusted,
                    checkpoint=checkpoint,
                    max_response_bytes=settings.max_response_bytes,
                    utc_offset_s=local_utc_offset(now),
                )
            )
            return judged[-1].verdict

        verdict = service.decide(decide, source)
        audited.append(verdict)
        return MdocResult(verdict, judged[-1].facts if judged else step0(verdict.reason).facts)

    if reader.off is not None:
        result = step0(Reason.MDOC_NO_SUPPORTED_TRANSPORT)
    else:
        result = asyncio.run(read_mdoc(text, reader.transport, settings, judge, on_event))
    if audited:
        return result
    # A session-layer verdict (step 0): no credential examined, audited all the same.
    verdict = service.decide(lambda *_: result.verdict, source)
    return MdocResult(verdict, result.facts)


class MdocSessions:
    """The kiosk's handoff: ``offer`` starts a session on a worker and returns at once."""

    def __init__(
        self,
        reader: MdocReader,
        service: VerificationService,
        indicator: Indicator,
        events: EventBus,
        *,
        show_holder: bool = False,
        on_verdict: Callable[[Verdict], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.reader, self._service = reader, service
        self._indicator, self._events = indicator, events
        self._show_holder = show_holder
        self._on_verdict = on_verdict
        self._wall = wall  # event times (epoch seconds), as the kiosk loop's
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._faults = RepeatLimiter(log)

    @property
    def busy(self) -> bool:
        worker = self._worker
        return worker is not None and worker.is_alive()

    def take(self, text: str, source: str) -> bool:
        """True when ``text`` is an `mdoc:` code, which is then this class's to handle (a
        session starts, or it is ignored while one runs); False for any other text."""
        if not is_mdoc(text):
            return False
        self.offer(text, source)
        return True

    def offer(self, text: str, source: str = "camera") -> bool:
        """Start a session for ``text``; False (ignored) while another one runs."""
        with self._lock:
            if self.busy:
                log.info("mdoc: a session is running; another QR ignored")
                return False
            self._worker = threading.Thread(
                target=self._run, args=(text, source), name="mdoc-session", daemon=True
            )
            self._worker.start()
        return True

    def join(self, timeout_s: float | None = None) -> None:
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)

    def _publish_state(self, state: str) -> None:
        self._events.publish({"type": "mdoc", "state": state, "at": self._wall()})

    def _run(self, text: str, source: str) -> None:
        facts = None
        try:
            result = run_session(text, self.reader, self._service, source, self._publish_state)
            verdict, facts = result.verdict, result.facts
        except AuditUnavailable:
            self._indicator.set_state(DeviceState.AUDIT_FAILING)
            self._events.publish({"type": "fault", "fault": "audit", "at": self._wall()})
            return
        except TrustDataError as e:
            log.error("no trust data: %s", e)
            self._indicator.set_state(DeviceState.TRUST_STALE)
            return
        except Exception as e:  # noqa: BLE001 - a bug in one session costs that session, not the kiosk
            self._faults.fault("mdoc session failed", e)
            verdict = FAULT_VERDICT
        try:
            self._indicator.show_verdict(verdict.outcome)
        except Exception as e:  # noqa: BLE001 - a pin driver fault must not cost the verdict
            self._faults.fault("indicator failed to show an mdoc verdict", e)
        try:
            from appliance.kiosk.mdoc_view import mdoc_verdict_event

            settings = self.reader.settings
            self._events.publish(
                mdoc_verdict_event(
                    verdict,
                    facts,
                    self._show_holder,
                    profile=settings.profile,
                    age_threshold=settings.age_threshold,
                    at=self._wall(),
                    source=source,
                )
            )
        except Exception as e:  # noqa: BLE001 - a screen's fault must not cost the verdict
            self._faults.fault("publishing an mdoc verdict failed", e)
        if self._on_verdict is not None:
            self._on_verdict(verdict)
        log.info("verdict %s %s (%s, %s)", verdict.outcome, verdict.reason, verdict.profile, source)
