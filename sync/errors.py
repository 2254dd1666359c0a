"""The sync program's faults, under the one root (``appliance.core.errors.ApplianceError``):
what the hub answered to an upload, a heartbeat not sent, a fetch worth another attempt."""

from __future__ import annotations

from appliance.core.errors import SyncError


class HubRejected(SyncError):
    """The hub refused the batch (signature, enrolment, conflict): retrying will not help."""


class HubAnswerInvalid(HubRejected):
    """The hub's answer is too large, too deep or not JSON."""


class AckInvalid(HubRejected):
    """The answer carries no acknowledgement signed by the pinned hub key for this batch."""


class ClockNotTrusted(SyncError):
    """Not sent: the clock is below the trusted-time floor (the hub would be misled)."""


class TransientFetchError(SyncError):
    """A fetch fault worth another attempt (connection, HTTP 5xx, cut short); never leaves
    the fetcher, which retries it and then raises tuf's DownloadError."""
