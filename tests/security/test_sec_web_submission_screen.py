"""Attack replay (issue 21, finding 8): a web ``/verify`` submission shown on the walk-up
kiosk screen as if it had been scanned.

Anyone who could reach ``/verify`` pasted a genuine licence while a person stood at the
kiosk with a revoked or forged one: the LED lit the scanned code's red, and the citizen's
screen (``/kiosk``, fed by ``/kiosk/events``) showed the web submission's PASS. The web
could also name its submission ``camera`` over the kiosk socket.

Replayed end to end with real parts: the kiosk loop (real decoder, verifier and gpiozero
mock pins) and its port served by the real socket bridge, the web screens over the web's
socket client on a real loopback HTTP server, the kiosk screen's event stream read as a
browser reads it. The screen must show the scanned verdict and never the submission.
"""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from support import NOW, World, qr_frame
from web_support import LiveServer

from appliance.config import IndicatorConfig, config_from_mapping
from appliance.core.verifier import Checkpoint
from appliance.devices.camera import Frame
from appliance.devices.indicator import GpiozeroIndicator, lamp_states
from appliance.devices.scanner import FrameScanner, make_decoder
from appliance.kiosk.bridge import BridgeServer
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.loop import Kiosk
from appliance.kiosk.verification import NullAudit, VerificationService
from appliance.port.errors import BadRequest
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock
from appliance_web import create_app
from appliance_web.socket_port import SocketKioskPort


class OneFrame:
    """A camera that shows one frame, then nothing."""

    def __init__(self, text: str) -> None:
        self.frames = [qr_frame(text)]

    def open(self) -> None:
        pass

    def read(self, timeout_s: float) -> Frame | None:
        return Frame(self.frames.pop(0), 100.0) if self.frames else None

    def close(self) -> None:
        pass


class SseReader:
    """``/kiosk/events`` read as a browser reads it: one ``event: verdict`` data at a time."""

    def __init__(self, live: LiveServer) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        self.conn.request("GET", "/kiosk/events?lang=en")
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.readline().startswith(b"retry:")  # subscribed from here on

    def next_verdict(self) -> dict:
        while True:
            line = self.response.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                return json.loads(line[6:])

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def device(tmp_path: Path):
    world = World()
    snapshot = world.trust()
    service = VerificationService(
        lambda: snapshot, FixedClock(NOW), Checkpoint(check_staleness=False), audit=NullAudit()
    )
    bus = EventBus()
    port = LocalKioskPort(
        service,
        bus,
        device={"id": "gate-1", "mode": "kiosk"},
        trust=lambda: snapshot,
        clock=FixedClock(NOW),
    )
    sock = tmp_path / "kiosk.sock"
    bridge = BridgeServer(port, sock, heartbeat_s=0.2).start()
    config = config_from_mapping(
        {
            "device": {"id": "gate-1", "mode": "kiosk"},
            "paths": {"state_dir": str(tmp_path / "state")},
            "web": {
                "language": "en",
                "kiosk_socket": str(sock),
                "trusted_hosts": ["127.0.0.1", "localhost"],
            },
        }
    )
    client = SocketKioskPort(sock, timeout_s=10)
    live = LiveServer(create_app(client, config, secret_key=b"k" * 32))
    indicator = GpiozeroIndicator(
        IndicatorConfig(backend="mock", verdict_hold_s=60), pin_factory=MockFactory()
    )
    try:
        yield world, service, bus, live, client, indicator
    finally:
        live.close()
        client.close()
        bridge.close()
        indicator.close()


def test_web_submission_is_not_shown_on_the_kiosk_screen(device) -> None:
    world, service, bus, live, _client, indicator = device
    screen = SseReader(live)
    try:
        # Someone on the web submits a genuine licence ...
        cookie, token = live.form_session("/verify")
        status, body = live.post_multipart(
            "/verify", cookie, {"csrf_token": token, "text": world.issue()}, {}
        )
        assert status == 200 and b"valid" in body.lower()  # the submitter sees the verdict
        # ... while the person at the kiosk holds up a code that is not a licence.
        kiosk = Kiosk(
            OneFrame("not a licence"), FrameScanner(make_decoder("zxing")), service, indicator, bus
        )
        kiosk._open_camera()
        kiosk.poll_once(0)
        assert lamp_states(indicator)["red"] is True

        shown = screen.next_verdict()
        # The first (and only) verdict on the citizen's screen is the scanned code's.
        assert (shown["outcome"], shown["code"]) == ("fail", "UNKNOWN_FORMAT")
    finally:
        screen.close()


def test_web_cannot_submit_as_the_camera(device) -> None:
    world, _service, _bus, _live, client, _indicator = device
    for source in ("camera", "serial", "hid", "scanner"):
        with pytest.raises(BadRequest, match="source"):
            client.verify_text(world.issue(), source=source)
    # The web's own names still verify.
    assert client.verify_text(world.issue(), source="web-text")["outcome"] == "PASS"


def test_scanned_verdicts_still_reach_the_screen(device) -> None:
    world, service, bus, live, _client, indicator = device
    screen = SseReader(live)
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.append(screen.next_verdict()), daemon=True)
    reader.start()
    try:
        kiosk = Kiosk(
            OneFrame(world.issue()), FrameScanner(make_decoder("zxing")), service, indicator, bus
        )
        kiosk._open_camera()
        kiosk.poll_once(0)
        reader.join(10)
        assert [v["outcome"] for v in got] == ["pass"]
    finally:
        screen.close()
