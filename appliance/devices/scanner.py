"""QR texts from grey frames: decoder backends, a cheap presence gate, repeat suppression.

Payloads are returned as ``str``. zxing-cpp decodes the bytes itself (ECI, then its
charset guess: UTF-8, Shift_JIS or ISO-8859-1) and we take its plain text. zbar also
transcodes to UTF-8 internally; we decode its bytes as UTF-8 and fall back to latin-1 when
they are not valid UTF-8, so every byte survives one-to-one. LC1/LP1 credentials are ASCII
Base45, for which all of these agree; the choice only matters for foreign codes.

The default backend and the order of the combined cascade were chosen by measurement:
see docs/adr/0003-decoder-default.md and benchmarks/bench_decode.py.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageFilter

from appliance.core.errors import (  # noqa: F401 - the image errors are this module's API
    ApplianceError,
    ConfigError,
    ImageReadError,
    ImageTooLarge,
)
from appliance.devices.pictures import (  # noqa: F401 - pictures were this module's API
    IMAGE_FORMATS,
    MAX_IMAGE_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    as_array,
    image_format,
    load_grey,
    load_grey_bytes,
    read_image_file,
)

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("zxing", "zbar", "both")
DEFAULT_BACKEND = "both"


class QrDecoder(Protocol):
    """Finds and decodes every QR code in one grey frame (2-D uint8)."""

    def decode(self, grey: np.ndarray) -> list[str]: ...


def _unique(texts: Sequence[str]) -> list[str]:
    """Keep the first of each text, in order (several passes may see the same code)."""
    return list(dict.fromkeys(texts))


def bytes_to_text(data: bytes | bytearray) -> str:
    """UTF-8 when valid, else latin-1 (lossless), as documented above."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _blurred(grey: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur: smooths sensor noise, JPEG blocks and halftone that break binarisers."""
    return as_array(Image.fromarray(grey).filter(ImageFilter.GaussianBlur(radius)))


class ZxingDecoder:
    """zxing-cpp restricted to QR Model 2 and Model 1, like zbar: its ``QRCode`` family would
    also return Micro QR and rMQR, which no credential uses. Tries rotations and inversion."""

    def __init__(self, *, try_invert: bool = True, global_histogram: bool = False) -> None:
        import zxingcpp

        self._zx = zxingcpp
        self._formats = (zxingcpp.BarcodeFormat.QRCodeModel2, zxingcpp.BarcodeFormat.QRCodeModel1)
        self._format_set = zxingcpp.BarcodeFormats(self._formats)
        # zxing-cpp 3.1 reports a symbol it located but could not read as plain QRCode.
        self._located_formats = (*self._formats, zxingcpp.BarcodeFormat.QRCode)
        self._binarizer = (
            zxingcpp.Binarizer.GlobalHistogram
            if global_histogram
            else zxingcpp.Binarizer.LocalAverage
        )
        self._try_invert = try_invert

    def decode(self, grey: np.ndarray) -> list[str]:
        return self.read(grey)[0]

    def read(self, grey: np.ndarray) -> tuple[list[str], bool]:
        """Texts, and whether a QR symbol was located but failed to decode (a hint that a
        second look may pay off; costs nothing extra)."""
        found = self._zx.read_barcodes(
            np.ascontiguousarray(grey),
            formats=self._format_set,
            try_invert=self._try_invert,
            text_mode=self._zx.TextMode.Plain,
            binarizer=self._binarizer,
            return_errors=True,
        )
        texts = _unique([b.text for b in found if b.valid])
        located = any(not b.valid and b.format in self._located_formats for b in found)
        return texts, located


class ZbarDecoder:
    """pyzbar restricted to QR. zbar misses light-on-dark codes, so an inverted second
    pass runs when the first finds nothing (doubles the cost of empty frames)."""

    def __init__(self, *, try_invert: bool = True) -> None:
        from pyzbar import pyzbar

        self._decode = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]
        self._try_invert = try_invert

    def _once(self, grey: np.ndarray) -> list[str]:
        frame = np.ascontiguousarray(grey)
        h, w = frame.shape
        found = self._decode((frame.tobytes(), w, h), symbols=self._symbols)
        return _unique([bytes_to_text(s.data) for s in found])

    def decode(self, grey: np.ndarray) -> list[str]:
        texts = self._once(grey)
        if not texts and self._try_invert:
            texts = self._once(255 - grey)
        return texts


class CascadeDecoder:
    """zxing first; only when it finds nothing, second looks ordered cheapest first.

    Measured on the corpus, each look adds codes the plain pass misses: zxing with a global
    histogram binariser (uneven light, cloth), zxing on a blurred frame (halftone, noise),
    and zbar on a lightly blurred frame (damaged or decorated codes). A frame with a code is
    almost always read by the first pass, so the extra looks cost only on frames without one.

    The zxing looks are cheap (under 1 ms at 640x480); zbar is not (10 to 40 ms on an empty
    frame). With ``live`` true (camera frames: another frame follows in 100 ms) zbar runs
    only where zxing located a QR symbol it could not decode; on still images it always runs.
    zbar is loaded on its first look (pyzbar and libzbar, ~2 MiB a kiosk that only ever
    sees clean codes need not carry; issue 14).

    ``budget_s`` (live frames): decoder time per frame, on ``clock`` (this thread's CPU time
    by default). The first look always runs; a second look starts only while the frame's
    allowance lasts, and what a frame overspends is owed by the next ones, so a sticker of
    damaged codes held in view costs about the budget per frame on average instead of every
    look on every frame (issue 21: 189 ms a frame, 40x an empty one). ``budget_spent``
    counts the frames whose looks were cut short.
    """

    def __init__(
        self,
        *,
        live: bool = False,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._first = ZxingDecoder()
        self._global = ZxingDecoder(global_histogram=True)
        self._live = live
        self._budget_s = budget_s
        self._clock = clock
        self._debt_s = 0.0
        self.budget_spent = 0

    @functools.cached_property
    def _zbar(self) -> ZbarDecoder:
        return ZbarDecoder(try_invert=False)  # zxing passes already try inversion

    def load_all(self) -> None:
        """Load every look's library now (the picture worker does, before it caps its
        own memory)."""
        _ = self._zbar

    def decode(self, grey: np.ndarray) -> list[str]:
        start = self._clock()
        try:
            return self._looks(grey, start)
        finally:
            if self._budget_s is not None:
                spent = self._clock() - start
                self._debt_s = max(0.0, self._debt_s + spent - self._budget_s)

    def _looks(self, grey: np.ndarray, start: float) -> list[str]:
        texts, located = self._first.read(grey)
        if texts:
            return texts
        looks: list[Callable[[], list[str]]] = [
            lambda: self._global.decode(grey),
            lambda: self._first.decode(_blurred(grey, 2.0)),
        ]
        if located or not self._live:
            looks.append(lambda: self._zbar.decode(_blurred(grey, 1.0)))
        for look in looks:
            if self._budget_s is not None and (
                self._clock() - start >= self._budget_s - self._debt_s
            ):
                self.budget_spent += 1
                return []
            texts = look()
            if texts:
                return texts
        return []


def make_decoder(name: str, *, live: bool = False, budget_s: float | None = None) -> QrDecoder:
    """Decoder by configuration name: "zxing", "zbar" or "both" (the cascade).

    ``live``: for camera frames, where cost per empty frame matters more than the last
    percent of hard images; ``budget_s``: the cascade's decoder time per frame (see
    ``CascadeDecoder``). A single backend makes one look a frame and has no budget.
    """
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    if name == "both":
        return CascadeDecoder(live=live, budget_s=budget_s)
    raise ConfigError(f"unknown scanner backend '{name}' (choose from {', '.join(BACKENDS)})")


def decode_image_bytes(
    data: bytes, decoder: QrDecoder | None = None, name: str = "image"
) -> list[str]:
    """Every QR text in an image's bytes (an upload), decoded in memory."""
    return (decoder or make_decoder(DEFAULT_BACKEND)).decode(load_grey_bytes(data, name))


def decode_image_file(path: Path | str, decoder: QrDecoder | None = None) -> list[str]:
    """Every QR text in one image file, as the kiosk would read a camera frame."""
    grey = load_grey(Path(path))
    return (decoder or make_decoder(DEFAULT_BACKEND)).decode(grey)


def _percentiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """``np.percentile(values, qs)`` of integers (linear method), equal to the last bit:
    ``np.percentile`` imports numpy.ma (~1.3 MiB resident) on its first call (issue 14)."""
    ordered = np.sort(values, axis=None)
    last = ordered.size - 1
    out: list[float] = []
    for q in qs:
        virtual = last * (q / 100)
        below = min(max(math.floor(virtual), 0), last)
        gamma = virtual - below
        a, b = int(ordered[below]), int(ordered[min(below + 1, last)])
        out.append(b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma)
    return out


class PresenceGate:
    """Skips decoding of frames that cannot hold a new code, so an idle kiosk stays cool.

    Looks at a 1-in-``step`` subsample (a few thousand pixels, tens of microseconds):
    - too little contrast (lens covered, dark room, blank wall): no QR code can be there;
    - the scene is unchanged since the last frame in which nothing was found: skip.
    Every ``recheck_every``-th frame is decoded anyway, so a missed change costs at most
    that many frames; keep that interval (frames / fps) below the repeat suppressor's
    absence time, or a code whose first look failed could count as gone and come back.
    Call ``record(found)`` after each decoded frame.
    """

    def __init__(
        self,
        *,
        step: int = 8,
        min_contrast: int = 40,
        change_level: int = 24,
        change_fraction: float = 0.002,
        recheck_every: int = 10,
    ) -> None:
        self._step = step
        self._min_contrast = min_contrast
        self._change_level = change_level
        self._change_fraction = change_fraction
        self._recheck_every = recheck_every
        self._empty_thumb: np.ndarray | None = None
        self._thumb: np.ndarray | None = None
        self._skipped = 0

    def should_decode(self, grey: np.ndarray) -> bool:
        thumb = grey[:: self._step, :: self._step].astype(np.int16)
        self._thumb = thumb
        if self._skipped + 1 >= self._recheck_every:
            self._skipped = 0
            return True
        lo, hi = _percentiles(thumb, (2, 98))
        if hi - lo < self._min_contrast:
            self._skipped += 1
            return False
        ref = self._empty_thumb
        if ref is not None and ref.shape == thumb.shape:
            changed = np.count_nonzero(np.abs(thumb - ref) > self._change_level)
            if changed <= self._change_fraction * thumb.size:
                self._skipped += 1
                return False
        self._skipped = 0
        return True

    def record(self, found: bool) -> None:
        """Remember the last decoded frame as the empty scene, or forget it if a code was seen."""
        self._empty_thumb = None if found else self._thumb


class FrameScanner:
    """Presence gate plus decoder: what the kiosk loop calls once per frame."""

    def __init__(self, decoder: QrDecoder, gate: PresenceGate | None = None) -> None:
        self.decoder = decoder
        self.gate = gate
        self.decoded_frames = 0
        self.skipped_frames = 0

    def scan(self, grey: np.ndarray) -> list[str]:
        if self.gate is not None and not self.gate.should_decode(grey):
            self.skipped_frames += 1
            return []
        self.decoded_frames += 1
        texts = self.decoder.decode(grey)
        if self.gate is not None:
            self.gate.record(bool(texts))
        return texts


class RepeatSuppressor:
    """One verdict per code held in view; the same code counts anew only after it was
    absent for ``repeat_after_absent_s``. A different code counts at once.

    ``key`` maps a text to its identity (default: the text itself); for live LP1 codes the
    caller passes the credential, since the presentation text changes while the card does not.
    ``key`` must not raise. Times are passed in (seconds, monotonic), never read here.
    """

    def __init__(
        self,
        repeat_after_absent_s: float,
        key: Callable[[str], Hashable] | None = None,
    ) -> None:
        self._absent_s = repeat_after_absent_s
        self._key: Callable[[str], Hashable] = key or (lambda text: text)
        self._last_seen: dict[Hashable, float] = {}

    def new_texts(self, texts: Sequence[str], now: float) -> list[str]:
        """The texts among those seen in this frame that deserve a verdict now."""
        self._forget(now)
        fresh: list[str] = []
        for text in texts:
            k = self._key(text)
            if k not in self._last_seen:
                fresh.append(text)
            self._last_seen[k] = now
        return fresh

    def _forget(self, now: float) -> None:
        """Drop codes not seen for the absence time; they count as new when they return."""
        gone = [k for k, t in self._last_seen.items() if now - t >= self._absent_s]
        for k in gone:
            del self._last_seen[k]
