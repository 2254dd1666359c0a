"""The one place that picks adapters by name from the configuration.

Everything else receives its collaborators; only this module knows which concrete
trust store, clock and audit log a device uses.
"""

from __future__ import annotations

from appliance.clock import Clock, FileTimeFloor, FloorClock
from appliance.config import Config
from appliance.core.errors import TrustDataError
from appliance.core.verifier import Checkpoint
from appliance.kiosk.local_policy import load_accepted_types
from appliance.kiosk.verification import AuditSink, VerificationService
from appliance.trust.store import CurrentTrust


def device_checkpoint(config: Config) -> Checkpoint:
    """Configured rules, with accepted types as last set on the admin screen, if ever."""
    local = load_accepted_types(config.paths.state_dir)
    return Checkpoint(
        accepted_types=frozenset(config.policy.accepted_types if local is None else local),
        require_presentation_types=frozenset(config.policy.require_presentation_types),
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
