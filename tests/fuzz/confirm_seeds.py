"""Keep as regression seeds the fuzzer's slow candidates that are slow uninstrumented too.

``python tests/fuzz/confirm_seeds.py CANDIDATES_DIR SEEDS_DIR`` (``make fuzz`` runs it):
each candidate is verified five times without atheris' instrumentation; one whose best
CPU time (``time.process_time``) is over the harness budget is copied into SEEDS_DIR.
Prints one line per candidate kept and a summary; the candidates directory is emptied.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support import NOW, World  # noqa: E402

from appliance.core.verifier import Checkpoint, verify  # noqa: E402

BUDGET_S = 0.005
REPEATS = 5


def best_cost(text: str, trust, checkpoint: Checkpoint) -> float:
    costs = []
    for _ in range(REPEATS):
        start = time.process_time()
        verify(text, trust, NOW, checkpoint=checkpoint)
        costs.append(time.process_time() - start)
    return min(costs)


def main(candidates: Path, seeds: Path) -> int:
    world = World()
    trust, checkpoint = world.trust(), Checkpoint(check_staleness=False)
    kept, worst = 0, 0.0
    paths = sorted(candidates.glob("*")) if candidates.is_dir() else []
    for path in paths:
        data = path.read_bytes()
        cost = best_cost(data.decode("utf-8", "replace"), trust, checkpoint)
        worst = max(worst, cost)
        if cost > BUDGET_S:
            seeds.mkdir(parents=True, exist_ok=True)
            (seeds / path.name).write_bytes(data)
            kept += 1
            print(f"seed {path.name}: {cost * 1000:.2f} ms")
        path.unlink()
    print(
        f"{kept} of {len(paths)} candidates over {BUDGET_S * 1000:.0f} ms kept as seeds; "
        f"the costliest took {worst * 1000:.2f} ms uninstrumented"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
