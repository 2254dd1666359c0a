"""Decoder benchmark: ms per frame, corpus success per set, phone-like generated frames.

Run from the repository root: ``.venv/bin/python benchmarks/bench_decode.py``. Prints a
table and writes benchmarks/results/decode.json (the figures in docs/adr/0003).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# the phone-like frame generator lives with the scanner tests
sys.path.insert(0, str(REPO / "tests" / "devices"))

from test_scanner import PHONE_CASES, background, credential_text, phone_frame, to_array

from appliance.devices.scanner import FrameScanner, PresenceGate, decode_image_file, make_decoder

BACKENDS = ("zxing", "zbar", "both", "both-live")
SIZES = ((640, 480), (1280, 720))
SHARED = Path(os.environ.get("APPLIANCE_SHARED_DATA", REPO.parent / "shared" / "data"))
CORPUS = SHARED / "qr-corpus"


def _decoder(backend: str):
    """ "both-live" is the cascade as the kiosk runs it on camera frames (live=True)."""
    return make_decoder(backend.removesuffix("-live"), live=backend.endswith("-live"))


def _ms_per_call(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_speed() -> list[dict]:
    rows = []
    text = credential_text(11)
    for width, height in SIZES:
        frames = {
            "code": phone_frame("plain", text, width, height),
            "empty": to_array(background(width, height, seed=3)),
        }
        for backend in BACKENDS:
            decoder = _decoder(backend)
            for kind, frame in frames.items():
                repeat = 15 if backend != "zxing" else 60
                ms = _ms_per_call(lambda d=decoder, f=frame: d.decode(f), repeat)
                rows.append(
                    {
                        "name": f"decode_ms/{backend}/{width}x{height}/{kind}",
                        "value": round(ms, 3),
                        "unit": "ms",
                        "notes": "median per frame",
                    }
                )
        # a static empty scene through the presence gate, as an idle kiosk sees it
        scanner = FrameScanner(make_decoder("both", live=True), PresenceGate())
        empty = frames["empty"]
        n = 200
        start = time.perf_counter()
        for _ in range(n):
            scanner.scan(empty)
        ms = (time.perf_counter() - start) * 1000 / n
        rows.append(
            {
                "name": f"decode_ms/both-live+gate/{width}x{height}/empty_static",
                "value": round(ms, 3),
                "unit": "ms",
                "notes": f"mean over {n} frames; {scanner.decoded_frames} decoded, "
                f"{scanner.skipped_frames} skipped by the presence gate",
            }
        )
    return rows


def bench_corpus() -> list[dict]:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return [{"name": "corpus", "value": None, "unit": "", "notes": f"absent: {CORPUS}"}]
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        manifest = list(csv.DictReader(f, delimiter="\t"))
    rows = []
    for backend in BACKENDS:
        decoder = _decoder(backend)
        hits: dict[str, int] = defaultdict(int)
        totals: dict[str, int] = defaultdict(int)
        ascii_hits = ascii_total = 0
        for row in manifest:
            expected = (CORPUS / row["expected_text_file"]).read_bytes().decode("utf-8")
            ok = expected in decode_image_file(CORPUS / row["file"], decoder)
            for key in (row["set"], "all"):
                totals[key] += 1
                hits[key] += ok
            if expected.isascii():
                ascii_total += 1
                ascii_hits += ok
        for key in sorted(totals, key=lambda k: (k == "all", k)):
            rows.append(
                {
                    "name": f"corpus/{backend}/{key}",
                    "value": round(100 * hits[key] / totals[key], 1),
                    "unit": "%",
                    "notes": f"{hits[key]}/{totals[key]} exact text",
                }
            )
        rows.append(
            {
                "name": f"corpus/{backend}/ascii-only",
                "value": round(100 * ascii_hits / ascii_total, 1),
                "unit": "%",
                "notes": f"{ascii_hits}/{ascii_total} exact text",
            }
        )
    return rows


def bench_phone_like(seeds: int = 4) -> list[dict]:
    rows = []
    for backend in BACKENDS:
        decoder = _decoder(backend)
        ok = total = 0
        missed = []
        for case in PHONE_CASES:
            for seed in range(seeds):
                text = credential_text(100 + seed)
                total += 1
                if decoder.decode(phone_frame(case, text)) == [text]:
                    ok += 1
                else:
                    missed.append(case)
        rows.append(
            {
                "name": f"phone_like/{backend}",
                "value": round(100 * ok / total, 1),
                "unit": "%",
                "notes": f"{ok}/{total} at 640x480; missed: "
                f"{', '.join(sorted(set(missed))) or '-'}",
            }
        )
    return rows


def run() -> list[dict]:
    return bench_speed() + bench_corpus() + bench_phone_like()


if __name__ == "__main__":
    results = run()
    width = max(len(r["name"]) for r in results)
    for r in results:
        print(f"{r['name']:<{width}}  {r['value']!s:>8} {r['unit']:<3} {r['notes']}")
    out = REPO / "benchmarks" / "results" / "decode.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    out.write_text(json.dumps({"meta": meta, "rows": results}, indent=1) + "\n")
    print(f"wrote {out}")
