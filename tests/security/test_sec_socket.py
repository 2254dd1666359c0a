"""Attack replays on the kiosk socket: every malformed or hostile request gets a clear error
reply, nothing reaches the audit chain unchecked, the bridge keeps serving."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from support import NOW, World

from appliance.audit.export import port_export
from appliance.audit.log import AuditLog
from appliance.core.verifier import Checkpoint, verify
from appliance.kiosk.bridge import BridgeServer
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock

BOOM = "BOOM"


def exploding_verifier(text: str, trust, now, **kw):
    if text == BOOM:
        raise RecursionError("maximum recursion depth exceeded")
    return verify(text, trust, now, **kw)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture
def kiosk(world: World, tmp_path: Path):
    audit = AuditLog(
        tmp_path / "audit.db", device_id="pi-sec", hmac_key=b"k" * 32, identity=None
    ).open()
    snapshot = world.trust()
    service = VerificationService(
        lambda: snapshot,
        FixedClock(NOW),
        Checkpoint(check_staleness=False),
        audit=audit,
        verifier=exploding_verifier,
    )
    saved: list[tuple[str, ...]] = []
    port = LocalKioskPort(
        service,
        EventBus(),
        device={"id": "pi-sec"},
        trust=lambda: snapshot,
        clock=FixedClock(NOW),
        export=port_export(audit),
        on_accepted_types=saved.append,
    )
    server = BridgeServer(port, tmp_path / "k.sock", max_message_bytes=4 << 20).start()
    yield server, audit, saved
    server.close()
    audit.close()


def ask(server: BridgeServer, line: bytes) -> dict:
    """Send one raw request line, return the final reply (chunks skipped)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(server.path))
        s.sendall(line + b"\n")
        reader = s.makefile("rb")
        while True:
            raw = reader.readline()
            assert raw, "the kiosk closed the connection without an answer"
            reply = json.loads(raw)
            if "chunk" not in reply:
                return reply


def call(server: BridgeServer, method: str, **args) -> dict:
    return ask(server, json.dumps({"id": 1, "method": method, "args": args}).encode())


def records(audit: AuditLog) -> int:
    return audit.status()["records"]


@pytest.mark.parametrize("since", ["NaN", "Infinity", "-Infinity", "1e308", "-1e308"])
def test_export_with_a_non_finite_or_absurd_time_is_a_bad_request(kiosk, since):
    server, *_ = kiosk
    reply = ask(
        server, b'{"id": 1, "method": "export_audit", "args": {"since": %s}}' % since.encode()
    )
    assert reply["ok"] is False and reply["error"]["type"] == "BadRequest"
    assert call(server, "export_audit", until=NOW)["ok"] is True  # still serving


def test_a_deeply_nested_request_line_is_a_bad_request(kiosk):
    server, *_ = kiosk
    reply = ask(server, b"[" * 200_000 + b"]" * 200_000)
    assert reply["ok"] is False and reply["error"]["type"] == "BadRequest"
    nested_args = b'{"id": 2, "method": "status", "args": {"a": ' + b"[" * 100 + b"]" * 100 + b"}}"
    assert ask(server, nested_args)["error"]["type"] == "BadRequest"
    assert call(server, "verdict_totals")["ok"] is True


@pytest.mark.parametrize(
    "source", ["web\x1b[2J", "camera\nseq 7 PASS", "WEB", "x" * 33, "", "web text", 7]
)
def test_a_source_outside_the_fixed_charset_never_reaches_the_audit_chain(kiosk, world, source):
    server, audit, _ = kiosk
    reply = call(server, "verify_text", text=world.issue(), source=source)
    assert reply["ok"] is False and reply["error"]["type"] == "BadRequest"
    assert records(audit) == 0
    ok = call(server, "verify_text", text=world.issue(), source="web-text")
    assert ok["ok"] is True and records(audit) == 1


@pytest.mark.parametrize(
    "types", [["DL", "../etc"], ["DL\n"], [""], ["a" * 33], [f"T{i}" for i in range(33)], "DL", [1]]
)
def test_accepted_types_get_the_web_screens_validation(kiosk, types):
    server, _, saved = kiosk
    reply = call(server, "set_accepted_types", types=types)
    assert reply["ok"] is False and reply["error"]["type"] == "BadRequest"
    assert saved == [] and call(server, "accepted_types")["result"] == []
    assert call(server, "set_accepted_types", types=["DL", "M1.b"])["ok"] is True
    assert saved == [("DL", "M1.b")]


def test_verify_text_on_which_the_verifier_raises_answers_a_fail(kiosk):
    """Before: InternalError over the socket (the web answered 500/503)."""
    server, audit, _ = kiosk
    reply = call(server, "verify_text", text=BOOM, source="web-text")
    assert reply["ok"] is True and reply["result"]["outcome"] == "FAIL"
    assert records(audit) == 1
