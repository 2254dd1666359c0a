"""Write docs/performance.md from benchmarks/results/*.json and docs/performance-notes.md."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TITLES = {
    "verify": "Verifier throughput on one core (issue 2, 9)",
    "interop": "HC1 and SHC beside LC1 (issue 8)",
    "revocation": "Revocation at scale (issue 2)",
    "decode": "QR decoding (issue 3)",
    "kiosk": "Kiosk loop: scan-to-LED latency, idle CPU (issue 3)",
    "audit": "Audit trail (issue 5)",
    "sync": "Trust-data sync (issue 4)",
    "hostile": "Hostile input: attack seeds, structure-fuzzed texts, picture bombs (issue 12)",
    "cli": "Command-line start-up (issue 13)",
    "load": "The centre under 1,000 devices: nginx, gunicorn, PostgreSQL (issue 16)",
    "mdoc": "mDL verification beside its bare ECDSA, ECDH and HMAC (issue 23)",
}
HEADER = """# Performance

Figures of the last `make bench` (`python benchmarks/run.py`) on the development machine:
x86_64, 2 cores (shared with other jobs), CPython 3.11, a virtual disk, not an SD card. A
Pi Zero 2 W is several times slower per core; ratios (verifier vs bare signature check,
idle vs decoding) carry over better than absolute numbers. This page is written by
`benchmarks/report.py` from `benchmarks/results/*.json`.
"""


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def main() -> None:
    out = [HEADER]
    for name, title in TITLES.items():
        path = REPO / "benchmarks" / "results" / f"{name}.json"
        if not path.exists():
            continue
        rows = json.loads(path.read_text())["rows"]
        out += [f"## {title}", "", "| measure | value | unit | notes |", "|---|---:|---|---|"]
        for r in rows:
            v = r["value"]
            value = f"{v:,.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else f"{v:,}"
            out.append(
                f"| {_cell(r['name'])} | {value} | {_cell(r.get('unit', ''))} | "
                f"{_cell(r.get('notes', ''))} |"
            )
        out.append("")
    out.append((REPO / "docs" / "performance-notes.md").read_text())
    (REPO / "docs" / "performance.md").write_text("\n".join(out))


if __name__ == "__main__":
    main()
