"""Start-up cost of the command line (issue 13 "A fast CLI"), against bare Python.

Targets: ``appliance --version`` within 3x ``python -c pass``; a one-text ``verify``
within 2x a Python process that imports only cbor2 and cryptography (what verifying a
signature cannot avoid). Each figure is the best of several runs, so a busy machine
inflates it less; the ratios are what to compare across machines.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row, row

RUNS = 9
BASELINE = "import cbor2, cryptography.hazmat.primitives.asymmetric.ec"


def best_of(commands: list[list[str]], runs: int = RUNS) -> list[float]:
    """Fastest wall time of each command in seconds, runs interleaved so that load on a
    shared machine falls on all of them alike (a process start is what a user waits for)."""
    best = [float("inf")] * len(commands)
    for _ in range(runs):
        for i, argv in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def run() -> list[Row]:
    from support import World

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        world = World()
        trust = Path(tmp) / "trust.json"
        world.editor.save(trust)
        text = world.issue()
        bare, version, baseline, verify = best_of([
            [python, "-c", "pass"],
            [python, "-m", "appliance.cli", "--version"],
            [python, "-c", BASELINE],
            [python, "-m", "appliance.cli", "verify", "--trust-source", str(trust),
             "--at", "2027-01-15T08:00:00Z", text],
        ])
    return [
        row("python -c pass", bare * 1000, "ms", f"best of {RUNS}"),
        row("appliance --version", version * 1000, "ms", f"{version / bare:.2f}x bare (target 3x)"),
        row("python importing cbor2 + cryptography", baseline * 1000, "ms", f"best of {RUNS}"),
        row("appliance verify (one text)", verify * 1000, "ms",
            f"{verify / baseline:.2f}x cbor2+cryptography (target 2x)"),
    ]
