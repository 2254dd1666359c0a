"""Verification of an audit log: the hash chain, the signed checkpoints and the head.

Pure over the rows it is given (``AuditLog.verify`` reads them in one read transaction),
so the hub and tests can check a chain without a database.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.audit.chain import checkpoint_message, genesis_hash, record_hash
from appliance.audit.identity import DevicePublicKey
from appliance.core.isotime import instant_or_none

# A record's time may sit this far before the previous record's (clock slew) before it is
# a finding: beyond it the record was back-dated or written with a clock set back.
TIME_BACK_TOLERANCE_S = 5.0


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return (
                f"OK: {self.records} records, chain intact, "
                f"{self.checkpoints} checkpoint signatures valid"
            )
        return f"TAMPERED: {self.problem}"


def check_chain(
    *,
    device_id: str,
    log_id: str,
    public: DevicePublicKey | None,
    checkpoints: Mapping[int, Mapping[str, Any]],
    records: Iterable[Mapping[str, Any]],
    head: Callable[[], int],
) -> VerifyReport:
    """Check the chain from its anchor, every signed checkpoint and the head; the report
    names the first bad record (edited, inserted, deleted, reordered or rewritten)."""
    bad = _Findings()
    for seq in sorted(checkpoints):
        cp = checkpoints[seq]
        if public is None:
            bad.add(seq, f"checkpoint at seq {seq}: no device public key to check it")
            continue
        message = checkpoint_message(device_id, log_id, seq, cp["hash"], cp["time"])
        if not public.verify(base64.b64decode(cp["signature"]), message):
            bad.add(seq, f"checkpoint at seq {seq}: device signature invalid")
    prev_seq, prev_hash, count = None, None, 0
    prev_time: float | None = None
    for row in records:
        seq, count = row["seq"], count + 1
        if prev_seq is None:
            if seq == 1:
                prev_hash = genesis_hash(log_id)
            elif seq - 1 in checkpoints:
                prev_hash = checkpoints[seq - 1]["hash"]
            else:
                bad.add(seq, f"seq {seq}: records 1..{seq - 1} missing, no signed anchor")
                prev_hash = row["prev_hash"]
        elif seq != prev_seq + 1:
            bad.add(
                prev_seq + 1, f"seq {prev_seq + 1}: missing (deleted; next present is seq {seq})"
            )
            prev_hash = row["prev_hash"]
        if row["log_id"] != log_id or row["device_id"] != device_id:
            bad.add(seq, f"seq {seq}: belongs to another log or device (inserted)")
        if record_hash(row) != row["hash"]:
            bad.add(seq, f"seq {seq}: contents do not match its hash (edited)")
        elif row["prev_hash"] != prev_hash:
            bad.add(
                seq,
                f"seq {seq}: chain broken, previous hash differs "
                "(inserted, reordered or rewritten)",
            )
        if seq in checkpoints and checkpoints[seq]["hash"] != row["hash"]:
            bad.add(seq, f"seq {seq}: differs from the signed checkpoint (chain rewritten)")
        when = instant_or_none(row["time"])
        if when is not None and prev_time is not None and when < prev_time - TIME_BACK_TOLERANCE_S:
            bad.add(
                seq,
                f"seq {seq}: time goes backwards, {prev_time - when:.0f} s before "
                "the previous record's (back-dated, or the clock was set back)",
            )
        prev_seq, prev_hash, prev_time = seq, row["hash"], when
    head_seq = head()
    last = max([head_seq, *checkpoints]) if checkpoints else head_seq
    if (prev_seq or 0) < last:
        bad.add(
            (prev_seq or 0) + 1,
            f"seq {(prev_seq or 0) + 1}: missing (records up to "
            f"seq {last} were written; deleted at the end)",
        )
    if bad.first is None:
        return VerifyReport(True, count, len(checkpoints))
    return VerifyReport(False, count, len(checkpoints), bad.first[0], bad.first[1])


class _Findings:
    def __init__(self) -> None:
        self.first: tuple[int, str] | None = None

    def add(self, seq: int, problem: str) -> None:
        if self.first is None or seq < self.first[0]:
            self.first = (seq, problem)
