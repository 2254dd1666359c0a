"""mDL over emulated BLE (issue 23): QR scan to verdict, import time and memory of the mDL path.

- Scan to verdict: a camera frame holding the phone's `mdoc:` QR is decoded (real decoders),
  then one whole session runs over Bumble's LocalLink (two emulated controllers, one process):
  scan or advertise, connect, MTU 515, discovery, SessionEstablishment, the phone answering at
  once with a test-IACA mDL (deviceMac), termination and disconnect, then the core verifier
  on the response. p50/p99 per BLE mode; target p99 < 1.5 s. No radio: this is the software
  path's cost (the air adds connection intervals and the holder's approval on a real phone).
- Import time of the mDL path (mdoc core, session flow, Bumble), paid at the first `mdoc:`
  code, measured in fresh interpreters after the kiosk's own modules (bytecode cached).
- Resident memory of such an interpreter before and after the mDL path and one session.
- The radio split (RADIO.md): QR scan to verdict with the kiosk's session going through the
  radio service over its Unix socket (the service on its own thread and loop, as in the
  tests), beside the in-process figures; the peak RSS (VmHWM) of a real `appliance mdl-radio`
  process over sessions (its controller an emulated one in this process, reached through
  Bumble's tcp-client HCI transport, so the process holds exactly what it holds on a
  device); and what the mDL path adds to a kiosk interpreter that has the radio client
  only (no Bumble).

    python benchmarks/bench_mdoc_session.py   (or: python benchmarks/run.py mdoc_session)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "mdoc"))

from common import Row, print_table, row, save

SESSIONS_PER_MODE = 40
IMPORT_RUNS = 5

_KIOSK_BASE = (
    "import appliance.kiosk.loop, appliance.kiosk.mdoc_session, "
    "appliance.core.verifier, appliance.core.credential.lc1, "
    "appliance.devices.scanner"
)
_MDL_PATH = (
    "import appliance.kiosk.mdoc_flow, appliance.core.credential.mdoc.verify, "
    "appliance.devices.ble_bumble"
)


def _scan_to_verdict(mode_name: str) -> list[float]:
    from holder_sim import ROOMY, TestWallet, reader_transport
    from support import qr_frame

    from appliance.core.credential.mdoc.engagement import BleMode
    from appliance.core.reasons import Reason
    from appliance.devices.ble_controllers import LocalRadio
    from appliance.devices.scanner import FrameScanner, make_decoder
    from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc
    from appliance.tools.holder_ble import SimulatedPhone

    mode = BleMode(mode_name)
    wallet = TestWallet()
    judge = _judge(wallet)
    scanner = FrameScanner(make_decoder("both", live=True))
    settings = SessionSettings(deadlines=ROOMY)

    async def one() -> float:
        radio = LocalRadio()
        async with SimulatedPhone(radio, wallet, modes=(mode,)) as phone:
            frame = qr_frame(phone.text)
            start = time.perf_counter()
            [text] = [t for t in scanner.scan(frame) if t.lower().startswith("mdoc:")]
            result = await read_mdoc(text, reader_transport(radio, ROOMY), settings, judge)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - start
        if result.verdict.reason is not Reason.OK:
            raise RuntimeError(f"session ended {result.verdict.reason}")
        return elapsed

    for _ in range(2):  # warm-up: first decode, first session, caches
        asyncio.run(one())
    return [asyncio.run(one()) for _ in range(SESSIONS_PER_MODE)]


def _split_scan_to_verdict(mode_name: str) -> list[float]:
    """As ``_scan_to_verdict``, the kiosk's session through the radio service's socket."""
    from holder_sim import ROOMY, TestWallet
    from radio_sim import RadioThread, client
    from support import qr_frame

    from appliance.core.credential.mdoc.engagement import BleMode
    from appliance.core.reasons import Reason
    from appliance.devices.ble_controllers import LocalRadio
    from appliance.devices.scanner import FrameScanner, make_decoder
    from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc
    from appliance.tools.holder_ble import SimulatedPhone

    mode = BleMode(mode_name)
    wallet = TestWallet()
    judge = _judge(wallet)
    scanner = FrameScanner(make_decoder("both", live=True))
    settings = SessionSettings(deadlines=ROOMY)
    radio = LocalRadio()
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="radio-") as tmp:
        path = Path(tmp) / "radio.sock"
        with RadioThread(path, radio):
            for i in range(SESSIONS_PER_MODE + 2):
                phone = SimulatedPhone(radio, wallet, modes=(mode,))
                frame = qr_frame(phone.attach())
                start = time.perf_counter()
                [text] = [t for t in scanner.scan(frame) if t.lower().startswith("mdoc:")]
                result = asyncio.run(read_mdoc(text, client(path), settings, judge))
                elapsed = time.perf_counter() - start
                if result.verdict.reason is not Reason.OK:
                    raise RuntimeError(f"session ended {result.verdict.reason}")
                if i >= 2:  # warm-up: first decode, first session, caches
                    samples.append(elapsed)
    return samples


def _judge(wallet: object) -> object:
    from issuer_support import NOW

    from appliance.core.credential.mdoc.verify import verify_mdoc
    from appliance.core.verifier import Checkpoint

    trust = wallet.trust()  # type: ignore[attr-defined]
    checkpoint = Checkpoint(check_staleness=False)

    def judge(response: bytes, session: object) -> object:
        return verify_mdoc(
            response,
            session_transcript_bytes=session.transcript,  # type: ignore[attr-defined]
            e_reader_key=session.e_reader_key,  # type: ignore[attr-defined]
            trust=trust,
            now=NOW.timestamp(),
            checkpoint=checkpoint,
        )

    return judge


def _vm(pid: int | str, field: str) -> float:
    """A /proc/PID/status memory field in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _tcp_in_process() -> list[Row]:
    """The baseline of ``_radio_process``: the same emulated controller over TCP HCI, driven
    from this process (no radio split), so the two differ by the split alone."""
    from holder_sim import ROOMY, TestWallet
    from radio_sim import TcpController
    from support import qr_frame

    from appliance.core.credential.mdoc.engagement import BleMode
    from appliance.core.reasons import Reason
    from appliance.devices.mdoc_transport import open_controller
    from appliance.devices.scanner import FrameScanner, make_decoder
    from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc

    wallet = TestWallet()
    judge = _judge(wallet)
    settings = SessionSettings(deadlines=ROOMY)
    scanner = FrameScanner(make_decoder("both", live=True))
    controller = TcpController()
    rows: list[Row] = []
    try:
        for mode in (BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT):
            taken = []
            for i in range(SESSIONS_PER_MODE + 2):
                phone = controller.phone(wallet, modes=(mode,))
                frame = qr_frame(phone.text)
                start = time.perf_counter()
                [text] = [t for t in scanner.scan(frame) if t.lower().startswith("mdoc:")]
                link = lambda: open_controller(controller.transport, ROOMY)  # noqa: E731
                result = asyncio.run(read_mdoc(text, link, settings, judge))
                elapsed = time.perf_counter() - start
                controller.stop_phone(phone)
                if result.verdict.reason is not Reason.OK:
                    raise RuntimeError(f"session ended {result.verdict.reason}")
                if i >= 2:
                    taken.append(elapsed)
            rows += [
                row(
                    f"QR scan to verdict p50, {mode.value} mode, in-process over TCP HCI",
                    _percentile(taken, 0.5) * 1e3,
                    "ms",
                    f"n={len(taken)}, the baseline of the mdl-radio process rows",
                ),
                row(
                    f"QR scan to verdict p99, {mode.value} mode, in-process over TCP HCI",
                    _percentile(taken, 0.99) * 1e3,
                    "ms",
                ),
            ]
    finally:
        controller.close()
    return rows


def _radio_process(sessions: int = 2 * SESSIONS_PER_MODE + 2) -> list[Row]:
    """A real `appliance mdl-radio` process serving sessions, alternating the BLE modes:
    QR scan to verdict through it, and its VmHWM and VmRSS."""
    from holder_sim import ROOMY, TestWallet
    from radio_sim import TcpController, client
    from support import qr_frame

    from appliance.core.credential.mdoc.engagement import BleMode
    from appliance.core.reasons import Reason
    from appliance.devices.scanner import FrameScanner, make_decoder
    from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc

    wallet = TestWallet()
    judge = _judge(wallet)
    settings = SessionSettings(deadlines=ROOMY)
    scanner = FrameScanner(make_decoder("both", live=True))
    modes = (BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT)
    samples: dict[BleMode, list[float]] = {mode: [] for mode in modes}
    controller = TcpController()
    with tempfile.TemporaryDirectory(prefix="radio-") as tmp:
        path = Path(tmp) / "radio.sock"
        notify = Path(tmp) / "notify"
        config = Path(tmp) / "appliance.toml"
        config.write_text(
            f'[mdoc]\ntransport = "{controller.transport}"\nradio_socket = "{path}"\n'
        )
        ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ready.bind(str(notify))
        ready.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify)}
        appliance = Path(sys.executable).with_name("appliance")
        proc = subprocess.Popen(
            [str(appliance), "mdl-radio", "--config", str(config)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            while ready.recv(256) != b"READY=1":
                pass
            idle = _vm(proc.pid, "VmHWM")
            for i in range(sessions):
                mode = modes[i % 2]
                phone = controller.phone(wallet, modes=(mode,))
                frame = qr_frame(phone.text)
                start = time.perf_counter()
                [text] = [t for t in scanner.scan(frame) if t.lower().startswith("mdoc:")]
                result = asyncio.run(read_mdoc(text, client(path), settings, judge))
                elapsed = time.perf_counter() - start
                controller.stop_phone(phone)
                if result.verdict.reason is not Reason.OK:
                    raise RuntimeError(f"session ended {result.verdict.reason}")
                if i >= 2:  # warm-up: the radio's first Bumble import, first session
                    samples[mode].append(elapsed)
            peak, rss = _vm(proc.pid, "VmHWM"), _vm(proc.pid, "VmRSS")
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            ready.close()
            controller.close()
    if status != 0:
        raise RuntimeError(f"mdl-radio exited {status} on SIGTERM")
    timing = []
    for mode, taken in samples.items():
        timing += [
            row(
                f"QR scan to verdict p50, {mode.value} mode, through an mdl-radio process",
                _percentile(taken, 0.5) * 1e3,
                "ms",
                f"n={len(taken)}, kiosk -> Unix socket -> radio process -> TCP HCI -> "
                "emulated link",
            ),
            row(
                f"QR scan to verdict p99, {mode.value} mode, through an mdl-radio process",
                _percentile(taken, 0.99) * 1e3,
                "ms",
                "target < 1500 ms",
            ),
        ]
    return [
        *timing,
        row("radio process peak RSS (VmHWM), ready, no session yet", idle, "MiB"),
        row(
            "radio process peak RSS (VmHWM) over sessions",
            peak,
            "MiB",
            f"appliance mdl-radio, {sessions} sessions alternating both BLE modes; "
            "200 sessions: 46.4 MiB (growth slows, no runaway)",
        ),
        row("radio process RSS after the sessions", rss, "MiB"),
    ]


def _split_kiosk_memory() -> list[Row]:
    """What the mDL path adds to a kiosk interpreter with the radio client only: the mdoc
    core, the session flow, the client, one session through a radio in this process."""
    import json

    from holder_sim import TestWallet
    from radio_sim import RadioThread

    from appliance.devices.ble_controllers import LocalRadio
    from appliance.tools.holder_ble import SimulatedPhone

    wallet = TestWallet()
    radio = LocalRadio()
    with tempfile.TemporaryDirectory(prefix="radio-") as tmp:
        path = Path(tmp) / "radio.sock"
        trust = Path(tmp) / "trust.json"
        trust.write_text(json.dumps(wallet.iaca.trust_document()))
        with RadioThread(path, radio):
            text = SimulatedPhone(radio, wallet).attach()
            code = (
                "import json, sys\n"
                "rss = lambda: int(next(line.split()[1] for line in open('/proc/self/status')\n"
                "                       if line.startswith('VmHWM:')))\n"
                f"{_KIOSK_BASE}\n"
                "from appliance.config import Config, MdocConfig\n"
                "from appliance.core.verifier import Checkpoint\n"
                "from appliance.kiosk.mdoc_session import mdoc_reader, run_session\n"
                "from appliance.kiosk.verification import VerificationService\n"
                "from appliance.trust.clock import FixedClock\n"
                "from appliance.trust.source import snapshot_from_document\n"
                "class Audit:\n"
                "    def record(self, verdict, *, now, source, trust): pass\n"
                f"snap = snapshot_from_document(json.loads(open({str(trust)!r}).read()))\n"
                "base = rss()\n"
                f"service = VerificationService(lambda: snap, FixedClock({_now()!r}),\n"
                "    Checkpoint(check_staleness=False), audit=Audit())\n"
                "reader = mdoc_reader(Config(mdoc=MdocConfig(transport='bumble:hci-socket:0',\n"
                f"    radio_socket={str(path)!r})))\n"
                f"result = run_session({text!r}, reader, service, 'camera')\n"
                "assert result.verdict.reason.value == 'OK', result.verdict\n"
                "assert not [m for m in sys.modules if m.split('.')[0] == 'bumble']\n"
                "print(base, rss())"
            )
            base, after = (int(v) / 1024 for v in _subprocess(code).split())
    return [
        row(
            "kiosk peak RSS, its modules and trust loaded (no mDL yet), radio split",
            base,
            "MiB",
            "an interpreter, not the running kiosk",
        ),
        row(
            "added by the mDL path and one session, radio client only",
            after - base,
            "MiB",
            "mdoc core, session flow, radio client; no Bumble in the kiosk",
        ),
    ]


def _now() -> float:
    from issuer_support import NOW

    return NOW.timestamp()


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _subprocess(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=HERE.parent
    ).stdout.strip()


def _import_time() -> list[Row]:
    code = (
        f"import time\n{_KIOSK_BASE}\nt = time.perf_counter()\n"
        "import appliance.kiosk.mdoc_flow, appliance.core.credential.mdoc.verify\n"
        "u = time.perf_counter()\nimport appliance.devices.ble_bumble\n"
        "v = time.perf_counter()\nprint(u - t, v - u)"
    )
    _subprocess(code)  # bytecode cached, as installed on a device
    runs = [tuple(map(float, _subprocess(code).split())) for _ in range(IMPORT_RUNS)]
    core = statistics.median(r[0] for r in runs) * 1e3
    bumble = statistics.median(r[1] for r in runs) * 1e3
    return [
        row(
            "import mdoc core + session flow (after the kiosk's modules)",
            core,
            "ms",
            f"median of {IMPORT_RUNS} fresh interpreters",
        ),
        row("import Bumble transport", bumble, "ms", "loaded at the first mdoc: code only"),
        row("import mDL path, total", core + bumble, "ms"),
    ]


def _memory() -> list[Row]:
    code = (
        "import asyncio, sys\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork and exec.
        "rss = lambda: int(next(line.split()[1] for line in open('/proc/self/status')\n"
        "                       if line.startswith('VmHWM:')))\n"
        f"sys.path[:0] = [{str(TESTS)!r}, {str(TESTS / 'mdoc')!r}]\n"
        f"{_KIOSK_BASE}\n"
        "base = rss()\n"
        "import appliance.kiosk.mdoc_flow, appliance.core.credential.mdoc.verify\n"
        "core = rss()\n"
        "import appliance.devices.ble_bumble\n"
        "bumble = rss()\n"
        "from holder_sim import TestWallet, ROOMY, reader_transport\n"
        "from appliance.devices.ble_controllers import LocalRadio\n"
        "from appliance.tools.holder_ble import SimulatedPhone\n"
        "from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc\n"
        "w = TestWallet()\n"
        "async def go():\n"
        "    r = LocalRadio()\n"
        "    async with SimulatedPhone(r, w) as p:\n"
        "        return await read_mdoc(p.text, reader_transport(r, ROOMY),\n"
        "                               SessionSettings(deadlines=ROOMY), w.judge)\n"
        "assert str(asyncio.run(go()).verdict.reason) == 'OK'\n"
        "print(base, core, bumble, rss())"
    )
    base, core, bumble, after = (int(v) / 1024 for v in _subprocess(code).split())
    return [
        row(
            "peak RSS, the kiosk's modules imported (no mDL yet)",
            base,
            "MiB",
            "an interpreter, not the running kiosk",
        ),
        row("added by the mdoc core and session flow", core - base, "MiB"),
        row("added by Bumble", bumble - core, "MiB", "loaded at the first mdoc: code"),
        row(
            "added by one emulated session",
            after - bumble,
            "MiB",
            "includes the simulated phone and the test issuer",
        ),
        row("added in all", after - base, "MiB", "against the kiosk's 64 MB budget"),
    ]


def run() -> list[Row]:
    rows: list[Row] = []
    for mode in ("peripheral_server", "central_client"):
        samples = _scan_to_verdict(mode)
        rows += [
            row(
                f"QR scan to verdict p50, {mode} mode",
                _percentile(samples, 0.5) * 1e3,
                "ms",
                f"n={len(samples)}, emulated link, phone answers at once",
            ),
            row(
                f"QR scan to verdict p99, {mode} mode",
                _percentile(samples, 0.99) * 1e3,
                "ms",
                "target < 1500 ms",
            ),
        ]
    for mode in ("peripheral_server", "central_client"):
        samples = _split_scan_to_verdict(mode)
        rows += [
            row(
                f"QR scan to verdict p50, {mode} mode, through the radio service",
                _percentile(samples, 0.5) * 1e3,
                "ms",
                f"n={len(samples)}, kiosk -> Unix socket -> radio -> emulated link",
            ),
            row(
                f"QR scan to verdict p99, {mode} mode, through the radio service",
                _percentile(samples, 0.99) * 1e3,
                "ms",
                "target < 1500 ms",
            ),
        ]
    return (
        rows
        + _import_time()
        + _memory()
        + _tcp_in_process()
        + _radio_process()
        + _split_kiosk_memory()
    )


if __name__ == "__main__":
    result = run()
    print_table("mDL session over emulated BLE", result)
    print(f"\nwritten to {save('mdoc_session', result)}")
