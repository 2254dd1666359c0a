"""Memory of an uploaded picture's decode per format and mode, and the worker's cost.

The pixel caps of ``appliance.devices.pictures`` are derived from a memory budget through a
per-mode model of the decode's peak (bytes a pixel). Measured here as the peak RSS growth
of a fresh interpreter (the upload worker's situation) decoding one picture of each kind
and running the QR cascade on it, against the model; then the cap each mode gets from the
budget, and the wall time of one upload through the worker process (interpreter start,
imports, limits, decode).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "security"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, print_table, row, save
from PIL import Image
from test_sec_picture_memory import MEASURE, qr_picture

from appliance.devices.picture_worker import PICTURE_BUDGET_BYTES, decode_upload
from appliance.devices.pictures import max_pixels, peak_bytes

SIZE = (3000, 2000)
KINDS = (
    ("PNG", "L"),
    ("PNG", "P"),
    ("PNG", "RGB"),
    ("PNG", "RGBA"),
    ("PNG", "LA"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
)


def picture(fmt: str, mode: str) -> bytes:
    fill = {"L": 200, "P": 3, "LA": (200, 255)}.get(mode, (200,) * len(mode))
    out = io.BytesIO()
    Image.new(mode, SIZE, fill).save(out, fmt)
    return out.getvalue()


def measured_peak(data: bytes) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE],
        input=data,
        capture_output=True,
        timeout=300,
        check=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    return int(proc.stdout)


def run() -> list[Row]:
    rows: list[Row] = []
    pixels = SIZE[0] * SIZE[1]
    for fmt, mode in KINDS:
        data = picture(fmt, mode)
        decoded = "L" if fmt == "JPEG" and mode != "CMYK" else mode
        peak = measured_peak(data)
        model = peak_bytes(fmt, decoded, SIZE, data_bytes=len(data))
        cap = max_pixels(fmt, decoded)
        rows.append(
            row(
                f"{fmt} {mode} {SIZE[0]}x{SIZE[1]}: peak",
                peak / pixels,
                "bytes/pixel",
                f"model {model / pixels:.2f}; cap at "
                f"{PICTURE_BUDGET_BYTES // 2**20} MiB: {cap / 1e6:.1f} MP"
                + ("" if fmt != "JPEG" else " decoded (drafted down to fit)"),
            )
        )
    small = qr_picture("LC1:BENCH")
    decode_upload(small, "both")
    start = time.perf_counter()
    for _ in range(5):
        decode_upload(small, "both")
    rows.append(
        row(
            "one upload through the worker",
            (time.perf_counter() - start) / 5 * 1e3,
            "ms",
            "interpreter start, imports, limits, decode of a small QR picture",
        )
    )
    return rows


if __name__ == "__main__":
    result = run()
    print_table("Picture decode memory", result)
    save("pictures", result)
