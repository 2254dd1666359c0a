"""Revocation at scale: a 100-million-entry status list and a 10-million revoked-hash set.

Both are written in the on-device form (raw status bytes; sorted 16-byte hash prefixes
plus bucket index), then loaded the way the verifier loads them (mmap) and probed.
Reports load time, resident memory added by loading and by 100k lookups, and lookup time.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import Row, print_table, row, save

from appliance.trust.revocation import HashSet, StatusList, build_bucket_index

STATUS_ENTRIES = 100_000_000
HASHES = 10_000_000
PROBES = 100_000


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for bits in (1, 2):
            path = d / f"status-{bits}.bin"
            rng = np.random.default_rng(1)
            size = STATUS_ENTRIES * bits // 8
            data = np.zeros(size, dtype=np.uint8)
            data[rng.integers(0, size, 100_000)] = 0x55
            path.write_bytes(data.tobytes())
            del data
            before = rss_mb()
            t0 = time.perf_counter()
            lst = StatusList.from_file(path, bits)
            load = time.perf_counter() - t0
            idx = [random.randrange(STATUS_ENTRIES) for _ in range(PROBES)]
            status = lst.status
            t0 = time.perf_counter()
            for i in idx:
                status(i)
            per = (time.perf_counter() - t0) / PROBES
            rows += [
                row(f"status list {STATUS_ENTRIES:,} x {bits} bit: file", size / 2**20, "MB"),
                row(f"status list {bits} bit: load (mmap)", load * 1e3, "ms", "target < 200 ms"),
                row(f"status list {bits} bit: lookup", per * 1e6, "us", "target < 2 us"),
                row(
                    f"status list {bits} bit: RSS after 100k lookups",
                    rss_mb() - before,
                    "MB",
                    "pages touched, not the file",
                ),
            ]
        digests = np.frombuffer(np.random.default_rng(2).bytes(HASHES * 16), dtype="V16")
        digests = np.sort(digests.view("S16"))
        base = d / "cti-base.bin"
        base.write_bytes(digests.tobytes())
        t0 = time.perf_counter()
        (d / "cti-base.idx").write_bytes(build_bucket_index(base.read_bytes()))
        index_s = time.perf_counter() - t0
        members = [
            bytes(digests[i]) + bytes(16)
            for i in np.random.default_rng(3).integers(0, HASHES, PROBES // 2)
        ]
        del digests
        strangers = [os.urandom(32) for _ in range(PROBES // 2)]
        deltas = d / "cti-d1.bin"
        deltas.write_bytes(os.urandom(16 * 1000))
        before = rss_mb()
        t0 = time.perf_counter()
        hs = HashSet.from_files(base, [deltas])
        load = time.perf_counter() - t0
        probes = members + strangers
        random.shuffle(probes)
        t0 = time.perf_counter()
        hits = sum(1 for p in probes if p in hs)
        per = (time.perf_counter() - t0) / len(probes)
        assert hits >= len(members)
        rows += [
            row(
                f"revoked hashes {HASHES:,}: base + index files",
                (base.stat().st_size + (d / "cti-base.idx").stat().st_size) / 2**20,
                "MB",
                "16-byte prefixes + 4 MB bucket index; raw SHA-256 would be 320 MB",
            ),
            row("revoked hashes: build index (install time)", index_s * 1e3, "ms"),
            row("revoked hashes: load (mmap + 1,000 deltas)", load * 1e3, "ms", "target < 200 ms"),
            row("revoked hashes: lookup (half members)", per * 1e6, "us", "target < 2 us"),
            row("revoked hashes: RSS after 100k lookups", rss_mb() - before, "MB"),
        ]
    rows.append(
        row(
            "process peak RSS",
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "MB",
            "includes building the test data",
        )
    )
    return rows


if __name__ == "__main__":
    result = run()
    print_table("Revocation at scale", result)
    print(f"\nwritten to {save('revocation', result)}")
