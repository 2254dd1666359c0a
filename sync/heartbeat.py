"""The device's heartbeat: the operational facts the hub's fleet view needs, signed.

A heartbeat is ``{"payload": base64, "signature": base64}``: Ed25519 over the payload bytes
with the device key, as ``appliance_hub.fleet`` checks it. The payload carries only
operational facts (versions, ages, counts, states), never a record, name or licence number,
and the audit log's head signed by the device key (``appliance.audit.head``: seq and hash
only), so the hub learns how far the log reached even while nothing is uploaded and sees
it if the log is later cut back.

It is sent only while the clock is trusted (spec LC1 s.6): the hub refuses a heartbeat not
newer than the one it holds, so a heartbeat dated by a clock that jumped ahead would lock
out the device's later, correct ones. Every attempt, sent or not, is recorded in
``state_dir/heartbeat_state.json`` for the status page and the selftest.

Each source is passed in (``HeartbeatSources``), so tests give their own clock, camera
and audit backlog; ``sources_from_config`` wires the device's real ones.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.config import Config
from appliance.core.errors import ApplianceError, SyncError
from appliance.core.isotime import format_utc, instant_or_none
from appliance.core.remote_policy import out_of_service
from appliance.platform.files import write_atomic
from appliance.trust.clock import FileTimeFloor, FloorClock
from appliance.trust.store import load_trust_store
from appliance.trust.sync_state import read_sync_state
from appliance_sync.errors import ClockNotTrusted

log = logging.getLogger(__name__)

# The hub's appliance_hub.fleet.HEARTBEAT_TYPE (sync and the hub are separate programs).
HEARTBEAT_TYPE = "appliance-heartbeat/1"
STATE_FILE = "heartbeat_state.json"
CAMERA_STATES = ("ok", "none", "failed", "kiosk-down", "unknown")


def boot_uptime() -> float:
    """Seconds since boot (CLOCK_BOOTTIME: /proc/uptime is hidden by ProcSubset=pid)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


@dataclass(frozen=True)
class HeartbeatSources:
    """Where each fact comes from; every one a callable or path given by the caller."""

    device_id: str
    state_dir: Path
    trust_dir: Path
    root: Path | None
    audit_backlog: Callable[[], int | None]
    camera: Callable[[], str]
    # The audit log's signed head (``SignedHead.as_dict``), None without a log.
    audit_head: Callable[[], dict[str, Any] | None] = lambda: None
    wall: Callable[[], float] = time.time
    uptime: Callable[[], float] = boot_uptime
    software_version: str = __version__


def sources_from_config(
    config: Config,
    *,
    audit_backlog: Callable[[], int | None],
    camera: Callable[[], str],
    wall: Callable[[], float] = time.time,
    audit_head: Callable[[], dict[str, Any] | None] = lambda: None,
) -> HeartbeatSources:
    return HeartbeatSources(
        device_id=config.device.id,
        state_dir=config.paths.state_dir,
        trust_dir=config.trust_dir,
        root=config.sync.root,
        audit_backlog=audit_backlog,
        camera=camera,
        wall=wall,
        audit_head=audit_head,
    )


def collect(src: HeartbeatSources) -> tuple[dict[str, Any], bool]:
    """The heartbeat's fields and whether the clock that dated them is trusted."""
    try:
        snap = load_trust_store(src.trust_dir, src.root)
        trust_version: int | None = snap.version
        published = snap.published_at
        stopped = out_of_service(snap.policy, src.device_id, src.software_version)
    except ApplianceError as e:
        log.info("heartbeat without trust data: %s", e)
        trust_version, published, stopped = None, None, None
    floor = FileTimeFloor(src.state_dir / "clock.json")
    reading = FloorClock(lambda: (floor.last_synchronised(), published), src.wall).read()
    now = reading.now
    fields: dict[str, Any] = {
        "type": HEARTBEAT_TYPE,
        "device_id": src.device_id,
        "time": format_utc(now),
        "software_version": src.software_version[:64],
        "trust_version": trust_version,
        "trust_age_s": None if published is None else round(max(0.0, now - published), 1),
        **_last_sync(src.state_dir),
        "audit_backlog": _backlog(src.audit_backlog),
        "camera": _camera(src.camera),
        "clock_trusted": reading.trusted,
        "disk_free_bytes": _disk_free(src.state_dir),
        "uptime_s": round(max(0.0, src.uptime()), 1),
        "out_of_service": None if stopped is None else str(stopped),
    }
    head = _audit_head(src.audit_head)
    if head is not None:
        fields["audit_head"] = head
    return fields, reading.trusted


def _last_sync(state_dir: Path) -> dict[str, Any]:
    """``ok`` / ``error`` / ``config`` (a setting is missing: trying again cannot help) of
    the last sync attempt and when (no error text: it is local)."""
    state = read_sync_state(state_dir)
    attempt = instant_or_none(state.get("last_attempt"))
    if attempt is None:
        return {"last_sync_result": None, "last_sync_time": None}
    ok = state.get("last_error") is None and state.get("last_success") == state["last_attempt"]
    result = "ok" if ok else "error"
    if state.get("config_error_at") == state["last_attempt"]:
        result = "config"
    return {"last_sync_result": result, "last_sync_time": format_utc(attempt)}


def _backlog(source: Callable[[], int | None]) -> int | None:
    try:
        value = source()
    except ApplianceError as e:
        log.warning("heartbeat without the audit backlog: %s", e)
        return None
    return value if isinstance(value, int) and value >= 0 else None


def _audit_head(source: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    try:
        return source()
    except ApplianceError as e:
        log.warning("heartbeat without the audit head: %s", e)
        return None


def _camera(source: Callable[[], str]) -> str:
    try:
        state = source()
    except ApplianceError as e:
        log.info("camera state unknown: %s", e)
        return "unknown"
    return state if state in CAMERA_STATES else "unknown"


def _disk_free(state_dir: Path) -> int:
    try:
        return shutil.disk_usage(state_dir).free
    except OSError as e:
        log.warning("free disk space unknown: %s", e.strerror or e)
        return 0


def sign(identity: Any, fields: dict[str, Any]) -> bytes:
    """The envelope the hub expects: canonical JSON payload, Ed25519 signature, base64."""
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode(),
            "signature": base64.b64encode(identity.sign(payload)).decode(),
        }
    ).encode()


class Heartbeat:
    """Builds, signs and sends one heartbeat; records each attempt in the state file."""

    def __init__(
        self, sources: HeartbeatSources, identity: Any, post: Callable[[bytes], dict[str, Any]]
    ) -> None:
        self.sources = sources
        self.identity = identity
        self._post = post

    def send(self) -> dict[str, Any]:
        """The fields sent; ``SyncError`` (recorded) when not sent or not stored."""
        attempt = self.sources.wall()
        try:
            fields, trusted = collect(self.sources)
            if not trusted:
                raise ClockNotTrusted(
                    "heartbeat not sent: the clock is not trusted "
                    "(below the last synchronised time or trust data)"
                )
            answer = self._post(sign(self.identity, fields))
            if answer.get("status") != "stored":
                raise SyncError(f"hub did not store the heartbeat: {answer.get('status')!r}")
        except SyncError as e:
            self._record(attempt, error=str(e))
            raise
        self._record(attempt, sent=fields["time"])
        log.info(
            "heartbeat sent (trust version %s, backlog %s)",
            fields["trust_version"],
            fields["audit_backlog"],
        )
        return fields

    def send_quietly(self) -> bool:
        """``send`` for a caller with its own job (the uploader): failures logged only."""
        try:
            self.send()
        except ApplianceError as e:
            log.warning("%s", e)
            return False
        return True

    def _record(self, attempt: float, *, sent: str | None = None, error: str | None = None) -> None:
        state = read_state(self.sources.state_dir)
        state["last_attempt"] = _iso_or_none(attempt)
        state["last_error"] = None if error is None else error[:300]
        if sent is not None:
            state["last_sent"] = sent
        try:
            write_atomic(
                self.sources.state_dir / STATE_FILE, json.dumps(state, sort_keys=True).encode()
            )
        except OSError as e:
            log.warning("heartbeat state not recorded: %s", e.strerror or e)


def read_state(state_dir: Path) -> dict[str, Any]:
    """The last recorded attempt (``last_attempt``, ``last_sent``, ``last_error``) or {}."""
    try:
        state = json.loads((Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _iso_or_none(epoch: float) -> str | None:
    try:
        return format_utc(epoch)
    except ValueError:
        return None
