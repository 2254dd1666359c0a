"""Start-up cost of the command line (issue 13 "A fast CLI"), against bare Python.

Targets: ``appliance --version`` within 3x ``python -c pass``; a one-text ``verify``
within 2x a Python process that imports only cbor2 and cryptography (what verifying a
signature cannot avoid). Each figure is the best of several runs, so a busy machine
inflates it less; the ratios are what to compare across machines.

Two conditions: with bytecode cached (a private PYTHONPYCACHEPREFIX, warmed first), as on
a device where pip installed the wheel and compiled it, and without (this checkout under
PYTHONDONTWRITEBYTECODE, every project module compiled on each start, while cbor2 and
cryptography still load their installed bytecode): the targets are for the first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row, row

RUNS = 9
BASELINE = "import cbor2, cryptography.hazmat.primitives.asymmetric.ec"


def best_of(
    commands: list[list[str]], runs: int = RUNS, env: dict[str, str] | None = None
) -> list[float]:
    """Fastest wall time of each command in seconds, runs interleaved so that load on a
    shared machine falls on all of them alike (a process start is what a user waits for)."""
    best = [float("inf")] * len(commands)
    for _ in range(runs):
        for i, argv in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False, env=env)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def run() -> list[Row]:
    from support import World

    python = sys.executable
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        world = World()
        trust = Path(tmp) / "trust.json"
        world.editor.save(trust)
        text = world.issue()
        commands = [
            [python, "-c", "pass"],
            [python, "-m", "appliance.cli", "--version"],
            [python, "-c", BASELINE],
            [
                python,
                "-m",
                "appliance.cli",
                "verify",
                "--trust-source",
                str(trust),
                "--at",
                "2027-01-15T08:00:00Z",
                text,
            ],
        ]
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        best_of(commands, runs=1, env=cached)  # compile once into the private cache
        for label, env in (("", cached), (", no bytecode cache", uncached)):
            bare, version, baseline, verify = best_of(commands, env=env)
            rows += [
                row(f"python -c pass{label}", bare * 1000, "ms", f"best of {RUNS}"),
                row(
                    f"appliance --version{label}",
                    version * 1000,
                    "ms",
                    f"{version / bare:.2f}x bare (target 3x)",
                ),
                row(
                    f"python importing cbor2 + cryptography{label}",
                    baseline * 1000,
                    "ms",
                    f"best of {RUNS}",
                ),
                row(
                    f"appliance verify (one text){label}",
                    verify * 1000,
                    "ms",
                    f"{verify / baseline:.2f}x cbor2+cryptography (target 2x)",
                ),
            ]
    return rows
