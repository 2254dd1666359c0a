"""The one place that picks adapters by name from the configuration.

Everything else receives its collaborators; only this module knows which concrete
trust store, clock and audit log a device uses, and it builds the kiosk port once, over
the service's own trust and clock (the kiosk process, ``appliance web --standalone`` and
the demo all call ``build_port``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from appliance import __version__
from appliance.config import Config
from appliance.core.errors import TrustDataError
from appliance.core.verifier import Checkpoint
from appliance.kiosk.events import EventBus, holder_details_allowed
from appliance.kiosk.local_policy import load_accepted_types, save_accepted_types
from appliance.kiosk.local_port import LocalKioskPort, StatusProvider
from appliance.kiosk.verification import AuditSink, VerificationService
from appliance.trust.clock import Clock, FileTimeFloor, FloorClock
from appliance.trust.store import CurrentTrust


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
    config: Config, audit: AuditSink | None = None, clock: Clock | None = None
) -> VerificationService:
    """The device's verification service; ``clock`` overrides the trusted system clock."""
    trust = CurrentTrust(config.trust_dir, root=config.sync.root)
    trust()  # fail early with a clear message when nothing is installed
    return VerificationService(
        trust=trust,
        clock=clock if clock is not None else device_clock(config, trust),
        checkpoint=device_checkpoint(config),
        audit=audit if audit is not None else open_audit(config),
        audit_required=config.audit.required,
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
        service, bus,
        device={"id": config.device.id, "name": config.device.name,
                "mode": config.device.mode, "camera": camera or config.camera.source},
        trust=service.trust, clock=service.clock, show_holder=show_holder,
        decoder_backend=config.scanner.backend, history_size=config.web.history_size,
        providers=providers, export=export, sync=sync, upload=upload,
        on_accepted_types=(lambda types: save_accepted_types(state_dir, types))
        if persist_types else None,
    )
