"""The hub's faults, under the one root (``appliance.core.errors.ApplianceError``): each
names the HTTP answer a refused request gets."""

from __future__ import annotations

from appliance.core.errors import ApplianceError, SyncError


class RequestRefused(SyncError):
    """The request is refused before its body is parsed; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class QueryInvalid(ApplianceError):
    """A filter or cursor the view cannot use (HTTP 400, named)."""


class BatchInvalid(SyncError):
    """A body the hub will not take: malformed, too deep, the wrong shape, or records that
    do not hash or chain (HTTP 400)."""


class BatchConflict(SyncError):
    """The batch forks the chain the hub holds for that log (HTTP 409)."""


class HeartbeatStale(BatchInvalid):
    """Not newer than the heartbeat held for that device (a replay, or out of order)."""
