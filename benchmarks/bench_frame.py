"""Decoder CPU per camera frame, with and without the per-frame budget (issue 21).

A sticker of half-damaged QR codes held in view made the live cascade run every look on
every frame: zxing-cpp locates the codes and cannot read them, which sends the frame to the
global-histogram, blurred and zbar looks. Measured here as this thread's CPU time per frame
over a run of frames (the budget carries overspending to the next frames, so only a run
shows its effect): an empty scene, a clean code, and the damaged sticker, with no budget
and with the default ``scanner.frame_budget_ms``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "security"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from common import Row, print_table, row, save
from support import qr_frame
from test_sec_rate_caps import damaged_sticker

from appliance.config import ScannerConfig
from appliance.devices.scanner import CascadeDecoder

FRAMES = 60


def per_frame_ms(frame: np.ndarray, budget_s: float | None) -> tuple[float, int]:
    """Mean CPU milliseconds a frame over ``FRAMES`` frames, and the frames cut short."""
    decoder = CascadeDecoder(live=True, budget_s=budget_s)
    decoder.decode(frame)  # load zbar and warm the caches outside the measurement
    decoder = CascadeDecoder(live=True, budget_s=budget_s)
    decoder.load_all()
    start = time.thread_time()
    for _ in range(FRAMES):
        decoder.decode(frame)
    return (time.thread_time() - start) / FRAMES * 1e3, decoder.budget_spent


def run() -> list[Row]:
    budget_s = ScannerConfig().frame_budget_ms / 1000
    scenes = {
        "empty scene": np.full((480, 640), 200, np.uint8),
        "clean code": qr_frame("LC1:CLEAN-CODE"),
        "damaged sticker": damaged_sticker(),
    }
    rows: list[Row] = []
    empty_ms = None
    for name, frame in scenes.items():
        free_ms, _ = per_frame_ms(frame, None)
        bounded_ms, cut = per_frame_ms(frame, budget_s)
        if empty_ms is None:
            empty_ms = free_ms
        rows.append(
            row(
                f"{name}: no budget",
                free_ms,
                "ms CPU/frame",
                f"{free_ms / empty_ms:.1f}x the empty scene",
            )
        )
        rows.append(
            row(
                f"{name}: budget {budget_s * 1e3:g} ms",
                bounded_ms,
                "ms CPU/frame",
                f"{cut} of {FRAMES} frames cut short",
            )
        )
    return rows


if __name__ == "__main__":
    result = run()
    print_table("Decoder CPU per frame", result)
    save("frame", result)
