"""One way to verify on the device: trust snapshot + clock + checkpoint rules + audit.

The kiosk loop, the web screen's "verify by image or text" and ``appliance verify
--config`` all go through ``VerificationService.verify`` so that every verification on the
device is decided the same way and audited before its verdict is shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from appliance.clock import Clock
from appliance.errors import AuditError, TrustDataError
from appliance.trust import TrustSnapshot
from appliance.verifier import Checkpoint, Verdict, verify

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    def record(self, verdict: Verdict, *, now: float, source: str,
               trust: TrustSnapshot) -> None:
        """Make the record durable before returning; raise ``AuditError`` if it cannot."""
        ...


class NullAudit:
    """For authoring checks against a trust source file, which are not audited."""

    def record(self, verdict: Verdict, *, now: float, source: str,
               trust: TrustSnapshot) -> None:
        return None


class AuditUnavailable(AuditError):
    """Raised to the caller when ``audit.required`` and the record could not be written."""


class VerificationService:
    def __init__(
        self,
        trust: Callable[[], TrustSnapshot],
        clock: Clock,
        checkpoint: Checkpoint,
        audit: AuditSink | None = None,
        audit_required: bool = True,
    ) -> None:
        self._trust = trust
        self._clock = clock
        self.checkpoint = checkpoint
        self._audit = audit or NullAudit()
        self._audit_required = audit_required
        self.audit_fault: str | None = None

    def trust_is_stale(self) -> bool:
        """Whether the installed trust data is past ``policy.max_age_hours`` on the trusted
        clock (or missing): the indicator shows it before anyone presents a code."""
        try:
            trust = self._trust()
        except TrustDataError:
            return True
        if trust.published_at is None:
            return False  # a trust source file: authoring, never stale
        reading = self._clock.read()
        return reading.now - trust.published_at > trust.policy.max_age_hours * 3600

    def verify(self, text: str, source: str) -> Verdict:
        """Verify and audit; raises ``AuditUnavailable`` (no verdict) when audit is required."""
        trust = self._trust()
        reading = self._clock.read()
        verdict = verify(text, trust, reading.now, clock_trusted=reading.trusted,
                         checkpoint=self.checkpoint)
        try:
            self._audit.record(verdict, now=reading.now, source=source, trust=trust)
        except AuditError as e:
            self.audit_fault = str(e)
            log.error("audit record not written: %s", e)
            if self._audit_required:
                raise AuditUnavailable(f"no verdict without an audit record: {e}") from e
        else:
            self.audit_fault = None
        return verdict
