"""``appliance selftest`` against the folder camera showing the shipped test card, gpiozero's
MockFactory pins, trust data synced from a loopback repository, a hub on loopback."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image
from sync_support import Authority, RepoServer, device

from appliance.cli import main
from appliance.commands import selftest
from appliance.config import load_config

CARD = Path(__file__).resolve().parents[2] / "firmware"


class _Ready(BaseHTTPRequestHandler):
    """The hub's answers to GET: uploads' path is POST only (405), unknown paths 404."""

    def do_GET(self) -> None:
        self.send_response({"/readyz": 200, "/v1/batches": 405}.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory):
    a = Authority.create(tmp_path_factory.mktemp("authority"))
    a.publish()
    repo = RepoServer(a.repo)
    hub = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    yield a, repo, f"http://127.0.0.1:{hub.server_address[1]}"
    hub.shutdown()
    hub.server_close()
    repo.stop()


def _device(tmp: Path, network, *, card_in_view: bool = True, hub: str | None = None) -> Path:
    a, repo, hub_url = network
    device(tmp / "state", repo.url, a.root_file).sync_once()
    frames = tmp / "frames"
    frames.mkdir()
    Image.new("L", (640, 480), 200).save(frames / "0-blank.png")
    if card_in_view:
        shutil.copy(CARD / "selftest-card.png", frames / "1-card.png")
    config = tmp / "appliance.toml"
    config.write_text(f"""
[device]
id = "pi-selftest"

[paths]
state_dir = "{tmp / "state"}"
secrets_dir = "{tmp / "secrets"}"

[camera]
source = "images"
images_dir = "{frames}"
fps = 50
frames_per_image = 2

[scanner]
backend = "zxing"

[indicator]
backend = "mock"
buzzer_pin = 5
relay_pin = 6

[sync]
url = "{repo.url}"
root = "{a.root_file}"

[upload]
url = "{hub or hub_url}"
""")
    return config


def _context(config: Path, **kw) -> selftest.Context:
    args = {
        "card": CARD / "selftest-card.json",
        "operator": False,
        "camera_s": 10.0,
        "timeout_s": 2.0,
        "sleep": lambda s: None,
        "ntp": lambda: True,
        "facts": {},
    }
    args.update(kw)
    return selftest.Context(load_config(config), **args)


def test_every_check_passes_on_a_working_device(tmp_path: Path, network):
    pins = MockFactory()
    results = selftest.run_checks(_context(_device(tmp_path, network), pin_factory=pins))
    by_name = {r.name: r for r in results}
    assert set(by_name) == {name for name, _ in selftest.checks()}
    for name in (
        "camera",
        "test card",
        "indicator",
        "trust data",
        "clock",
        "audit",
        "repository",
        "hub",
    ):
        assert by_name[name].status == selftest.PASS, by_name[name]
    assert "PASS OK" in by_name["test card"].detail
    for pin in (17, 27, 22, 5, 6):  # green, red, amber, buzzer, relay: each on, then off
        states = [s.state for s in pins.pin(pin).states]
        assert (1 in states) and states[-1] == 0, (pin, states)
    assert not list((tmp_path / "state").glob(".selftest-*"))  # the scratch log is gone


def test_cli_json_exit_codes_and_nothing_personal(tmp_path: Path, network, capsys):
    config = _device(tmp_path, network, card_in_view=False, hub="http://127.0.0.1:9")
    status = main(
        ["selftest", "--config", str(config), "--json", "--camera-seconds", "0.5", "--timeout", "1"]
    )
    out = capsys.readouterr().out
    doc = json.loads(out)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["test card"]["status"] == "warn"
    assert checks["hub"]["status"] == "fail"
    assert doc["status"] == "fail" and status == 1
    card = json.loads((CARD / "selftest-card.json").read_text())
    assert card["text"] not in out and "SELFTEST-0001" not in out


def test_warnings_only_exit_2_and_one_screen_report(tmp_path: Path, network, capsys):
    config = _device(tmp_path, network, card_in_view=False)
    results = selftest.run_checks(_context(config, camera_s=0.5))
    assert selftest.overall(results) == selftest.WARN
    text = selftest.report("pi-selftest", results, selftest.overall(results))
    assert len(text.splitlines()) == len(results) + 2 and "exit 2" in text


def test_operator_says_the_red_led_is_dark(tmp_path: Path, network):
    answers = {"green": "y", "red": "n", "amber": "y", "buzzer": "y", "relay": "y"}

    def ask(prompt: str) -> str:
        return next((v for k, v in answers.items() if k in prompt), "")

    results = selftest.run_checks(_context(_device(tmp_path, network), operator=True, ask=ask))
    indicator = next(r for r in results if r.name == "indicator")
    assert indicator.status == selftest.FAIL and "red LED 27" in indicator.detail
    assert "green" not in indicator.detail


def test_a_card_that_does_not_verify_fails(tmp_path: Path, network):
    card = json.loads((CARD / "selftest-card.json").read_text())
    card["trust"]["issuers"] = []  # the card's key unknown: the pipeline must say FAIL
    wrong = tmp_path / "card.json"
    wrong.write_text(json.dumps(card))
    results = selftest.run_checks(_context(_device(tmp_path, network), card=wrong))
    result = next(r for r in results if r.name == "test card")
    assert result.status == selftest.FAIL and "PASS" not in result.detail


@pytest.mark.parametrize(
    ("transport", "status", "words"),
    [
        ("bumble:hci-socket:0", selftest.WARN, "no Bluetooth controller hci0: mDL is off"),
        ("none", selftest.PASS, "mDL off: mDL reading is off (mdoc.transport = none)"),
        ("bumble:local", selftest.PASS, "mDL on: emulated controller"),
    ],
)
def test_bluetooth_controller_absent_off_or_emulated(
    tmp_path: Path, transport: str, status: str, words: str
) -> None:
    """This machine has no Bluetooth controller: the check says so, never raises, and a
    device configured with mDL off passes."""
    from appliance.config import config_from_mapping

    if Path("/sys/class/bluetooth/hci0").exists():
        pytest.skip("this machine has a Bluetooth controller")
    config = config_from_mapping(
        {"paths": {"state_dir": str(tmp_path)}, "mdoc": {"transport": transport}}
    )
    ctx = selftest.Context(config, CARD / "selftest-card.json", False, 0.1, 1.0, facts={})
    [result] = [r for r in selftest.run_checks(ctx) if r.name == "bluetooth"]
    assert result.status == status and words in result.detail


def test_bluetooth_controller_present_in_sysfs(tmp_path: Path) -> None:
    from appliance.devices.bluetooth import mdl_state

    (tmp_path / "hci1").mkdir()
    state = mdl_state("bumble:hci-socket:1", tmp_path)
    assert state.enabled and state.controller == "hci1"
    assert mdl_state("bumble:hci-socket:0", tmp_path).off == "controller"
    switch = tmp_path / "hci1" / "rfkill3"
    switch.mkdir()
    (switch / "soft").write_text("1\n")
    (switch / "hard").write_text("0\n")
    blocked = mdl_state("bumble:hci-socket:1", tmp_path)
    assert blocked.off == "blocked" and "rfkill unblock bluetooth" in blocked.detail
    (switch / "soft").write_text("0\n")
    assert mdl_state("bumble:hci-socket:1", tmp_path).enabled
    assert mdl_state("bleak", tmp_path).off == "transport"


# -- the mDL radio service ----------------------------------------------------------------


class _Radio:
    """The real radio service (devices.radio_service) on its own event loop in a thread; the
    probe never opens a session, so it is given no controller."""

    def __init__(self, path: Path) -> None:
        import asyncio

        from appliance.devices.mdoc_transport import Deadlines
        from appliance.devices.radio_service import RadioService

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        def no_controller():
            raise AssertionError("the probe opened a session")

        async def start() -> RadioService:
            service = RadioService(no_controller, Deadlines(), 262_144)
            await service.listen(path)
            return service

        self.service = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.service.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _radio_check(tmp_path: Path, mdoc: dict, timeout_s: float = 2.0) -> selftest.Result:
    from appliance.config import config_from_mapping

    config = config_from_mapping({"paths": {"state_dir": str(tmp_path)}, "mdoc": mdoc})
    ctx = selftest.Context(config, CARD / "selftest-card.json", False, 0.1, timeout_s, facts={})
    [result] = [r for r in selftest.run_checks(ctx) if r.name == "mdl radio"]
    return result


ON = "bumble:hci-socket:0"


def test_the_radio_service_answers_on_its_socket(tmp_path: Path, short_dir: Path) -> None:
    path = short_dir / "radio.sock"
    radio = _Radio(path)
    try:
        result = _radio_check(tmp_path, {"transport": ON, "radio_socket": str(path)})
    finally:
        radio.stop()
    assert result.status == selftest.PASS, result
    assert result.detail == f"appliance-mdl-radio answers on {path}"
    assert radio.service.sessions == 1  # one connection, and no controller opened
    after = _radio_check(tmp_path, {"transport": ON, "radio_socket": str(path)})
    assert after.status == selftest.FAIL and "not running: no socket" in after.detail


def test_a_radio_that_is_down_or_silent_fails(tmp_path: Path, short_dir: Path) -> None:
    import socket

    path = short_dir / "radio.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a radio killed without cleaning up
    result = _radio_check(tmp_path, {"transport": ON, "radio_socket": str(path)})
    assert result.status == selftest.FAIL and "nothing listens" in result.detail, result
    path.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen(1)  # accepted by the kernel, never answered
        result = _radio_check(tmp_path, {"transport": ON, "radio_socket": str(path)}, 0.2)
    assert result.status == selftest.FAIL and "did not answer within 0.2 s" in result.detail
    assert "systemctl status appliance-mdl-radio" in result.detail


def test_a_socket_that_speaks_garbage_fails(tmp_path: Path, short_dir: Path) -> None:
    import socket

    path = short_dir / "radio.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as liar:
        liar.bind(str(path))
        liar.listen(1)

        def answer() -> None:
            conn, _ = liar.accept()
            with conn:
                conn.recv(4096)  # the probe's request first: answering early races its send
                conn.sendall(b"\x00\x00\x00\x05\x00\x00\x00\x00hello")

        threading.Thread(target=answer, daemon=True).start()
        result = _radio_check(tmp_path, {"transport": ON, "radio_socket": str(path)})
    assert result.status == selftest.FAIL and "WireError" in result.detail, result


@pytest.mark.parametrize(
    ("mdoc", "status", "words"),
    [
        ({"transport": "none"}, selftest.PASS, "not used: mDL off"),
        ({"transport": "bumble:local"}, selftest.PASS, "runs in the reading process"),
        ({"transport": ON}, selftest.WARN, "mdoc.radio_socket is empty"),
    ],
)
def test_no_radio_service_configured(tmp_path: Path, mdoc: dict, status: str, words: str) -> None:
    result = _radio_check(tmp_path, mdoc)
    assert result.status == status and words in result.detail, result
