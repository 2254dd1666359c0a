"""Shared helpers for the benchmark modules: timing, rows, table, JSON output."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

Row = dict[str, Any]


def rate(fn: Callable[[], object], min_time_s: float = 1.0) -> float:
    """Calls per second of ``fn`` on one core (best of three timed batches)."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > min_time_s / 5:
            break
        n *= 2
    best = elapsed
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def paired_rates(
    fns: list[Callable[[], object]], rounds: int = 7, batch_s: float = 0.2
) -> list[float]:
    """Best rate of each function over interleaved rounds.

    Interleaving makes a ratio (path / bare check) robust against other load on the
    machine: both sides see the same conditions in each round.
    """
    sizes = []
    for fn in fns:
        n = 1
        while True:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - start > batch_s / 4:
                break
            n *= 2
        sizes.append(n * 4)
    best = [0.0] * len(fns)
    for _ in range(rounds):
        for i, (fn, n) in enumerate(zip(fns, sizes, strict=True)):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[i] = max(best[i], n / (time.perf_counter() - start))
    return best


def row(name: str, value: float, unit: str, notes: str = "") -> Row:
    return {"name": name, "value": round(value, 3), "unit": unit, "notes": notes}


def machine() -> dict[str, str]:
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.platform(),
    }


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}\n")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        notes = f"  ({r['notes']})" if r["notes"] else ""
        print(f"{r['name']:<{width}}  {r['value']:>14,.3f} {r['unit']}{notes}")


def save(name: str, rows: list[Row]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
    return path
