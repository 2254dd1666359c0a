"""Trust-data distribution at scale on loopback (issue 4).

A 10-million revoked-hash set and a 100-million-entry status list (1 bit, 1 % set) are
published, served by a plain HTTP server and synced by a device client running in its
own process (so its peak memory is its own). Then 1,000 new revocations and 1,000 status
changes are published and synced again. Reported: bytes fetched, seconds, peak RSS of
the client process (includes the file pages it maps while indexing), and the time to
load the installed store and to look entries up.

    python benchmarks/bench_sync.py [--scale 0.01]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, print_table, row, save

from appliance.trust.store import load_trust_store
from appliance_sync.publisher import init_repository, update_repository
from appliance_sync.trust_parts import TrustParts, digests_array

URI = "https://status.example/dl/1"
CLIENT = """
import json, sys, time
from pathlib import Path
from appliance_sync.client import SyncClient
def hwm():  # peak RSS of this process image (ru_maxrss would carry the parent's over exec)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = hwm()
c = SyncClient(state_dir=Path(sys.argv[1]), url=sys.argv[2], root=Path(sys.argv[3]),
               deadline_s=600, clock_synchronised=lambda: False)
t = time.perf_counter()
r = c.sync_once()
print(json.dumps({"seconds": time.perf_counter() - t, "bytes": r.bytes_fetched,
                  "updated": r.updated, "peak_kb": hwm(), "base_kb": base}))
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(root: Path) -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def _sync(state: Path, url: str, root: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, str(state), url, str(root)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_bits(n: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.zeros(n // 8, dtype=np.uint8)
    idx = rng.integers(0, n, size=n // 100)
    np.bitwise_or.at(bits, idx >> 3, (1 << (idx & 7)).astype(np.uint8))
    return bits


def _flip(bits: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    out = bits.copy()
    idx = rng.integers(0, len(bits) * 8, size=count)
    np.bitwise_xor.at(out, idx >> 3, (1 << (idx & 7)).astype(np.uint8))
    return out


def run(scale: float = 1.0, workdir: str | None = None) -> list[Row]:
    revoked_n, status_n, delta_n = int(10_000_000 * scale), int(100_000_000 * scale), 1000
    rng = np.random.default_rng(4)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-", dir=workdir))
    rows: list[Row] = []
    try:
        repo, keys, root, state = tmp / "repo", tmp / "keys", tmp / "root.json", tmp / "dev"
        init_repository(repo, keys, root)
        revoked = digests_array(rng.integers(0, 256, size=(revoked_n, 16), dtype=np.uint8))
        status = _status_bits(status_n, rng)
        t = time.perf_counter()
        update_repository(
            repo,
            keys,
            TrustParts(revoked={"cti_sha256": revoked}, status_lists=[(URI, 1, status.tobytes())]),
        )
        rows.append(
            row(
                "publish full",
                time.perf_counter() - t,
                "s",
                f"{revoked_n:,} hashes + {status_n:,}-entry status list",
            )
        )
        httpd, url = _serve(repo)
        try:
            full = _sync(state, url, root)
            rows += _sync_rows("full sync", full)

            t = time.perf_counter()
            snap = load_trust_store(state / "trust")
            rows.append(
                row("load installed store", (time.perf_counter() - t) * 1e3, "ms", "mmap; no parse")
            )
            present = [bytes(x) + bytes(16) for x in revoked[rng.integers(0, revoked_n, 20000)]]
            absent = [rng.bytes(32) for _ in range(20000)]
            for name, probes in (
                ("revoked-hash lookup, hit", present),
                ("revoked-hash lookup, miss", absent),
            ):
                t = time.perf_counter()
                hits = sum(p in snap.revoked_cti for p in probes)
                rows.append(
                    row(
                        name,
                        (time.perf_counter() - t) / len(probes) * 1e6,
                        "us",
                        f"{hits} of {len(probes)} found",
                    )
                )
            lst = snap.status_lists[URI]
            idx = rng.integers(0, status_n, 100000).tolist()
            t = time.perf_counter()
            for i in idx:
                lst.status(i)
            rows.append(
                row(
                    "status-list lookup",
                    (time.perf_counter() - t) / len(idx) * 1e6,
                    "us",
                    f"{len(lst):,} entries",
                )
            )

            revoked = np.union1d(
                revoked, digests_array(rng.integers(0, 256, size=(delta_n, 16), dtype=np.uint8))
            )
            update_repository(
                repo,
                keys,
                TrustParts(
                    revoked={"cti_sha256": revoked}, status_lists=[(URI, 1, status.tobytes())]
                ),
            )
            delta = _sync(state, url, root)
            rows += _sync_rows(f"delta sync, {delta_n} new revocations", delta)
            base_bytes = revoked_n * 16
            rows.append(
                row(
                    "delta / full revoked set",
                    delta["bytes"] / base_bytes * 100,
                    "%",
                    "bytes fetched incl. all metadata; requirement <= 2 %",
                )
            )

            status = _flip(status, delta_n, rng)
            update_repository(
                repo,
                keys,
                TrustParts(
                    revoked={"cti_sha256": revoked}, status_lists=[(URI, 1, status.tobytes())]
                ),
            )
            changed = _sync(state, url, root)
            rows += _sync_rows(f"delta sync, {delta_n} status changes", changed)
            snap = load_trust_store(state / "trust")
            assert len(snap.revoked_cti) == len(revoked)
        finally:
            httpd.shutdown()
            httpd.server_close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _sync_rows(name: str, r: dict) -> list[Row]:
    return [
        row(f"{name}: bytes", r["bytes"], "B"),
        row(f"{name}: time", r["seconds"], "s", "loopback, client in its own process"),
        row(
            f"{name}: peak RSS",
            r["peak_kb"] / 1024,
            "MiB",
            f"interpreter + imports alone {r['base_kb'] / 1024:.0f} MiB",
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of full size")
    args = parser.parse_args()
    rows = run(args.scale)
    print_table("Trust-data sync", rows)
    if args.scale == 1.0:
        print(f"\nsaved {save('sync', rows)}")
