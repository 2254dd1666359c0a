"""The one place that builds the kiosk: adapters picked by name from the configuration.

Everything else receives its collaborators; only this module knows which concrete trust
store, clock, audit log, camera, indicator, scanners and mDL reader a device uses.
``appliance run`` and ``appliance demo`` build the same kiosk with ``build_kiosk`` (the
demo passes its simulated camera and phone), and the kiosk port is built once, over the
service's own trust and clock (``build_port``; ``kiosk_port`` adds the parts of a running
kiosk: status providers, the audit export, the sync and upload requests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance import __version__
from appliance.config import Config
from appliance.core.errors import TrustDataError
from appliance.core.verifier import Checkpoint, Verdict, verify
from appliance.kiosk.local_policy import load_accepted_types, save_accepted_types
from appliance.kiosk.local_port import LocalKioskPort, StatusProvider
from appliance.kiosk.rate_cap import verdict_cap
from appliance.kiosk.verification import AuditSink, VerificationService
from appliance.port.events import EventBus, holder_details_allowed
from appliance.trust.clock import Clock, FileTimeFloor, FloorClock
from appliance.trust.store import CurrentTrust

if TYPE_CHECKING:
    from appliance.audit.log import AuditLog
    from appliance.devices.camera import FrameSource
    from appliance.devices.indicator import Indicator
    from appliance.kiosk.bridge import BridgeServer
    from appliance.kiosk.loop import Kiosk
    from appliance.kiosk.mdoc_session import MdocSessions

log = logging.getLogger(__name__)

Action = Callable[[], str]


def device_checkpoint(config: Config) -> Checkpoint:
    """Configured rules, with accepted types as last set on the admin screen, if ever, and
    this device's id and software version, which remote policy checks (spec LC1 s.4)."""
    local = load_accepted_types(config.paths.state_dir)
    return Checkpoint(
        accepted_types=frozenset(config.policy.accepted_types if local is None else local),
        require_presentation_types=frozenset(config.policy.require_presentation_types),
        device_id=config.device.id,
        software_version=__version__,
    )


def device_clock(config: Config, trust: CurrentTrust) -> FloorClock:
    floor = FileTimeFloor(config.paths.state_dir / "clock.json")

    def sources() -> tuple[float | None, float | None]:
        try:
            published = trust().published_at
        except TrustDataError:
            published = None
        return floor.last_synchronised(), published

    return FloorClock(sources)


def open_audit(config: Config) -> AuditSink:
    from appliance.audit.log import open_audit_log

    return open_audit_log(config)


def build_service(
    config: Config,
    audit: AuditSink | None = None,
    clock: Clock | None = None,
    *,
    wait_for_trust: bool = False,
    capped: bool = False,
    verifier: Callable[..., Verdict] = verify,
) -> VerificationService:
    """The device's verification service; ``clock`` overrides the trusted system clock.

    With nothing installed it fails early with a clear message (``TrustDataError``), or,
    ``wait_for_trust``, logs it and verifies nothing until sync installs data (the kiosk
    starts in the trust-stale state; ``CurrentTrust`` reloads on every verification).
    ``capped``: at most ``audit.max_verdicts_per_minute`` verdicts (the kiosk's service);
    ``verifier`` replaces ``verify`` (``appliance mdoc verify --config``: the mdoc verifier).
    """

    trust = CurrentTrust(config.trust_dir, root=config.sync.root)
    try:
        trust()
    except TrustDataError as e:
        if not wait_for_trust:
            raise
        log.warning("%s; starting in the trust-stale state until sync installs data", e)
    return VerificationService(
        trust=trust,
        clock=clock if clock is not None else device_clock(config, trust),
        checkpoint=device_checkpoint(config),
        audit=audit if audit is not None else open_audit(config),
        audit_required=config.audit.required,
        rate_cap=verdict_cap(config.audit.max_verdicts_per_minute) if capped else None,
        verifier=verifier,
    )


def build_port(
    config: Config,
    service: VerificationService,
    bus: EventBus,
    *,
    camera: str | None = None,
    show_holder: bool | None = None,
    providers: Mapping[str, StatusProvider] | None = None,
    export: Callable[[float | None, float | None], bytes] | None = None,
    sync: Callable[[], str] | None = None,
    upload: Callable[[], str] | None = None,
    persist_types: bool = True,
) -> LocalKioskPort:
    """The kiosk port over ``service`` and ``bus``, reading the service's own trust and clock.

    ``camera`` and ``show_holder`` default to the configuration's; actions left ``None``
    answer ``PortUnavailable``; ``persist_types`` keeps admin-screen types across restarts.
    """
    if show_holder is None:
        show_holder = holder_details_allowed(config.device.mode, config.web.show_holder_details)
    state_dir = config.paths.state_dir
    return LocalKioskPort(
        service,
        bus,
        device={
            "id": config.device.id,
            "name": config.device.name,
            "mode": config.device.mode,
            "camera": camera or config.camera.source,
        },
        trust=service.trust,
        clock=service.clock,
        show_holder=show_holder,
        decoder_backend=config.scanner.backend,
        history_size=config.web.history_size,
        providers=providers,
        export=export,
        sync=sync,
        upload=upload,
        on_accepted_types=(lambda types: save_accepted_types(state_dir, types))
        if persist_types
        else None,
    )


@dataclass
class KioskParts:
    """A composed kiosk: the loop and what it was built from, closed in order by ``close``."""

    config: Config
    service: VerificationService
    audit: AuditLog
    bus: EventBus
    indicator: Indicator
    kiosk: Kiosk
    mdoc: MdocSessions | None
    show_holder: bool
    inputs: list[threading.Thread] = field(default_factory=list)

    def start_inputs(self, stop: threading.Event) -> None:
        """Read the configured second inputs (a serial and a keyboard-wedge QR scanner)
        into the loop, each on its own thread, until ``stop``."""
        scanner = self.config.scanner
        if scanner.serial_device:
            from appliance.devices.serial_scanner import read_serial

            self._start(read_serial, scanner.serial_device, stop, "serial-scanner")
        if scanner.hid_device:
            from appliance.devices.hid_scanner import read_hid

            self._start(read_hid, scanner.hid_device, stop, "hid-scanner")

    def _start(
        self, reader: Callable[..., None], device: str, stop: threading.Event, name: str
    ) -> None:
        thread = threading.Thread(
            target=reader, args=(device, self.kiosk.submit_text, stop), daemon=True, name=name
        )
        thread.start()
        self.inputs.append(thread)

    def close(self, timeout_s: float = 2.0) -> None:
        """After ``stop``: the input threads and an mDL session in flight end (within their
        deadlines), then the indicator is switched off. The audit log is its opener's."""
        for thread in self.inputs:
            thread.join(timeout_s)
        if self.mdoc is not None:
            self.mdoc.join(timeout_s)
        self.indicator.close()


def build_kiosk(
    config: Config,
    service: VerificationService,
    audit: AuditLog,
    *,
    source: FrameSource | None = None,
    show_holder: bool | None = None,
    mdoc_sessions: bool = True,
    mdoc_radio: object = None,
) -> KioskParts:
    """The kiosk loop over ``service``: the configured camera (or ``source``), QR decoder,
    indicator and mDL reader (``mdoc_radio``: the emulated link the demo's phone is on;
    ``mdoc_sessions=False``: no mDL sessions at all, the demo without the Bluetooth stack).
    ``show_holder`` defaults to what the device mode and ``[web]`` allow."""
    from appliance.devices.camera import open_frame_source
    from appliance.devices.indicator import open_indicator
    from appliance.devices.scanner import FrameScanner, PresenceGate, make_decoder
    from appliance.kiosk.loop import Kiosk
    from appliance.kiosk.mdoc_session import MdocSessions, mdoc_reader

    if show_holder is None:
        show_holder = holder_details_allowed(config.device.mode, config.web.show_holder_details)
    if source is None:
        source = open_frame_source(config.camera)
    budget_s = config.scanner.frame_budget_ms / 1000 or None  # decoder CPU time a frame
    scanner = FrameScanner(
        make_decoder(config.scanner.backend, live=True, budget_s=budget_s), PresenceGate()
    )
    indicator = open_indicator(config.indicator)
    try:
        bus = EventBus()
        mdoc = (
            MdocSessions(
                mdoc_reader(config, radio=mdoc_radio),
                service,
                indicator,
                bus,
                show_holder=show_holder,
            )
            if mdoc_sessions
            else None
        )
        kiosk = Kiosk(
            source,
            scanner,
            service,
            indicator,
            bus,
            repeat_after_absent_s=config.scanner.repeat_after_absent_s,
            show_holder=show_holder,
            mdoc=mdoc,
        )
    except BaseException:
        indicator.close()
        raise
    return KioskParts(config, service, audit, bus, indicator, kiosk, mdoc, show_holder)


def kiosk_port(
    parts: KioskParts, *, camera: str | None = None, actions: Mapping[str, Action] | None = None
) -> LocalKioskPort:
    """The port over a composed kiosk: status from its parts, the one audit export, and the
    ``sync`` and ``upload`` actions; by default request files the device's sync and upload
    units watch (``appliance.kiosk.triggers``), which the kiosk may write without network.
    ``camera`` names the camera on the screens (default ``camera.source``)."""
    from appliance.audit.export import port_export
    from appliance.kiosk.status import camera_provider, device_providers
    from appliance.kiosk.triggers import file_trigger

    config = parts.config
    if actions is None:
        actions = {
            "sync": file_trigger(config.paths.run_dir, "sync"),
            "upload": file_trigger(config.paths.run_dir, "upload"),
        }
    audit = parts.audit
    providers = device_providers(config, kiosk=parts.kiosk, audit=audit)
    if camera is not None:
        providers["camera"] = camera_provider(parts.kiosk, camera)
    return build_port(
        config,
        parts.service,
        parts.bus,
        camera=camera,
        show_holder=parts.show_holder,
        providers=providers,
        export=port_export(audit),
        sync=actions.get("sync"),
        upload=actions.get("upload"),
    )


def serve_socket(config: Config, port: LocalKioskPort) -> BridgeServer:
    """The port on the kiosk socket (``[web] kiosk_socket``) for the web process, started."""
    from appliance.kiosk.bridge import BridgeServer

    bridge = BridgeServer(
        port, config.web.kiosk_socket, max_message_bytes=config.web.kiosk_socket_max_kb * 1024
    )
    return bridge.start()
