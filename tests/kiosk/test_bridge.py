"""The kiosk socket bridge: every KioskPort method over a real Unix socket against a
LocalKioskPort with a real VerificationService; live events; restart; kiosk down; caps."""

from __future__ import annotations

import io
import json
import logging
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
import segno
from support import NOW, World

from appliance.commands.web import _with_kiosk_errors
from appliance.config import config_from_mapping
from appliance.core.errors import ImageReadError
from appliance.core.reasons import Outcome
from appliance.core.verifier import Checkpoint
from appliance.kiosk.bridge import BridgeServer
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.verification import VerificationService
from appliance.port.errors import BridgeError, MessageTooLarge, PortUnavailable
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock
from appliance_web import create_app
from appliance_web.errors import KioskNotRunning
from appliance_web.socket_port import SocketKioskPort

MAX = 1 << 20  # 1 MiB per message in these tests


class Kiosk:
    """The kiosk side: a real service and bus behind a LocalKioskPort and a BridgeServer."""

    def __init__(self, path: Path, world: World) -> None:
        self.path = path
        self.world = world
        snapshot = world.trust()
        self.service = VerificationService(
            trust=lambda: snapshot,
            clock=FixedClock(NOW),
            checkpoint=Checkpoint(check_staleness=False),
            audit=None,
            audit_required=False,
        )
        self.bus = EventBus()
        self.synced = 0
        self.exported: list[tuple[float | None, float | None]] = []
        self.port = LocalKioskPort(
            self.service,
            self.bus,
            device={"id": "pi-007", "name": "Gate 7", "mode": "inspector", "camera": "images"},
            trust=lambda: snapshot,
            clock=FixedClock(NOW),
            show_holder=True,
            providers={"camera": lambda: {"fps": 9.5, "frames": 120, "camera_ok": True}},
            sync=self._sync,
            export=self._export,
        )
        self.server: BridgeServer | None = None

    def _sync(self) -> str:
        self.synced += 1
        return "sync started"

    def _export(self, since: float | None, until: float | None) -> bytes:
        self.exported.append((since, until))
        return b"".join(b'{"seq": %d, "outcome": "PASS"}\n' % i for i in range(20_000))

    def start(self) -> Kiosk:
        self.server = BridgeServer(
            self.port, self.path, max_message_bytes=MAX, heartbeat_s=0.2
        ).start()
        return self

    def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        self.server = None


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "kiosk.sock"


@pytest.fixture
def kiosk(sock_path: Path):
    k = Kiosk(sock_path, World()).start()
    yield k
    if k.server is not None:
        k.stop()


@pytest.fixture
def client(sock_path: Path) -> SocketKioskPort:
    return SocketKioskPort(sock_path, timeout_s=5.0, max_message_bytes=MAX)


def qr_png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
    return buf.getvalue()


def test_socket_is_private_to_user_and_group(kiosk: Kiosk, sock_path: Path) -> None:
    mode = sock_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_every_method_over_the_socket(kiosk: Kiosk, client: SocketKioskPort) -> None:
    status = client.status()
    assert status["kiosk"]["running"] is True
    assert status["device"]["id"] == "pi-007"
    assert status["camera"]["fps"] == 9.5 and status["camera"]["frames"] == 120
    assert status["trust"]["issuers"] == ["Department of Land Transport"]
    assert status["clock"] == {"now": NOW, "trusted": True}

    event = client.verify_text(kiosk.world.issue())
    assert event["outcome"] == "PASS" and event["source"] == "web-text"
    assert event["holder"]["nml"] == "Somchai Jaidee"  # inspector mode: details cross, in memory
    failed = client.verify_text("not a licence", source="tester")
    assert failed["outcome"] == "FAIL" and failed["source"] == "tester"

    recent = client.recent_verdicts(5)
    assert [e["id"] for e in recent] == [failed["id"], event["id"]]
    assert client.recent_verdicts(1) == [recent[0]]
    assert client.get_verdict(event["id"]) == event
    assert client.get_verdict("no-such-id") is None

    totals = client.verdict_totals()
    assert totals == {"PASS": 1, "FAIL": 1, "UNVERIFIABLE": 0}
    hours = client.verdicts_per_hour(3)
    assert len(hours) == 3 and sum(r["PASS"] for r in hours) == 1

    images = client.verify_image(qr_png(kiosk.world.issue()))
    assert [e["outcome"] for e in images] == ["PASS"]
    assert images[0]["source"] == "web-image"
    empty = client.verify_image(_blank_png())
    assert [(e["outcome"], e["reason"]) for e in empty] == [("FAIL", "NO_QR_FOUND")]
    with pytest.raises(ImageReadError):
        client.verify_image(b"this is no picture")

    assert client.trigger_sync() == "sync started" and kiosk.synced == 1
    with pytest.raises(PortUnavailable, match="upload is not configured"):
        client.trigger_upload()

    exported = client.export_audit(since=NOW - 60, until=NOW)
    assert exported == kiosk._export(None, None)  # several chunks, reassembled
    assert len(exported) > 2 * 256 * 1024
    assert kiosk.exported[0] == (NOW - 60, NOW)

    assert client.accepted_types() == ()
    client.set_accepted_types(["DL", "TDL"])
    assert client.accepted_types() == ("DL", "TDL")
    assert kiosk.service.checkpoint.accepted_types == frozenset({"DL", "TDL"})


def _blank_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (120, 90), 200).save(buf, "PNG")
    return buf.getvalue()


def test_events_stream_to_the_web(kiosk: Kiosk, client: SocketKioskPort) -> None:
    stream = client.events(timeout_s=0.5)  # subscribed now: nothing published after is lost
    other = SocketKioskPort(kiosk.path, timeout_s=5.0, max_message_bytes=MAX)
    sent = [other.verify_text(kiosk.world.issue()), other.verify_text("garbage")]
    kiosk.bus.publish({"type": "fault", "fault": "camera", "at": NOW})
    got = []
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        event = next(stream)
        if event is not None:
            got.append(event)
    stream.close()
    assert [e.get("id") for e in got[:2]] == [e["id"] for e in sent]
    assert got[0]["holder"]["nm"] == "สมชาย ใจดี"
    assert got[2] == {"type": "fault", "fault": "camera", "at": NOW}


def test_quiet_stream_yields_keepalives(kiosk: Kiosk, client: SocketKioskPort) -> None:
    """Nothing published: a keep-alive (None), and the stream still carries what follows
    (no wall-clock bound: how long the wait took depends on the machine)."""
    stream = client.events(timeout_s=0.05)
    assert next(stream) is None
    kiosk.bus.publish({"type": "fault", "fault": "camera", "at": NOW})
    got = None
    for _ in range(200):  # keep-alives until the event: a bound, not a duration
        got = next(stream)
        if got is not None:
            break
    stream.close()
    assert got == {"type": "fault", "fault": "camera", "at": NOW}


def test_kiosk_restart_reconnects(kiosk: Kiosk, client: SocketKioskPort) -> None:
    stream = client.events(timeout_s=0.3)
    assert client.status()["kiosk"]["running"] is True

    kiosk.stop()
    assert not kiosk.path.exists()
    assert client.status()["kiosk"]["running"] is False
    with pytest.raises(KioskNotRunning, match="kiosk not running"):
        client.verify_text("anything")
    seen = [next(stream) for _ in range(3)]
    assert {"type": "fault", "fault": "kiosk"} in [
        {k: e[k] for k in ("type", "fault")} for e in seen if e
    ]

    kiosk.start()  # a new kiosk process: same socket path, fresh server
    assert client.status()["kiosk"]["running"] is True
    deadline = time.monotonic() + 5
    event = None
    while time.monotonic() < deadline:
        # the stream re-subscribes with backoff; keep verifying until it sees one
        sent = client.verify_text(kiosk.world.issue())
        for _ in range(4):
            event = next(stream)
            if event is not None and event.get("id") == sent["id"]:
                break
        if event is not None and event.get("id") == sent["id"]:
            break
    stream.close()
    assert event is not None and event["outcome"] == "PASS"


def test_kiosk_down_gives_clear_answers(sock_path: Path, client: SocketKioskPort) -> None:
    status = client.status()
    assert status["kiosk"]["running"] is False
    assert "kiosk not running" in status["kiosk"]["error"]
    assert "kiosk not running" in status["trust"]["error"]
    assert client.recent_verdicts() == []
    assert client.get_verdict("x") is None
    assert client.verdict_totals() == {"PASS": 0, "FAIL": 0, "UNVERIFIABLE": 0}
    assert len(client.verdicts_per_hour(24)) == 24
    for call in (
        lambda: client.verify_text("x"),
        lambda: client.verify_image(b"x"),
        client.trigger_sync,
        client.trigger_upload,
        client.export_audit,
        client.accepted_types,
        lambda: client.set_accepted_types(["DL"]),
    ):
        with pytest.raises(KioskNotRunning, match=f"kiosk not running.*{sock_path.name}"):
            call()
    stream = client.events(timeout_s=0.2)
    assert next(stream) is None  # keep-alive while it waits for the kiosk
    stream.close()


def test_web_screens_say_kiosk_not_running(
    sock_path: Path, client: SocketKioskPort, tmp_path: Path
) -> None:
    config = config_from_mapping(
        {
            "paths": {"state_dir": str(tmp_path / "state")},
            "web": {"language": "en", "kiosk_socket": str(sock_path)},
        }
    )
    app = _with_kiosk_errors(create_app(client, config, secret_key=b"k" * 32, testing=True))
    web = app.test_client()
    page = web.get("/status")
    assert page.status_code == 200
    assert b"kiosk not running" in page.data
    assert web.get("/healthz").status_code == 503
    assert web.get("/api/status").get_json()["kiosk"]["running"] is False
    assert web.get("/api/verdicts").get_json() == {"verdicts": []}
    assert web.get("/").status_code == 200


def test_oversized_messages_are_refused(
    kiosk: Kiosk, client: SocketKioskPort, sock_path: Path
) -> None:
    with pytest.raises(MessageTooLarge):
        client.verify_text("x" * (MAX + 1))  # refused before it is sent
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        raw.connect(str(sock_path))
        with pytest.raises(OSError):
            # the server answers and hangs up before the whole message is sent
            raw.sendall(
                b'{"id": 1, "method": "verify_text", "args": {"text": "'
                + b"x" * (4 * MAX)
                + b'"}}\n'
            )
        answer = raw.recv(65536)
    if answer:  # the refusal, when it arrived before the reset
        reply = json.loads(answer.split(b"\n")[0])
        assert reply["error"]["type"] == "MessageTooLarge"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        raw.connect(str(sock_path))
        raw.sendall(
            b'{"id": 1, "method": "verify_text", "args": {"text": "' + b"x" * MAX + b'"}}\n'
        )
        reply = json.loads(raw.makefile("rb").readline())
    assert reply["ok"] is False and reply["error"]["type"] == "MessageTooLarge"
    assert client.status()["kiosk"]["running"] is True  # the bridge carries on


def test_bad_requests_get_errors_not_crashes(
    kiosk: Kiosk, sock_path: Path, client: SocketKioskPort
) -> None:
    def ask(line: bytes) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(5)
            raw.connect(str(sock_path))
            raw.sendall(line)
            return json.loads(raw.makefile("rb").readline())

    assert ask(b"{not json\n")["error"]["type"] == "BadRequest"
    assert ask(b'{"id": 2, "method": "drop_tables"}\n')["error"]["type"] == "BadRequest"
    assert (
        ask(b'{"id": 3, "method": "recent_verdicts", "args": {"limit": "9"}}\n')["error"]["type"]
        == "BadRequest"
    )
    hello = ask(b'{"id": 4, "method": "hello"}\n')
    assert hello["result"]["protocol"] == 1 and hello["id"] == 4
    assert client.status()["kiosk"]["running"] is True


def test_stale_socket_replaced_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nothing listens: a crashed kiosk
    world = World()
    first = Kiosk(path, world).start()
    try:
        with pytest.raises(BridgeError, match="already listening"):
            Kiosk(path, world).start()
        assert SocketKioskPort(path).status()["kiosk"]["running"] is True
    finally:
        first.stop()
    path.write_text("not a socket")
    with pytest.raises(BridgeError, match="not a socket"):
        Kiosk(path, world).start()


def test_holder_details_never_logged(
    kiosk: Kiosk, client: SocketKioskPort, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stream = client.events(timeout_s=0.3)
    client.verify_text(kiosk.world.issue())
    while (event := next(stream)) is None:
        pass
    stream.close()
    kiosk.stop()
    client.status()
    assert event["holder"]["nml"] == "Somchai Jaidee"
    for secret in ("Somchai", "สมชาย", "63001234", "LC1:"):
        assert secret not in caplog.text


def test_concurrent_calls(kiosk: Kiosk, client: SocketKioskPort) -> None:
    results: list[str] = []

    def work() -> None:
        for _ in range(10):
            results.append(client.verify_text(kiosk.world.issue())["outcome"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [str(Outcome.PASS)] * 40
    assert client.verdict_totals()["PASS"] == 40
