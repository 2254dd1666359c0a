"""One way to verify on the device: trust snapshot + clock + checkpoint rules + audit.

The kiosk loop, the web screen's "verify by image or text" and ``appliance verify
--config`` all go through ``VerificationService.verify`` so that every verification on the
device is decided the same way and audited before its verdict is shown.

One hostile input must cost that input, never the process: if the verifier raises (a bug
some input reaches), the input gets a FAIL verdict with ``FAULT_REASON``, which is audited
and shown like any other; a bug in the audit sink counts as an audit fault.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from typing import Protocol

from appliance.core.errors import (
    AuditError,
    AuditUnavailable,
    InvalidSource,
    RateLimited,
    TrustDataError,
)
from appliance.core.reasons import Outcome, Reason
from appliance.core.remote_policy import out_of_service
from appliance.core.snapshot import TrustSnapshot
from appliance.core.staleness import trust_stale
from appliance.core.verifier import Checkpoint, Verdict, verify
from appliance.kiosk.rate_cap import RateCap
from appliance.platform.log_limits import RepeatLimiter
from appliance.trust.clock import Clock

log = logging.getLogger(__name__)

# The spec's reason codes are a closed set: an input the verifier could not finish is
# treated as one whose structure it cannot accept.
FAULT_REASON = Reason.MALFORMED_STRUCTURE
FAULT_VERDICT = Verdict(Outcome.FAIL, FAULT_REASON)
# A phone's `mdoc:` engagement given as one text (pasted, in an uploaded picture): only a
# radio session reads it (the kiosk's camera hands it to one before it gets here), so it
# is "nothing trustworthy arrived", never a red light (spec mdl-reader s.4.1, s.5.1).
SESSION_REQUIRED = Verdict(Outcome.UNVERIFIABLE, Reason.MDOC_SESSION_REQUIRED, "MDOC")

# Where a verification came from, as stored in the audit chain and shown on screens:
# "camera", "serial", "hid", "cli", "web-text", "web-image", ... Never free text.
SOURCE_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")


# (trust, now, clock trusted, checkpoint) -> the verdict on an input ``decide`` is given.
Judge = Callable[[TrustSnapshot, float, bool, Checkpoint], Verdict]


def checked_source(value: object) -> str:
    """``value`` if it is a valid source name; ``InvalidSource`` otherwise."""
    if not isinstance(value, str) or SOURCE_NAME.fullmatch(value) is None:
        raise InvalidSource("source must be 1 to 32 of a-z, 0-9 and '-', starting with a letter")
    return value


class AuditSink(Protocol):
    def record(self, verdict: Verdict, *, now: float, source: str, trust: TrustSnapshot) -> None:
        """Make the record durable before returning; raise ``AuditError`` if it cannot."""
        ...


class NullAudit:
    """For authoring checks against a trust source file, which are not audited."""

    def record(self, verdict: Verdict, *, now: float, source: str, trust: TrustSnapshot) -> None:
        return None


class VerificationService:
    def __init__(
        self,
        trust: Callable[[], TrustSnapshot],
        clock: Clock,
        checkpoint: Checkpoint,
        audit: AuditSink | None = None,
        audit_required: bool = True,
        verifier: Callable[..., Verdict] = verify,
        rate_cap: RateCap | None = None,
    ) -> None:
        self._verifier = verifier
        # Verdicts (and so audit records) a minute: the kiosk's (compose, rate_cap module).
        self._rate_cap = rate_cap
        self._trust = trust
        self._clock = clock
        self._checkpoint = checkpoint
        self._audit = audit or NullAudit()
        self._audit_required = audit_required
        self._faults = RepeatLimiter(log)
        self.audit_fault: str | None = None

    @property
    def trust(self) -> Callable[[], TrustSnapshot]:
        """The trust source verdicts are decided with (the port shows its status)."""
        return self._trust

    @property
    def verdicts_dropped(self) -> int:
        """Inputs refused by the per-minute cap since the start (no verdict, no record)."""
        return self._rate_cap.dropped if self._rate_cap is not None else 0

    @property
    def rate_cap(self) -> RateCap | None:
        """The per-minute cap on verdicts, given at construction (none: uncapped)."""
        return self._rate_cap

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint's rules every verdict is decided on."""
        return self._checkpoint

    def set_accepted_types(self, types: Iterable[str]) -> None:
        """Accept these licence types from the next verdict on (none: any type); the admin
        screen's choice, through the port."""
        self._checkpoint = dataclasses.replace(self._checkpoint, accepted_types=frozenset(types))

    @property
    def clock(self) -> Clock:
        """The clock verdicts are decided on (the port shows whether it is trusted)."""
        return self._clock

    def trust_is_stale(self) -> bool:
        """Whether the installed trust data is past ``policy.max_age_hours`` on the trusted
        clock (or missing): the indicator shows it before anyone presents a code."""
        try:
            trust = self._trust()
        except TrustDataError:
            return True
        # No publication time: a trust source file (authoring), never shown as stale.
        return bool(trust_stale(trust, self._clock.read().now))

    def out_of_service(self) -> Reason | None:
        """``DEVICE_DISABLED`` or ``SOFTWARE_OUTDATED`` while the installed trust data's
        remote policy stops this device (spec LC1 s.4), else None: every verdict would be
        UNVERIFIABLE with that reason, so the screens and the indicator say so up front."""
        try:
            trust = self._trust()
        except TrustDataError:
            return None  # no trust data is its own fault (trust.error)
        cp = self.checkpoint
        return out_of_service(trust.policy, cp.device_id, cp.software_version)

    def verify(self, text: str, source: str) -> Verdict:
        """Verify and audit; raises ``AuditUnavailable`` (no verdict) when audit is required.

        A verifier that raises gives ``FAULT_VERDICT`` (audited); ``InvalidSource`` for a
        source that is not a source name. An `mdoc:` text is UNVERIFIABLE
        MDOC_SESSION_REQUIRED.
        """
        if text[:5].lower() == "mdoc:":
            return self.decide(lambda *_: SESSION_REQUIRED, source)
        return self.decide(
            lambda trust, now, trusted, checkpoint: self._verifier(
                text, trust, now, clock_trusted=trusted, checkpoint=checkpoint
            ),
            source,
        )

    def decide(self, judge: Judge, source: str) -> Verdict:
        """``verify`` for an input that is not one text (an mdoc session's answer):
        ``judge(trust, now, clock_trusted, checkpoint)`` decides on this service's trust,
        clock and rules, and the verdict is audited exactly as ``verify``'s. Over the
        per-minute cap: ``RateLimited``, no verdict, no record, counted."""
        checked_source(source)
        if self._rate_cap is not None and not self._rate_cap.take():
            raise RateLimited(
                f"more than {self._rate_cap.per_minute} verifications a minute: "
                "this one was not verified"
            )
        trust = self._trust()
        reading = self._clock.read()
        try:
            verdict = judge(trust, reading.now, reading.trusted, self.checkpoint)
        except Exception as e:  # noqa: BLE001 - a verifier bug costs this input, not the caller
            self._faults.fault(f"verifier raised on one input from {source}", e)
            verdict = FAULT_VERDICT
        try:
            self._record(verdict, now=reading.now, source=source, trust=trust)
        except AuditError as e:
            self.audit_fault = str(e)
            log.error("audit record not written: %s", e)
            if self._audit_required:
                raise AuditUnavailable(f"no verdict without an audit record: {e}") from e
        else:
            self.audit_fault = None
        return verdict

    def _record(self, verdict: Verdict, *, now: float, source: str, trust: TrustSnapshot) -> None:
        """The sink's ``record``; any exception from it becomes an ``AuditError``."""
        try:
            self._audit.record(verdict, now=now, source=source, trust=trust)
        except AuditError:
            raise
        except Exception as e:  # a bug in the sink is an audit fault, not a crash
            self._faults.fault("audit sink raised", e)
            raise AuditError(f"audit sink failed ({type(e).__name__})") from e
