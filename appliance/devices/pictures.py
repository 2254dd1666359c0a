"""Pictures (files and uploads) to grey arrays, within a memory budget fixed in advance.

Pictures are hostile. Only PNG, JPEG and WebP reach a decoder (magic bytes first, no other
Pillow plugin tried), and the pixel cap is derived from the memory the decode may use,
not the other way round (issue 21: a 40 MP cap allowed ~700 MB of decoding, and a 155 KB
PNG killed the kiosk in its 128 MiB unit). ``peak_bytes`` is the model of what this path
allocates at its peak for a picture of a given format, mode and size, QR decoding
included, as Pillow actually allocates it (measured per mode by
tests/security/test_sec_picture_memory.py and benchmarks/bench_pictures.py); a picture
whose model exceeds the budget is refused from its header, before any pixel is decoded.

The path keeps one full-size copy at a time where it can: JPEGs decode the luma plane only
(``draft``), scaled down by the JPEG decoder itself (1/2, 1/4, 1/8) until they fit;
palette pictures are flattened on their palette; transparency is composited on white in
greyscale, never through RGBA copies; EXIF rotation is applied to the grey picture; the
grey picture becomes an array strip by strip (``np.asarray`` goes through ``tobytes``,
which holds every chunk and their join at once).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from appliance.core.errors import ImageReadError, ImageTooLarge
from appliance.devices.picture_worker import PICTURE_BUDGET_BYTES

IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
# Largest picture whose header is accepted at all: bounds the decoder's time. JPEGs above
# what the budget can hold at full size decode scaled down; others must fit as they are.
MAX_IMAGE_PIXELS = 40_000_000
# Largest image file read by ``verify --image`` and ``decode`` (the web caps its uploads
# lower, at ``web.max_upload_kb``).
MAX_IMAGE_FILE_BYTES = 20 * 2**20
# Bytes a pixel costs at the peak of the decode, by the mode Pillow decodes to (after a
# JPEG draft), with the grey copy and the array made from it: measured on Pillow 13 by
# benchmarks/bench_pictures.py (L 2.4, RGB 5.1, RGBA and LA 6.1 at 12 MP), rounded up.
# "keyed": a colour-key transparency (tRNS in an L or RGB PNG), made RGBA on the way.
DECODE_BYTES_PER_PIXEL: dict[str, float] = {
    "L": 2.5,
    "P": 2.5,
    "1": 2.5,
    "I;16": 3.5,
    "I;16B": 3.5,
    "RGB": 5.5,
    "YCbCr": 5.5,
    "CMYK": 10.5,
    "I": 6.5,
    "F": 6.5,
    "RGBA": 6.5,
    "LA": 6.5,
    "PA": 6.5,
    "keyed": 10.5,
}
# WebP, any mode: libwebp's animation decoder keeps two RGBA canvases, Pillow copies the
# frame into bytes and then into the image (16.3 measured).
WEBP_BYTES_PER_PIXEL = 17.0
# The QR decoder's cascade on the grey array, beyond the array itself (zxing binarisers,
# blurred copies, zbar): 3.2 measured at 12 MP on frames where every look runs.
QR_BYTES_PER_PIXEL = 3.5
# Per picture whatever its size: Python objects, strip buffers, the decoders' line and
# block buffers, malloc's granularity (3.6 MiB fitted from 1.9 MP and 12 MP peaks).
FIXED_BYTES = 4 * 2**20
STRIP_BYTES = 2**20

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def image_format(data: bytes) -> str | None:
    """The format named by the first bytes (PNG, JPEG or WEBP), or None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """A WebP's canvas size from its first chunk, or None when it names none. Read here,
    not by Pillow: its WebP plugin allocates the decoder's canvases when it opens a file."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _mode_key(mode: str, keyed: bool) -> str:
    if keyed and mode not in ("P", "RGBA", "LA", "PA"):
        return "keyed"
    return mode if mode in DECODE_BYTES_PER_PIXEL else "keyed"  # unknown: the dearest


def peak_bytes(
    fmt: str, mode: str, size: tuple[int, int], *, keyed: bool = False, data_bytes: int = 0
) -> int:
    """The model of this module's peak allocation for one picture (see the docstring)."""
    pixels = size[0] * size[1]
    decode = (
        WEBP_BYTES_PER_PIXEL if fmt == "WEBP" else DECODE_BYTES_PER_PIXEL[_mode_key(mode, keyed)]
    )
    # The picture's bytes are held twice: as given and as Pillow reads its chunks.
    return math.ceil(pixels * max(decode, 1 + QR_BYTES_PER_PIXEL)) + 2 * data_bytes + FIXED_BYTES


def max_pixels(
    fmt: str,
    mode: str,
    budget_bytes: int = PICTURE_BUDGET_BYTES,
    *,
    keyed: bool = False,
    data_bytes: int = 0,
) -> int:
    """The largest picture of this format and mode the budget holds: the pixel cap."""
    per_pixel = peak_bytes(fmt, mode, (1, 1), keyed=keyed) - FIXED_BYTES
    return max(0, (budget_bytes - 2 * data_bytes - FIXED_BYTES) // per_pixel)


def _fit_jpeg(img: Image.Image, budget_bytes: int, data_bytes: int) -> None:
    """Decode the luma plane only, scaled down by the JPEG decoder until it fits."""
    width, height = img.size
    decoded = "CMYK" if img.mode == "CMYK" else "L"  # no luma plane in a CMYK JPEG
    for scale in (1, 2, 4, 8):
        size = (math.ceil(width / scale), math.ceil(height / scale))
        if peak_bytes("JPEG", decoded, size, data_bytes=data_bytes) <= budget_bytes:
            img.draft("L", size)
            return
    img.draft("L", (math.ceil(width / 8), math.ceil(height / 8)))  # refused just below


def _flatten_palette(img: Image.Image) -> Image.Image:
    """A palette picture as grey on white, computed on its 256 colours, not its pixels."""
    palette = img.getpalette("RGB") or []
    alpha = img.info.get("transparency")
    grey = []
    for i in range(len(palette) // 3):
        r, g, b = palette[3 * i : 3 * i + 3]
        lum = (r * 299 + g * 587 + b * 114) // 1000
        if isinstance(alpha, bytes):
            a = alpha[i] if i < len(alpha) else 255
        else:
            a = 0 if alpha == i else 255
        grey.append((lum * a + 255 * (255 - a)) // 255)
    img.info.pop("transparency", None)
    img.putpalette([v for value in grey for v in (value, value, value)], "RGB")
    return img.convert("L")


def _on_white(img: Image.Image) -> Image.Image:
    """An image with an alpha channel as grey on white: grey and alpha (1 byte a pixel
    each), the original released, then pasted through the alpha onto white."""
    alpha = img.getchannel("A")
    grey = img.convert("L")
    img.close()
    white = Image.new("L", grey.size, 255)
    white.paste(grey, (0, 0), alpha)
    return white


def _grey(img: Image.Image) -> Image.Image:
    """``img`` as 'L' on white; closes ``img`` (its pixels freed) when it makes a copy."""
    keyed = "transparency" in img.info
    if img.mode == "P":
        grey = _flatten_palette(img)
    elif img.mode in ("RGBA", "LA", "PA"):
        return _on_white(img)
    elif keyed:
        return _on_white(img.convert("RGBA"))
    elif img.mode == "L":
        return img
    else:
        grey = img.convert("L")
    img.close()
    return grey


def as_array(grey: Image.Image) -> np.ndarray:
    """An 'L' image as a new uint8 array, copied strip by strip (no full-size temporary)."""
    width, height = grey.size
    out = np.empty((height, width), np.uint8)
    rows = max(1, STRIP_BYTES // max(1, width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = grey.crop((0, top, width, bottom)).tobytes()
        out[top:bottom] = np.frombuffer(strip, np.uint8).reshape(bottom - top, width)
    return out


def _check(
    name: str,
    fmt: str,
    mode: str,
    header: tuple[int, int],
    decoded: tuple[int, int],
    budget_bytes: int,
    data_bytes: int,
    *,
    keyed: bool = False,
) -> None:
    """``ImageTooLarge`` for a header above ``MAX_IMAGE_PIXELS`` or a decode above budget."""
    width, height = header
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(
            f"{name}: {width}x{height} pixels is above the "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels a picture may have"
        )
    need = peak_bytes(fmt, mode, decoded, keyed=keyed, data_bytes=data_bytes)
    if need > budget_bytes:
        raise ImageTooLarge(
            f"{name}: {width}x{height} pixels ({mode}) needs about "
            f"{need // 2**20} MiB to decode, above the "
            f"{budget_bytes // 2**20} MiB a picture may use"
        )


def load_grey_bytes(
    data: bytes, name: str = "image", *, budget_bytes: int = PICTURE_BUDGET_BYTES
) -> np.ndarray:
    """An image's bytes as a grey array, in memory: EXIF orientation applied, transparency
    on white. Refuses other formats, more than ``MAX_IMAGE_PIXELS`` and pictures whose
    decode would cost more than ``budget_bytes`` (``peak_bytes``), before decoding;
    ``name`` only labels the error."""
    fmt = image_format(data)
    if fmt is None:
        raise ImageReadError(f"{name}: not a PNG, JPEG or WebP picture")
    if fmt == "WEBP":
        size = webp_size(data)
        if size is None:
            raise ImageReadError(f"{name}: not a WebP picture we can read")
        _check(name, fmt, "RGBA", size, size, budget_bytes, len(data))
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            header = img.size
            if header[0] * header[1] <= MAX_IMAGE_PIXELS and fmt == "JPEG":
                _fit_jpeg(img, budget_bytes, len(data))
            _check(
                name,
                fmt,
                img.mode,
                header,
                img.size,
                budget_bytes,
                len(data),
                keyed="transparency" in img.info,
            )
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            img.load()
            grey = _grey(img)
            turn = _TRANSPOSE.get(orientation)
            if turn is not None:
                upright = grey.transpose(turn)
                grey.close()
                grey = upright
            try:
                return as_array(grey)
            finally:
                grey.close()
    except UnidentifiedImageError as e:
        raise ImageReadError(f"{name}: not a picture we can read") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"{name}: cannot read image ({e})") from e


def read_image_file(path: Path) -> bytes:
    """An image file's bytes, refused above ``MAX_IMAGE_FILE_BYTES`` (read no further)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_FILE_BYTES + 1)
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise ImageReadError(f"{path}: is a directory, not an image") from e
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e})") from e
    if len(data) > MAX_IMAGE_FILE_BYTES:
        raise ImageTooLarge(f"{path}: larger than {MAX_IMAGE_FILE_BYTES // 2**20} MB")
    return data


def load_grey(path: Path) -> np.ndarray:
    """An image file as a grey array (see ``load_grey_bytes``)."""
    return load_grey_bytes(read_image_file(path), str(path))
