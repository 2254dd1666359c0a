"""Status providers from the device's real parts, for ``LocalKioskPort(providers=...)``.

Each provider is a cheap callable returning one section of the status page, merged into
the section of its name:

``camera``  the kiosk loop's counters: source, fps, last frame (wall time), frames,
            camera_ok, decode errors, camera failures.
``trust``   what the sync service last recorded in ``state_dir/sync_state.json``: last
            attempt and success, next sync (last attempt + ``sync.interval_minutes``), last
            error, bytes fetched, the version it installed and when that was published;
            ``error`` when the trust link is missing, dangling or refused (a fault even
            while the last good data is still in use).
            The loaded snapshot's own version, age and expiry come from ``LocalKioskPort``.
``audit``   the audit log's status: records waiting for upload, last upload, head seq;
            ``upload_error`` when the configuration cannot upload (no hub URL).
``mdl``     mDL reading (ISO 18013-5 over Bluetooth): enabled, or ``off`` and why
            (``config``, ``transport``, ``stack``, ``controller``).

``system`` (disk, CPU temperature, throttling) is not here: the web process measures it
itself (``appliance_web.system``), since it runs on the same host.

Times are epoch seconds (wall clock) or None. Nothing here holds personal data.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from appliance.config import Config, not_configured
from appliance.core.errors import AuditError
from appliance.core.isotime import instant_or_none

log = logging.getLogger(__name__)

StatusProvider = Callable[[], Mapping[str, Any]]


def epoch(iso: Any) -> float | None:
    """An ISO-8601 time as written by the sync client (``...Z``) to epoch seconds."""
    return instant_or_none(iso)


def wall_time(
    monotonic_at: float | None,
    *,
    wall: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> float | None:
    """A ``time.monotonic()`` instant (frame timestamps) as wall-clock epoch seconds."""
    if monotonic_at is None:
        return None
    return wall() - (monotonic() - monotonic_at)


def camera_provider(
    kiosk: Any,
    source_name: str,
    *,
    wall: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> StatusProvider:
    def camera() -> dict[str, Any]:
        stats = kiosk.stats
        return {
            "source": source_name,
            "fps": round(stats.fps, 1) if stats.frames else None,
            "last_frame_at": wall_time(stats.last_frame_at, wall=wall, monotonic=monotonic),
            "frames": stats.frames,
            "camera_ok": bool(kiosk.camera_ok),
            "decode_errors": stats.decode_errors,
            "decoder_budget_spent": stats.decoder_budget_spent,
            "camera_failures": stats.camera_failures,
        }

    return camera


def trust_provider(
    state_dir: Path,
    interval_minutes: float,
    *,
    wall: Callable[[], float] = time.time,
    trust_dir: Path | None = None,
) -> StatusProvider:
    """What sync recorded; with ``trust_dir``, also a fault (``error``) when the trust link
    is missing or dangling or points at a version this process refused or sync did not
    install, while the kiosk keeps verifying with its last good data."""

    def trust() -> dict[str, Any]:
        from appliance.trust.store import link_fault
        from appliance.trust.sync_state import read_sync_state

        state = read_sync_state(state_dir)
        attempt = epoch(state.get("last_attempt"))
        published = epoch(state.get("published"))
        out: dict[str, Any] = {
            "last_attempt_at": attempt,
            "last_sync_at": epoch(state.get("last_success")),
            "next_sync_at": None if attempt is None else attempt + interval_minutes * 60,
            "last_error": state.get("last_error"),
            "last_error_at": epoch(state.get("last_error_at")),
            "bytes_fetched": state.get("bytes_fetched"),
            "bytes_fetched_total": state.get("bytes_fetched_total"),
            "synced_version": state.get("version"),
            "synced_published_at": published,
            "synced_age_s": None if published is None else max(0.0, wall() - published),
            "metadata_expires_at": epoch(state.get("expires")),
            # Forward jumps of the system clock sync ignored (a spoofed time source).
            "clock_jumps": state.get("clock_jumps") or 0,
            "last_clock_jump": state.get("last_clock_jump"),
        }
        fault = link_fault(trust_dir) if trust_dir is not None else None
        if fault is not None:
            out["error"] = fault
        return out

    return trust


def audit_provider(audit: Any, upload_error: str | None = None) -> StatusProvider:
    """``upload_error``: why records cannot leave the device (a missing setting)."""

    def audit_status() -> dict[str, Any]:
        try:
            st = audit.status()
        except AuditError as e:
            return {"fault": str(e), "upload_error": upload_error}
        last_upload = st.get("last_upload_at")
        if last_upload is None and "last_upload_at" not in st:
            last_upload = _last_upload(Path(st.get("path") or audit.path))
        return {
            "pending": st.get("pending_upload"),
            "last_upload_at": last_upload,
            "head_seq": st.get("last_seq"),
            "records": st.get("records"),
            "last_checkpoint_seq": st.get("last_checkpoint_seq"),
            "used_bytes": st.get("used_bytes"),
            "max_bytes": st.get("max_bytes"),
            "upload_error": upload_error,
        }

    return audit_status


def _last_upload(db: Path) -> float | None:
    """When the newest uploaded record was acknowledged (read-only; the uploaded records are
    a prefix, so this walks back over the pending ones only)."""
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            "SELECT uploaded_at FROM records WHERE uploaded_at IS NOT NULL "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    except sqlite3.Error as e:
        log.debug("last upload time unreadable: %s", e)
        return None
    finally:
        conn.close()
    return epoch(row[0]) if row else None


def device_providers(
    config: Config, kiosk: Any = None, audit: Any = None
) -> dict[str, StatusProvider]:
    """The providers this process can fill: ``trust`` always, ``camera`` with a kiosk,
    ``audit`` with an audit log (anything with ``status()`` like ``AuditLog``)."""
    providers: dict[str, StatusProvider] = {
        "trust": trust_provider(
            config.paths.state_dir, config.sync.interval_minutes, trust_dir=config.trust_dir
        ),
    }
    if kiosk is not None:
        providers["camera"] = camera_provider(kiosk, config.camera.source)
    if audit is not None and hasattr(audit, "status"):
        providers["audit"] = audit_provider(audit, not_configured(config).get("upload"))
    providers["mdl"] = mdl_provider(config.mdoc.transport, config.mdoc.radio_socket)
    return providers


def mdl_provider(transport: str, radio_socket: str = "") -> StatusProvider:
    """mDL reading on this board: on, or off and why (``appliance.devices.bluetooth``); where
    the radio runs in its own service (``radio_socket``), whether its socket is there. A look
    at the file, not a connection: the radio serves one kiosk session at a time, and the
    status is read on every page load."""

    def mdl() -> dict[str, Any]:
        from appliance.devices.bluetooth import mdl_state

        state = mdl_state(transport).as_status()
        if radio_socket:
            state["radio"] = "listening" if Path(radio_socket).is_socket() else "down"
        return state

    return mdl
