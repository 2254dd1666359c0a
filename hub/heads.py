"""The highest signed head the hub has seen per device log, and what contradicts it.

Every batch and heartbeat carries the device's head (``appliance.audit.head``: device id,
log id, seq, hash, time, signed by the device key). The hub keeps the highest per log and
raises an anomaly (kept in ``anomalies``, counted on ``/metrics`` and the fleet view, so
the fleet alerts fire) when:

- ``head_regressed``: a later head (signed later) is below the one held: records were
  deleted from the end of the device's log, uploaded or not;
- ``fork``: a head at the held seq with another hash, or a head the stored records
  contradict: the log was rewritten;
- ``new_log``: the device starts a new log while an older one has records the hub never
  received (its signed head is above what the hub holds): ``audit.db`` was deleted or
  replaced with those records in it;
- ``time_backwards``: a record is dated before the one it follows (``times_forward``,
  called by ``store.ingest``).

A head dated before the one held is an old statement arriving late (the heartbeat and
upload services send independently): ignored, never an anomaly.
"""

from __future__ import annotations

import itertools
from typing import Any

from appliance.audit.head import HubSigner, SignedHead
from appliance.audit.identity import DevicePublicKey
from appliance.audit.verification import TIME_BACK_TOLERANCE_S
from appliance.core.isotime import parse_instant
from appliance_hub.errors import BatchInvalid

# Anomalies that mean records the device wrote are missing or rewritten (not the hub's
# own gaps): they make a log incomplete and a device failing.
TRUNCATION_KINDS = ("head_regressed", "new_log", "time_backwards")


def signed_ack(signer: HubSigner | None, answer: dict[str, Any]) -> dict[str, Any]:
    """The batch answer with the hub's signed acknowledgement of its last record (what the
    device marks uploaded on); without a key the answer carries none and devices mark
    nothing (a warning at start says so)."""
    out = dict(answer)
    last_hash = out.pop("last_hash")
    if signer is not None:
        out["ack"] = signer.ack(
            out["device_id"], out["log_id"], out["acked"][1], last_hash
        ).as_dict()
    return out


def verified_head(key: DevicePublicKey, value: Any, device_id: str) -> SignedHead | None:
    """The signed head of a batch or heartbeat (None when absent); BatchInvalid when it is
    malformed, another device's, or not signed by ``key``."""
    if value is None:
        return None
    try:
        head = SignedHead.parse(value)
        parse_instant(head.time)
    except ValueError as e:
        raise BatchInvalid(f"audit head: {e}") from e
    if head.device_id != device_id:
        raise BatchInvalid("audit head: another device's")
    if not head.verify(key):
        raise BatchInvalid("audit head: signature invalid")
    return head


def anomaly(
    cur: Any, device_id: str, log_id: str, seq: int | None, kind: str, detail: str, received: str
) -> None:
    """Keep an anomaly once (the same kind at the same seq of a log is not repeated)."""
    cur.execute(
        "SELECT 1 FROM anomalies WHERE device_id = ? AND log_id = ? AND kind = ? AND seq = ?",
        (device_id, log_id, kind, seq),
    )
    if cur.fetchone() is None:
        cur.execute(
            "INSERT INTO anomalies VALUES (?, ?, ?, ?, ?, ?)",
            (device_id, log_id, seq, kind, detail, received),
        )


def record_head(cur: Any, head: SignedHead, received: str) -> None:
    """Compare ``head`` (verified) with what the hub holds, inside the caller's transaction;
    keep it when it is the highest, raise the anomalies it reveals."""
    dev, lid = head.device_id, head.log_id
    cur.execute(
        "SELECT seq, hash, head_time FROM log_heads WHERE device_id = ? AND log_id = ?", (dev, lid)
    )
    held = cur.fetchone()
    if held is None:
        _new_log(cur, head, received)
    else:
        seq, digest, time = int(held[0]), held[1], held[2]
        later = parse_instant(head.time) > parse_instant(time)
        if head.seq < seq:
            if later:
                anomaly(
                    cur,
                    dev,
                    lid,
                    head.seq + 1,
                    "head_regressed",
                    f"head at seq {head.seq} signed {head.time}, below the head at seq "
                    f"{seq} signed {time}: records {head.seq + 1}..{seq} deleted from "
                    "the device",
                    received,
                )
            return
        if head.seq == seq:
            if head.hash != digest:
                anomaly(
                    cur,
                    dev,
                    lid,
                    seq,
                    "fork",
                    f"seq {seq}: two signed heads with different hashes (log rewritten)",
                    received,
                )
            return
    cur.execute(
        "SELECT hash FROM records WHERE device_id = ? AND log_id = ? AND seq = ?",
        (dev, lid, head.seq),
    )
    stored = cur.fetchone()
    if stored is not None and stored[0] != head.hash:
        anomaly(
            cur,
            dev,
            lid,
            head.seq,
            "fork",
            f"seq {head.seq}: the signed head differs from the record held (log rewritten)",
            received,
        )
        return
    if held is None:
        cur.execute(
            "INSERT INTO log_heads VALUES (?, ?, ?, ?, ?, ?, ?)",
            (dev, lid, head.seq, head.hash, head.time, head.signature, received),
        )
    else:
        cur.execute(
            "UPDATE log_heads SET seq = ?, hash = ?, head_time = ?, signature = ?, "
            "received_at = ? WHERE device_id = ? AND log_id = ?",
            (head.seq, head.hash, head.time, head.signature, received, dev, lid),
        )


def check_records(
    cur: Any, device_id: str, log_id: str, records: list[dict[str, Any]], received: str
) -> None:
    """Records just stored against the held head (one query): a record at the head's seq
    with another hash means the log was rewritten after the head was signed."""
    cur.execute(
        "SELECT seq, hash FROM log_heads WHERE device_id = ? AND log_id = ?", (device_id, log_id)
    )
    row = cur.fetchone()
    if row is None:
        return
    seq, digest = int(row[0]), row[1]
    for rec in records:
        if rec["seq"] == seq and rec["hash"] != digest:
            anomaly(
                cur,
                device_id,
                log_id,
                seq,
                "fork",
                f"seq {seq}: the record differs "
                "from the head the device signed there (log rewritten)",
                received,
            )


def _new_log(cur: Any, head: SignedHead, received: str) -> None:
    """A log the hub has no head for: is an older log of the device left with records the
    hub never received?"""
    cur.execute(
        "SELECT h.log_id, h.seq, coalesce(l.contiguous_through, 0) FROM log_heads h "
        "LEFT JOIN logs l ON l.device_id = h.device_id AND l.log_id = h.log_id "
        "WHERE h.device_id = ? AND h.log_id <> ?",
        (head.device_id, head.log_id),
    )
    for old, seq, through in cur.fetchall():
        if int(seq) > int(through):
            anomaly(
                cur,
                head.device_id,
                old,
                int(through) + 1,
                "new_log",
                f"the device started log {head.log_id} while records "
                f"{int(through) + 1}..{seq} of this log never reached the hub "
                "(audit log deleted or replaced)",
                received,
            )


def head_summary(cur: Any, device_id: str, log_id: str) -> dict[str, Any] | None:
    """The held head of a log for the auditor (``integrity``)."""
    cur.execute(
        "SELECT seq, hash, head_time, received_at FROM log_heads WHERE "
        "device_id = ? AND log_id = ?",
        (device_id, log_id),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return {"seq": int(row[0]), "hash": row[1], "time": row[2], "received_at": row[3]}


def times_forward(
    cur: Any, records: list[dict[str, Any]], held: dict[int, tuple[str, str, str]], received: str
) -> None:
    """``time_backwards``: a record dated before the one it follows (beyond the tolerance
    ``audit verify`` allows a clock that NTP steps back); the record is kept, it is
    evidence. ``held``: the hub's records around the batch, seq -> (hash, prev, time)."""
    first = records[0]
    prev = held.get(first["seq"] - 1)
    pairs = [(prev[2], first)] if prev is not None else []
    pairs += [(a["time"], b) for a, b in itertools.pairwise(records)]
    nxt = held.get(records[-1]["seq"] + 1)
    if nxt is not None:
        pairs.append((records[-1]["time"], {"seq": records[-1]["seq"] + 1, "time": nxt[2]}))
    for before, rec in pairs:
        if _instant(rec["time"]) < _instant(before) - TIME_BACK_TOLERANCE_S:
            anomaly(
                cur,
                first["device_id"],
                first["log_id"],
                rec["seq"],
                "time_backwards",
                f"seq {rec['seq']}: dated {rec['time']}, before the record it follows "
                f"({before}): back-dated or clock set back",
                received,
            )


def _instant(text: Any) -> float:
    """A record time as epoch seconds; an unreadable one orders first (never raises)."""
    try:
        return parse_instant(str(text))
    except ValueError:
        return float("-inf")
