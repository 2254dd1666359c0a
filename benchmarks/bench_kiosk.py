"""Scan-to-LED latency and idle CPU of the kiosk loop (issue 3).

A simulated 30 fps camera (real frames, paced in real time) presents a code, then an
empty scene, over and over. Latency is measured from frame arrival to the LED call, with
the real decoders, verifier and gpiozero mock pins; once with the audit log on a real
SQLite file (WAL, synchronous=FULL: the record is durable before the LED lights) and
once without audit, to show what the fsync costs. Idle CPU is process CPU time over wall
time while nothing is in view, with and without the presence gate.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, print_table, row, save
from support import World, qr_frame

from appliance.config import IndicatorConfig
from appliance.core.verifier import Checkpoint
from appliance.devices.camera import Frame, FramePacer
from appliance.devices.indicator import GpiozeroIndicator
from appliance.devices.scanner import FrameScanner, PresenceGate, make_decoder
from appliance.kiosk.loop import Kiosk, latency_percentiles
from appliance.kiosk.verification import NullAudit, VerificationService
from appliance.port.events import EventBus
from appliance.trust.clock import FixedClock

FPS = 30.0


class PacedSource:
    """Frames at a steady rate in real time, cycling through a list."""

    def __init__(self, frames: list, fps: float = FPS) -> None:
        self.frames = frames
        self.pacer = FramePacer(fps)
        self.i = 0

    def open(self) -> None:
        self.pacer.restart()

    def read(self, timeout_s: float) -> Frame | None:
        now = self.pacer.next_frame(timeout_s)
        if now is None:
            return None
        grey = self.frames[self.i % len(self.frames)]
        self.i += 1
        return Frame(grey, now)

    def close(self) -> None:
        pass


def _kiosk(frames: list, audit, gate: bool) -> tuple[Kiosk, GpiozeroIndicator]:
    from gpiozero.pins.mock import MockFactory

    world = World()
    trust = world.trust()
    service = VerificationService(
        lambda: trust, FixedClock(1_800_000_000), Checkpoint(check_staleness=False), audit=audit
    )
    indicator = GpiozeroIndicator(IndicatorConfig(backend="mock"), pin_factory=MockFactory())
    scanner = FrameScanner(make_decoder("both", live=True), PresenceGate() if gate else None)
    return Kiosk(
        PacedSource(frames), scanner, service, indicator, EventBus(), repeat_after_absent_s=0.3
    ), indicator


def _latency(audit, label: str, seconds: float) -> list[Row]:
    world = World()
    codes = [qr_frame(world.issue()) for _ in range(4)]
    empty = qr_frame(None)
    # each code in view for 5 frames, then 12 empty frames (0.4 s > repeat time)
    frames = [f for c in codes for f in [c] * 5 + [empty] * 12]
    kiosk, indicator = _kiosk(frames, audit, gate=True)
    # warm-up: the first decode and verification pay one-off costs (imports, caches)
    kiosk._scanner.scan(codes[0])
    kiosk._service.verify(world.issue(), source="warm-up")
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    kiosk.run(stop)
    indicator.close()
    p = latency_percentiles(kiosk.stats.latencies_s)
    budget = 1000 / FPS + 15
    return [
        row(f"scan-to-LED p50, {label}", p["p50_ms"], "ms", f"n={int(p['n'])}"),
        row(
            f"scan-to-LED p99, {label}",
            p["p99_ms"],
            "ms",
            f"target < {budget:.1f} ms (one frame + 15 ms)",
        ),
    ]


def _idle_cpu(gate: bool, seconds: float) -> Row:
    rng_scene = qr_frame(None)
    kiosk, indicator = _kiosk([rng_scene], NullAudit(), gate)
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    kiosk.run(stop)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    indicator.close()
    name = "idle CPU at 30 fps, presence gate " + ("on" if gate else "off")
    return row(
        name,
        100 * cpu / wall,
        "% of one core",
        f"{kiosk._scanner.decoded_frames} of {kiosk.stats.frames} frames decoded",
    )


def run(seconds: float = 40.0) -> list[Row]:
    from appliance.audit.log import AuditLog  # noqa: F401 - the real device audit log

    rows = _latency(NullAudit(), "no audit", seconds)
    with tempfile.TemporaryDirectory() as tmp:
        rows += _latency(_real_audit(Path(tmp)), "SQLite audit (fsync)", seconds)
    rows.append(_idle_cpu(True, seconds / 4))
    rows.append(_idle_cpu(False, seconds / 4))
    return rows


def _real_audit(tmp: Path):
    from appliance.audit.log import open_audit_log
    from appliance.config import config_from_mapping

    config = config_from_mapping(
        {"paths": {"state_dir": str(tmp / "state"), "secrets_dir": str(tmp / "secrets")}}
    )
    (tmp / "state").mkdir()
    return open_audit_log(config)


if __name__ == "__main__":
    result = run()
    print_table("Kiosk loop (30 fps simulated camera)", result)
    print(f"\nwritten to {save('kiosk', result)}")
