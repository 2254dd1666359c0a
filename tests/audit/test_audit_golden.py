"""Golden vectors of the audit chain format (tests/data/audit-chain-v1.json, issue 15).

Stored logs on devices and at the hub are checked against these bytes forever, so the
record hash, genesis hash and checkpoint message must never change by accident. The file
was generated once from the code; each value is checked twice here: the code must
reproduce it, and an independent computation from the documented form (a hand-written
canonical JSON, hashlib, Ed25519) must agree with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance.audit.chain import (
    HASHED_FIELDS,
    canonical,
    checkpoint_message,
    genesis_hash,
    iso_time,
    normalise,
    record_hash,
)
from appliance.audit.identity import DeviceIdentity, DevicePublicKey

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "audit-chain-v1.json").read_text())
RECORDS = VECTORS["records"]


def _json_text(value: str) -> str:
    """A JSON string as the format writes it: ASCII only, lowercase \\uXXXX escapes."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            assert ord(ch) <= 0xFFFF, "the vectors hold no astral characters"
            out.append(f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'


def _independent_canonical(obj: dict[str, Any]) -> bytes:
    """Sorted keys, no white space; null, true/false, integers and text only."""

    def value(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        assert isinstance(v, str)
        return _json_text(v)

    return ("{" + ",".join(f"{_json_text(k)}:{value(obj[k])}" for k in sorted(obj)) + "}").encode(
        "ascii"
    )


def test_the_vectors_cover_every_hashed_field_and_the_tricky_values() -> None:
    for record in RECORDS:
        assert list(record["fields"]) == list(HASHED_FIELDS)
    values = [v for r in RECORDS for v in r["fields"].values()]
    assert None in values and True in values and False in values
    assert any(isinstance(v, str) and not v.isascii() for v in values)
    assert any(isinstance(v, str) and '"' in v and "\\" in v for v in values)


def test_genesis_hash() -> None:
    log_id = VECTORS["log_id"]
    expected = VECTORS["genesis_hash"]
    assert genesis_hash(log_id) == expected
    assert hashlib.sha256(b"appliance-audit-genesis-v1\n" + log_id.encode()).hexdigest() == expected


@pytest.mark.parametrize("i", range(len(RECORDS)))
def test_record_canonical_form_and_hash(i: int) -> None:
    record = RECORDS[i]
    fields = record["fields"]
    expected = record["canonical"].encode("ascii")
    assert canonical(normalise(fields)) == expected
    assert _independent_canonical(fields) == expected
    assert (
        hashlib.sha256(b"appliance-audit-record-v1\n" + expected).hexdigest()
        == record["record_hash"]
    )
    assert record_hash(fields) == record["record_hash"]


@pytest.mark.parametrize("i", range(len(RECORDS)))
def test_a_row_as_sqlite_returns_it_hashes_the_same(i: int) -> None:
    """SQLite gives 0/1 for ``live`` and may give integers as text: the hash is unchanged."""
    fields = dict(RECORDS[i]["fields"])
    fields["live"] = int(fields["live"])
    fields["seq"] = str(fields["seq"])
    assert record_hash(fields) == RECORDS[i]["record_hash"]


def test_times_and_the_chain_links() -> None:
    prev = VECTORS["genesis_hash"]
    for seq, record in enumerate(RECORDS, 1):
        fields = record["fields"]
        assert fields["seq"] == seq
        assert iso_time(record["epoch"]) == fields["time"]
        assert fields["prev_hash"] == prev
        prev = record["record_hash"]
    assert VECTORS["checkpoint"]["head"] == prev


def test_a_changed_field_changes_the_hash() -> None:
    fields = dict(RECORDS[0]["fields"])
    fields["verdict"] = "FAIL"
    assert record_hash(fields) != RECORDS[0]["record_hash"]


def test_checkpoint_message_and_signature() -> None:
    cp = VECTORS["checkpoint"]
    message = checkpoint_message(
        VECTORS["device_id"], VECTORS["log_id"], cp["seq"], cp["head"], cp["time"]
    )
    assert message == cp["message"].encode("ascii")
    assert (
        _independent_canonical(
            {
                "type": "appliance-audit-checkpoint-v1",
                "device_id": VECTORS["device_id"],
                "log_id": VECTORS["log_id"],
                "seq": cp["seq"],
                "hash": cp["head"],
                "time": cp["time"],
            }
        )
        == message
    )
    assert iso_time(cp["epoch"]) == cp["time"]
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(cp["test_key_seed_hex"]))
    identity = DeviceIdentity(VECTORS["device_id"], key)
    signature = base64.b64decode(cp["signature_b64"])
    assert identity.sign(message) == signature  # Ed25519 is deterministic
    public = DevicePublicKey.from_pem(identity.public.pem)
    assert public.key_id == cp["key_id"]
    assert public.verify(signature, message)
    assert not public.verify(signature, message.replace(b'"seq":3', b'"seq":4'))
