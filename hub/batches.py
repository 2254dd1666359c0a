"""What the hub accepts from the network, checked before anything else touches it.

Bounded JSON: UTF-8 only, nesting depth and container count capped *before* the parser
runs (Python's parser recurses, so 200k nested arrays would exhaust the stack and answer
500 before authentication), NaN and infinities refused. Then the shape of an audit batch:
the type and range of every field the hub reads or stores, so a signed but malformed batch
is a 400 naming the field, never a 500 from the hash code or the database driver.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
from typing import Any

from appliance.audit.chain import HASHED_FIELDS
from appliance_hub.errors import BatchInvalid

BATCH_TYPE = "appliance-audit-batch-v1"
MAX_DEPTH = 8  # a batch is 4 deep (batch, records, record, value); room to spare
MAX_TEXT = 1024  # the longest text field a record holds (hashes are 64)
MAX_SEQ = 2**63 - 1  # BIGINT in SQLite and PostgreSQL
MAX_BATCH_RECORDS = 5000
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INT_FIELDS = {"seq", "trust_version"}


def _refuse_constant(name: str) -> Any:
    raise BatchInvalid(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BatchInvalid(f"number {text[:20]} is out of range")
    return value


def load_json(data: bytes | bytearray, max_containers: int) -> Any:
    """Parse ``data`` as JSON after checking its nesting without recursion."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BatchInvalid("body is not UTF-8") from e
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) > 2 * max_containers:
        raise BatchInvalid(f"more than {max_containers} arrays and objects")
    steps = (1 if c in "[{" else -1 for c in brackets)
    if max(itertools.accumulate(steps), default=0) > MAX_DEPTH:
        raise BatchInvalid(f"JSON nested deeper than {MAX_DEPTH}")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, RecursionError) as e:  # RecursionError: belt and braces
        raise BatchInvalid(f"not JSON: {str(e)[:80]}") from e


def open_envelope(body: bytes, max_containers: int) -> tuple[bytes, bytes, Any]:
    """Payload bytes, signature and parsed payload of a signed body
    ``{"payload": base64, "signature": base64}`` (batches and heartbeats), each parse
    bounded; the caller checks what the payload is."""
    envelope = load_json(body, max_containers=4)
    if not isinstance(envelope, dict) or not all(
        isinstance(envelope.get(k), str) for k in ("payload", "signature")
    ):
        raise BatchInvalid("body must be a JSON object with base64 payload and signature")
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signature"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise BatchInvalid("payload and signature must be base64") from e
    return payload, signature, load_json(payload, max_containers=max_containers)


def check_shape(batch: Any, max_records: int = MAX_BATCH_RECORDS) -> None:
    """Types and ranges of a parsed batch: raises BatchInvalid naming the first bad field."""
    if not isinstance(batch, dict) or batch.get("type") != BATCH_TYPE:
        raise BatchInvalid("not an audit batch")
    for name in ("device_id", "log_id"):
        _text(batch.get(name), name, required=True)
    for name in ("first_seq", "last_seq"):
        _int(batch.get(name), name, required=True)
    records = batch.get("records")
    if not isinstance(records, list) or not 1 <= len(records) <= max_records:
        raise BatchInvalid(f"records must be a list of 1..{max_records} objects")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise BatchInvalid(f"record {i} is not an object")
        for name in (*HASHED_FIELDS, "hash"):
            where = f"record {i} {name}"
            if name == "live":
                if not isinstance(rec.get(name), bool | None):
                    raise BatchInvalid(f"{where} must be true or false")
            elif name in _INT_FIELDS:
                _int(rec.get(name), where, required=name == "seq")
            else:
                _text(
                    rec.get(name),
                    where,
                    required=name in ("device_id", "log_id", "prev_hash", "hash"),
                )
    checkpoints = batch.get("checkpoints", [])
    if not isinstance(checkpoints, list) or len(checkpoints) > max_records:
        raise BatchInvalid(f"checkpoints must be a list of at most {max_records} objects")
    for i, cp in enumerate(checkpoints):
        if not isinstance(cp, dict):
            raise BatchInvalid(f"checkpoint {i} is not an object")
        _int(cp.get("seq"), f"checkpoint {i} seq", required=True)
        for name in ("hash", "time", "signature", "key_id"):
            _text(cp.get(name), f"checkpoint {i} {name}", required=name != "key_id")


def _int(value: Any, where: str, *, required: bool) -> None:
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise BatchInvalid(f"{where} must be an integer from 0 to {MAX_SEQ}")


def _text(value: Any, where: str, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise BatchInvalid(f"{where} must be text of at most {MAX_TEXT} characters, no NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate from a \\ud800 escape
        raise BatchInvalid(f"{where} is not valid Unicode") from e
