"""The uploader: audit records to the hub in signed batches, without loss or double counting.

A batch is the oldest contiguous run of records not yet uploaded, signed by the device key
and identified by (device id, log id, seq range); the hub stores each record once however
often a batch arrives. Records are marked uploaded only after the hub acknowledged exactly
that range with its signature (``appliance_sync.hub_answer``: the hub key pinned in
``[upload] hub_key``), so a crash, a timeout, a lost answer or a fake hub just means the
batch is sent again. Every batch carries the device's signed head (``appliance.audit.head``),
so the hub sees a log cut back after the fact.
Failures back off exponentially with jitter; every request has a timeout. Every upload
ends with a heartbeat to the fleet view (``appliance_sync.heartbeat``) when one is given,
whether the upload succeeded or not: a device that cannot upload is one to see.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from appliance.audit.chain import canonical
from appliance.audit.head import SignedHead
from appliance.audit.identity import DeviceIdentity
from appliance.audit.log import AuditLog
from appliance.audit.signed_body import SignedBody, sign_body
from appliance.core.errors import ConfigError, SyncError
from appliance.platform.backoff import backoff_delay
from appliance_sync.errors import HubRejected
from appliance_sync.hub_answer import MAX_ANSWER_BYTES, checked_ack, parse_answer, quoted

log = logging.getLogger(__name__)

BATCH_PATH = "/v1/batches"
HEARTBEAT_PATH = "/v1/heartbeats"
MAX_RESPONSE_BYTES = MAX_ANSWER_BYTES


class HubClient:
    """HTTP to the hub behind one method; connection and read timeouts on every call."""

    def __init__(
        self, url: str, timeout_s: float = 30.0, pool: urllib3.PoolManager | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise SyncError(f"upload url must be http(s)://...: {url!r}")
        self.base = url.rstrip("/")
        self.url = self.base + BATCH_PATH
        self.timeout = urllib3.Timeout(connect=min(10.0, timeout_s), read=timeout_s)
        self.pool = pool or urllib3.PoolManager(retries=False, timeout=self.timeout)

    def post_batch(self, signed: SignedBody) -> dict[str, Any]:
        """A batch signed in its headers (``Uploader.make_batch``)."""
        return self._post(self.url, signed.body, signed.headers)

    def post_heartbeat(self, body: bytes) -> dict[str, Any]:
        """A signed heartbeat; ``HubRejected`` for a refusal (409: not newer than held)."""
        return self._post(self.base + HEARTBEAT_PATH, body)

    def _post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            resp = self.pool.request(
                "POST",
                url,
                body=body,
                timeout=self.timeout,
                headers=dict(headers or {"Content-Type": "application/json"}),
                retries=False,
                preload_content=False,
            )
            try:
                data = resp.read(MAX_RESPONSE_BYTES + 1)
            finally:
                resp.release_conn()
        except urllib3.exceptions.HTTPError as e:
            raise SyncError(f"hub unreachable: {e}") from e
        try:
            answer = parse_answer(data)
        except SyncError as e:
            if resp.status == 200:
                raise
            answer = {"error": f"{data[:200].decode('utf-8', 'replace')} ({e})"}
        if resp.status == 200 and isinstance(answer, dict):
            return answer
        message = f"hub answered {resp.status}: {quoted(answer)}"
        if resp.status in (400, 401, 403, 409, 413):
            raise HubRejected(message)
        raise SyncError(message)


@dataclass
class UploadReport:
    batches: int = 0
    records: int = 0
    duplicates: int = 0
    gaps: list[Any] | None = None


def batch_body(
    identity: DeviceIdentity,
    device_id: str,
    log_id: str,
    records: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    head: SignedHead,
    sent_at: float,
) -> SignedBody:
    """The batch as the hub takes it: canonical JSON, signed in headers (the hub checks
    the signature before it parses the body), with the device's signed head."""
    batch = {
        "type": "appliance-audit-batch-v1",
        "device_id": device_id,
        "log_id": log_id,
        "first_seq": records[0]["seq"],
        "last_seq": records[-1]["seq"],
        "records": records,
        "checkpoints": checkpoints,
        "sent_at": sent_at,
        "head": head.as_dict(),
    }
    return sign_body(identity, device_id, canonical(batch))


class Uploader:
    def __init__(
        self,
        audit: AuditLog,
        identity: DeviceIdentity,
        client: HubClient | Callable[[SignedBody], dict[str, Any]],
        batch_size: int = 500,
        clock: Callable[[], float] = time.time,
        heartbeat: Callable[[], object] | None = None,
    ) -> None:
        """``heartbeat``: called after every ``upload_pending`` (it logs its own failures).
        ``audit`` must know the hub's pinned key: only acknowledgements it signed count."""
        if audit.hub_key is None:
            raise ConfigError(
                "no hub key pinned: set [upload] hub_key to the hub's public "
                "key ('appliance hub keygen' writes it)"
            )
        self.audit = audit
        self.identity = identity
        self._post = client.post_batch if isinstance(client, HubClient) else client
        self.batch_size = max(1, batch_size)
        self._clock = clock
        self._heartbeat = heartbeat

    def make_batch(
        self,
        records: list[dict[str, Any]],
        checkpoints: list[dict[str, Any]],
        head: SignedHead | None = None,
    ) -> SignedBody:
        """This log's ``records`` as one batch (see ``batch_body``)."""
        return batch_body(
            self.identity,
            self.audit.device_id,
            self.audit.log_id or "",
            records,
            checkpoints,
            head or self.audit.signed_head(self.identity, self._clock()),
            self._clock(),
        )

    def upload_batch(self, report: UploadReport | None = None) -> int:
        """Send the oldest pending batch; mark it once acknowledged. Returns records acked."""
        records, checkpoints = self.audit.pending(self.batch_size)
        if not records:
            return 0
        first, last = records[0]["seq"], records[-1]["seq"]
        head = self.audit.signed_head(self.identity, self._clock())
        answer = self._post(self.make_batch(records, checkpoints, head))
        if (
            answer.get("status") not in ("stored", "duplicate")
            or answer.get("acked") != [first, last]
            or answer.get("log_id") != self.audit.log_id
        ):
            raise SyncError(f"hub did not acknowledge seq {first}..{last}: {quoted(answer)}")
        assert self.audit.hub_key is not None  # checked in __init__
        ack = checked_ack(
            answer, self.audit.hub_key, self.audit.device_id, self.audit.log_id or "", records[-1]
        )
        self.audit.mark_uploaded(first, last, self._clock(), ack=ack, head=head)
        if report is not None:
            report.batches += 1
            report.records += len(records)
            report.duplicates += int(answer.get("duplicates", 0))
            report.gaps = answer.get("gaps") or None
        log.debug("uploaded seq %d..%d (%s)", first, last, answer.get("status"))
        return len(records)

    def upload_pending(
        self,
        *,
        max_attempts: int | None = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        sleep: Callable[[float], object] = time.sleep,
        rng: Callable[[], float] = random.random,
        stop: threading.Event | None = None,
    ) -> UploadReport:
        """Upload until nothing is pending, retrying with backoff; ``SyncError`` if it gives up.

        ``max_attempts`` counts consecutive failures (None: retry until stopped).
        A hub rejection is not retried. The heartbeat follows, whatever the outcome.
        """
        try:
            return self._upload_pending(max_attempts, base_delay_s, max_delay_s, sleep, rng, stop)
        finally:
            if self._heartbeat is not None:
                self._heartbeat()

    def _upload_pending(
        self,
        max_attempts: int | None,
        base_delay_s: float,
        max_delay_s: float,
        sleep: Callable[[float], object],
        rng: Callable[[], float],
        stop: threading.Event | None,
    ) -> UploadReport:
        report, failures = UploadReport(), 0
        while stop is None or not stop.is_set():
            try:
                if self.upload_batch(report) == 0:
                    return report
                failures = 0
            except HubRejected:
                raise
            except SyncError as e:
                failures += 1
                if max_attempts is not None and failures >= max_attempts:
                    raise SyncError(f"upload gave up after {failures} attempts: {e}") from e
                delay = backoff_delay(failures, base_delay_s, max_delay_s, rng)
                log.warning("upload failed (%s); retrying in %.1f s", e, delay)
                sleep(delay)
        return report

    def run_forever(
        self,
        interval_s: float,
        jitter_s: float,
        stop: threading.Event,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """Periodic upload: every ``interval_s`` (+ jitter), backing off after failures."""
        while not stop.is_set():
            try:
                report = self.upload_pending(
                    max_attempts=None, max_delay_s=interval_s, sleep=stop.wait, rng=rng, stop=stop
                )
                if report.records:
                    log.info("uploaded %d records in %d batches", report.records, report.batches)
                self.audit.prune(self._clock())
            except SyncError as e:
                log.error("upload stopped: %s", e)
            stop.wait(interval_s + jitter_s * rng())
