"""The cost of hostile input (issue 12): attack texts, structure-fuzzed texts, picture bombs.

Every input must end in a verdict at a bounded cost. CPU time is ``time.process_time``
(best of several runs, so other load on the machine counts less); peak memory of a
picture is the resident-set high-water mark of a fresh child process.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "fuzz"))
sys.path.insert(0, str(HERE))

from common import Row, print_table, row, save

from appliance.core.verifier import Checkpoint, verify

SEEDS = HERE.parent / "tests" / "fuzz" / "seeds"
FUZZ_SAMPLE = 600
REPEATS = 5

# A child process decodes one picture and prints its peak RSS in KiB (Linux ru_maxrss).
_PICTURE_CHILD = """
import resource, sys, struct, zlib
from appliance.devices.scanner import load_grey_bytes
from appliance.core.errors import ImageReadError
w, h = int(sys.argv[1]), int(sys.argv[2])
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
z = zlib.compressobj(9)
row = bytes(w + 1)
idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
png = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_grey_bytes(png)
    outcome = "decoded"
except ImageReadError:
    outcome = "refused"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome, len(png), base, peak)
"""


def _best_cost(text: str, trust, checkpoint: Checkpoint) -> tuple[float, str]:
    from support import NOW

    costs, reason = [], ""
    for _ in range(REPEATS):
        start = time.process_time()
        verdict = verify(text, trust, NOW, checkpoint=checkpoint)
        costs.append(time.process_time() - start)
        reason = str(verdict.reason)
    return min(costs), reason


def _fuzz_costs(key, trust, checkpoint: Checkpoint) -> list[float]:
    from hypothesis import HealthCheck, given, settings
    from structure import qr_texts

    costs: list[float] = []

    @settings(
        max_examples=FUZZ_SAMPLE,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(qr_texts(key))
    def sample(text: str) -> None:
        costs.append(_best_cost(text, trust, checkpoint)[0])

    sample()
    return costs


def _picture(width: int, height: int) -> tuple[str, int, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _PICTURE_CHILD, str(width), str(height)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    outcome, size, base, peak = proc.stdout.split()
    return outcome, int(size), (int(peak) - int(base)) / 1024


def run() -> list[Row]:
    from support import World

    world = World()
    trust, checkpoint = world.trust(), Checkpoint(check_staleness=False)
    rows: list[Row] = []
    valid, _ = _best_cost(world.issue(world.es256), trust, checkpoint)
    rows.append(row("valid LC1 ES256 (reference)", valid * 1e6, "us", "CPU, best of 5"))
    for seed in sorted(SEEDS.glob("*")):
        text = seed.read_text(encoding="utf-8").strip()
        cost, reason = _best_cost(text, trust, checkpoint)
        rows.append(row(f"seed {seed.name} ({len(text)} chars)", cost * 1e6, "us", reason))
    costs = sorted(_fuzz_costs(world.es256, trust, checkpoint))
    rows.append(
        row(
            f"structure-fuzzed texts, median of {len(costs)}",
            statistics.median(costs) * 1e6,
            "us",
            "all four prefixes",
        )
    )
    rows.append(row("structure-fuzzed texts, p99", costs[int(len(costs) * 0.99)] * 1e6, "us"))
    rows.append(row("structure-fuzzed texts, worst", costs[-1] * 1e6, "us", "budget 5,000 us"))
    for width, height in ((13_000, 13_000), (6_000, 6_000)):
        outcome, size, grown = _picture(width, height)
        rows.append(
            row(f"PNG {width}x{height} ({size // 1024} KB): peak RSS growth", grown, "MiB", outcome)
        )
    return rows


if __name__ == "__main__":
    result = run()
    print_table("Hostile input", result)
    print(f"\nwritten to {save('hostile', result)}")
