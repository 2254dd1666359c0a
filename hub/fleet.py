"""The fleet as the hub sees it: devices' signed heartbeats, the latest per device, a day of
history, and the states an administrator acts on (silent, stale, failing).

A heartbeat is ``{"payload": base64, "signature": base64}`` like a batch: Ed25519 over the
payload bytes with the device's enrolled key. The payload (``HEARTBEAT_TYPE``) carries only
operational facts, never a record, name or licence number. A heartbeat older than (or as
old as) the latest one held is refused, so a replayed one cannot make a silent device look
alive; one dated more than a day ahead of the hub is refused, so a device with a runaway
clock cannot lock out its own later heartbeats.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from appliance.audit.head import SignedHead
from appliance.core.isotime import format_utc, parse_instant
from appliance_hub.errors import BatchInvalid, HeartbeatStale
from appliance_hub.heads import TRUNCATION_KINDS, record_head

HEARTBEAT_TYPE = "appliance-heartbeat/1"
MAX_HEARTBEAT_BYTES = 4096
HISTORY_S = 86400.0
MAX_FUTURE_S = 86400.0
SILENT_AFTER_S = 3600.0
STALE_AFTER_S = 2 * 86400.0

# field -> (type check, bound); None values are allowed where a device cannot know.
_TEXT = 64
_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "software_version": (str, False),
    "trust_version": (int, True),
    "trust_age_s": ((int, float), True),
    "last_sync_result": (str, True),
    "last_sync_time": (str, True),
    "audit_backlog": (int, True),
    "camera": (str, False),
    "clock_trusted": (bool, False),
    "disk_free_bytes": (int, False),
    "uptime_s": ((int, float), False),
    # Remote policy (spec LC1 s.4): the reason the device's trust data stops it, or null.
    "out_of_service": (str, True),
}
COLUMNS = tuple(_FIELDS)
OUT_OF_SERVICE = ("DEVICE_DISABLED", "SOFTWARE_OUTDATED")


def check_heartbeat(hb: Any) -> dict[str, Any]:
    """The checked fields of a parsed payload; BatchInvalid names the first bad one."""
    if not isinstance(hb, dict) or hb.get("type") != HEARTBEAT_TYPE:
        raise BatchInvalid("not a heartbeat")
    # audit_head: the log's signed head (appliance_hub.heads checks it with the key).
    allowed = {"type", "device_id", "time", "audit_head", *_FIELDS}
    extra = sorted(set(hb) - allowed)
    if extra:
        raise BatchInvalid(f"unknown heartbeat field {extra[0]!r}")
    if not isinstance(hb.get("device_id"), str):
        raise BatchInvalid("device_id must be a string")
    _epoch(hb.get("time"), "time")
    for name, (kind, nullable) in _FIELDS.items():
        value = hb.get(name)
        if value is None and nullable:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise BatchInvalid(
                f"{name} must be {'null or ' if nullable else ''}"
                f"{getattr(kind, '__name__', 'a number')}"
            )
        if isinstance(value, str) and (len(value) > _TEXT or not value.isprintable()):
            raise BatchInvalid(f"{name}: at most {_TEXT} printable characters")
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (not math.isfinite(value) or not 0 <= value < 2**62)
        ):
            raise BatchInvalid(f"{name} out of range")
    if hb.get("last_sync_time") is not None:
        _epoch(hb["last_sync_time"], "last_sync_time")
    if hb.get("out_of_service") not in (None, *OUT_OF_SERVICE):
        raise BatchInvalid(f"out_of_service must be null or one of {', '.join(OUT_OF_SERVICE)}")
    return hb


def _epoch(value: Any, name: str) -> float:
    if not isinstance(value, str) or len(value) > 40:
        raise BatchInvalid(f"{name} must be an ISO 8601 time")
    try:
        return parse_instant(value)
    except ValueError as e:
        raise BatchInvalid(f"{name}: {e}") from e


def _iso(epoch: float) -> str:
    return format_utc(epoch)


@dataclass(frozen=True)
class Thresholds:
    """When a device counts as silent, stale or failing (the fleet view and its alerts)."""

    silent_after_s: float = SILENT_AFTER_S
    stale_after_s: float = STALE_AFTER_S


class Fleet:
    """Heartbeats in the hub's database (tables from migration step 2)."""

    def __init__(self, store: Any, thresholds: Thresholds | None = None) -> None:
        self.store = store
        self.thresholds = thresholds or Thresholds()

    def record(
        self, hb: dict[str, Any], payload: bytes, now: float, head: SignedHead | None = None
    ) -> None:
        """Keep ``hb`` as the device's latest; HeartbeatStale if not newer than that.
        ``head``: its audit head, signature checked, compared with the highest held."""
        sent = _epoch(hb["time"], "time")
        if sent > now + MAX_FUTURE_S:
            raise BatchInvalid("heartbeat time is more than a day ahead of the hub")
        device_id = hb["device_id"]
        values = [hb.get(c) for c in COLUMNS]
        values[COLUMNS.index("clock_trusted")] = int(bool(hb["clock_trusted"]))
        lock = " FOR UPDATE" if self.store.postgres else ""
        with self.store._tx() as cur:
            cur.execute(
                "SELECT heartbeat_time FROM device_status "  # noqa: S608
                "WHERE device_id = ?" + lock,
                (device_id,),
            )
            row = cur.fetchone()
            if row is not None and _epoch(row[0], "held time") >= sent:
                raise HeartbeatStale("heartbeat not newer than the one held (replay?)")
            cols = ("device_id", "last_seen", "last_seen_epoch", "heartbeat_time", *COLUMNS)
            params = (device_id, _iso(now), now, hb["time"], *values)
            updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
            cur.execute(
                f"INSERT INTO device_status ({', '.join(cols)}) VALUES "  # noqa: S608
                f"({', '.join('?' * len(cols))}) ON CONFLICT (device_id) DO UPDATE "
                f"SET {updates}",
                params,
            )
            cur.execute(
                "INSERT INTO heartbeats VALUES (?, ?, ?, ?)",
                (device_id, _iso(now), now, payload.decode()),
            )
            cur.execute(
                "DELETE FROM heartbeats WHERE device_id = ? AND received_epoch < ?",
                (device_id, now - HISTORY_S),
            )
            if head is not None:
                record_head(cur, head, _iso(now))

    def devices(self, now: float) -> list[dict[str, Any]]:
        """Every device that sent a heartbeat, with its state flags, by device id."""
        with self.store._tx() as cur:
            cur.execute(
                "SELECT device_id, last_seen, last_seen_epoch, heartbeat_time, "  # noqa: S608
                f"{', '.join(COLUMNS)} FROM device_status ORDER BY device_id"
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            cur.execute(
                "SELECT device_id, count(*) FROM anomalies WHERE kind = 'fork' GROUP BY device_id"
            )
            forks = dict(cur.fetchall())
            cur.execute(
                "SELECT device_id, count(*) FROM anomalies WHERE kind IN "  # noqa: S608
                f"({', '.join('?' * len(TRUNCATION_KINDS))}) GROUP BY device_id",
                TRUNCATION_KINDS,
            )
            cut = dict(cur.fetchall())
        return [
            self._view(
                row, now, int(forks.get(row["device_id"], 0)), int(cut.get(row["device_id"], 0))
            )
            for row in rows
        ]

    def history(self, device_id: str) -> list[dict[str, Any]]:
        with self.store._tx() as cur:
            cur.execute(
                "SELECT received_at, payload FROM heartbeats WHERE device_id = ? "
                "ORDER BY received_epoch",
                (device_id,),
            )
            rows = cur.fetchall()
        return [{"received_at": at, **json.loads(payload)} for at, payload in rows]

    def _view(
        self, row: dict[str, Any], now: float, forks: int, truncations: int = 0
    ) -> dict[str, Any]:
        seen = float(row.pop("last_seen_epoch"))
        row["clock_trusted"] = bool(row["clock_trusted"])
        since = max(0.0, now - seen)
        # The age the device reported, grown by the time since it said so.
        age = None if row["trust_age_s"] is None else float(row["trust_age_s"]) + since
        row["trust_age_now_s"] = age
        row["chain_forks"] = forks
        # Records the device wrote that are gone or rewritten (appliance_hub.heads).
        row["audit_anomalies"] = truncations
        row["silent"] = since > self.thresholds.silent_after_s
        row["stale"] = age is None or age > self.thresholds.stale_after_s
        row["failing"] = (
            row["last_sync_result"] not in ("ok", None)
            or row["camera"] not in ("ok", "none")
            or not row["clock_trusted"]
            or forks > 0
            or truncations > 0
        )
        row["last_seen_epoch"] = seen
        return row
