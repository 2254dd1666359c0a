"""Run every benchmark (or some), print one table each and write JSON to results/.

    python benchmarks/run.py                 # all (several minutes: 10M/100M-scale sets)
    python benchmarks/run.py verify kiosk    # just these

Performance is measured here, never asserted as wall-clock limits in tests.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import print_table, save

BENCHES = {
    "verify": "Verifier throughput on one core (LC1, LP1) and import time",
    "interop": "HC1 and SHC beside LC1",
    "revocation": "Status list of 100M entries, revoked-hash set of 10M",
    "decode": "QR decoding per frame and corpus success per backend",
    "kiosk": "Scan-to-LED latency and idle CPU of the kiosk loop",
    "audit": "Durable audit records, upload and hub ingest",
    "sync": "Full and delta sync of large revocation data over loopback",
    "memory": "Peak memory of each device process against its budget; start-up CPU",
    "cli": "Start-up of appliance --version and a one-text verify against bare Python",
    "hostile": "Cost of hostile input: attack seeds, structure-fuzzed texts, picture bombs",
    "display": "Kiosk screen memory in Chromium and WPE WebKit (cog), and the Pi models it fits",
    "load": "1,000 devices against one centre: nginx repository, gunicorn hub, PostgreSQL",
    "mdoc": "mdoc verify of the Annex D response beside its bare ECDSA, ECDH and HMAC",
    "mdoc_session": "mDL QR to verdict over emulated BLE, in-process and through the radio",
    "frame": "Decoder CPU per camera frame with and without the per-frame budget",
    "pictures": "Memory of an upload's decode per format and mode against the model; worker",
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHES)}",
            file=sys.stderr,
        )
        return 64
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        start = time.perf_counter()
        rows = module.run()
        print_table(f"{BENCHES[name]}  [{time.perf_counter() - start:.0f} s]", rows)
        print(f"-> {save(name, rows).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
