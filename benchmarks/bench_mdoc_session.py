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

    python benchmarks/bench_mdoc_session.py
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
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
    from issuer_support import NOW
    from support import qr_frame

    from appliance.core.credential.mdoc.engagement import BleMode
    from appliance.core.credential.mdoc.verify import verify_mdoc
    from appliance.core.reasons import Reason
    from appliance.core.verifier import Checkpoint
    from appliance.devices.ble_controllers import LocalRadio
    from appliance.devices.scanner import FrameScanner, make_decoder
    from appliance.kiosk.mdoc_flow import SessionSettings, read_mdoc
    from appliance.tools.holder_ble import SimulatedPhone

    mode = BleMode(mode_name)
    wallet = TestWallet()
    trust = wallet.trust()
    scanner = FrameScanner(make_decoder("both", live=True))
    settings = SessionSettings(deadlines=ROOMY)
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
    return rows + _import_time() + _memory()


if __name__ == "__main__":
    result = run()
    print_table("mDL session over emulated BLE", result)
    print(f"\nwritten to {save('mdoc_session', result)}")
