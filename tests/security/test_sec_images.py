"""Pictures given to ``verify --image``, ``decode`` and the web upload: bounded work.

Attacks replayed: a 190 KB PNG declaring 13000x13000 pixels (169 megapixels, under twice
Pillow's own bomb limit, so Pillow only warns) decoded in full and took the kiosk to
gigabytes; a 9000x9000 one (under Pillow's limit, so not even a warning); BMP, TIFF, GIF
and EPS reached Pillow's other decoders (EPS runs Ghostscript where it is installed); and an
upload above 500 KB was spooled to a temporary file although the docs promise memory only.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
import segno
from PIL import Image, PngImagePlugin
from support import World
from web_support import LiveServer, form_token, make_app, make_kit

from appliance.cli import main
from appliance.core.errors import ImageReadError
from appliance.devices.scanner import decode_image_file


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(width: int, height: int) -> bytes:
    """A valid, all-black grey PNG of ``width`` x ``height``: tiny on disk, huge decoded.
    Built row by row, so making it costs the test no memory."""
    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 and black pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def qr_png(text: str, *, padding_kb: int = 0) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=4, border=4)
    if not padding_kb:
        return buf.getvalue()
    info = PngImagePlugin.PngInfo()
    info.add_text("pad", "x" * padding_kb * 1024)  # stored uncompressed (tEXt)
    out = io.BytesIO()
    Image.open(io.BytesIO(buf.getvalue())).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def other_format(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(qr_png("LC1:X"))).convert("RGB").save(buf, fmt)
    return buf.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


@pytest.mark.parametrize("size", [(13000, 13000), (9000, 9000)])
def test_pixel_bomb_is_refused_from_its_header(tmp_path: Path, size: tuple[int, int]) -> None:
    from appliance.devices.scanner import MAX_IMAGE_PIXELS

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(*size))
    assert bomb.stat().st_size < 400_000 and size[0] * size[1] > MAX_IMAGE_PIXELS
    with pytest.raises(ImageReadError, match="megapixels"):
        decode_image_file(bomb)


def test_the_pixel_cap_fits_a_phone_photo_and_a_1_gb_pi() -> None:
    from appliance.devices.scanner import MAX_IMAGE_PIXELS

    assert 12_000_000 <= MAX_IMAGE_PIXELS <= 50_000_000


@pytest.mark.parametrize(
    "data",
    [other_format("BMP"), other_format("TIFF"), other_format("GIF"), EPS],
    ids=["bmp", "tiff", "gif", "eps"],
)
def test_only_png_jpeg_and_webp_are_opened(tmp_path: Path, data: bytes) -> None:
    picture = tmp_path / "picture"
    picture.write_bytes(data)
    with pytest.raises(ImageReadError, match="PNG, JPEG or WebP"):
        decode_image_file(picture)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_the_three_formats_still_decode(fmt: str) -> None:
    from appliance.devices.scanner import decode_image_bytes

    buf = io.BytesIO()
    Image.open(io.BytesIO(qr_png("LC1:HELLO"))).convert("RGB").save(buf, fmt, quality=95)
    assert decode_image_bytes(buf.getvalue()) == ["LC1:HELLO"]


def test_cli_decode_and_verify_refuse_a_bomb_in_one_line(tmp_path: Path, capsys) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(13000, 13000))
    with pytest.raises(ImageReadError, match="megapixels"):
        decode_image_file(bomb)
    assert main(["decode", str(bomb)]) == 64  # unreadable input: as verify counts it
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "megapixels" in err and "bomb.png" in err
    trust = tmp_path / "trust.json"
    World().editor.save(trust)
    assert main(["verify", "--trust-source", str(trust), "--image", str(bomb)]) == 64
    err = capsys.readouterr().err
    assert "megapixels" in err and err.count("\n") == 1


def test_cli_refuses_an_oversized_file(tmp_path: Path, capsys) -> None:
    from appliance.devices.scanner import MAX_IMAGE_FILE_BYTES

    big = tmp_path / "big.png"
    big.write_bytes(qr_png("LC1:X") + bytes(MAX_IMAGE_FILE_BYTES))
    assert main(["decode", str(big)]) == 64
    assert "larger than" in capsys.readouterr().err


def test_web_refuses_a_bomb_before_decoding(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    client = make_app(kit).test_client()
    token = form_token(client, "/verify")
    r = client.post(
        "/verify",
        data={"csrf_token": token, "image": (io.BytesIO(png_bomb(13000, 13000)), "bomb.png")},
    )
    assert r.status_code == 413
    assert "too large" in r.get_data(as_text=True)
    assert kit.port.recent_verdicts() == []


def test_web_refuses_other_formats(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    client = make_app(kit).test_client()
    token = form_token(client, "/verify")
    r = client.post("/verify", data={"csrf_token": token, "image": (io.BytesIO(EPS), "x.eps")})
    assert r.status_code == 400 and kit.port.recent_verdicts() == []


def test_web_upload_never_touches_a_temporary_directory(tmp_path: Path, monkeypatch) -> None:
    kit = make_kit(tmp_path)
    server = LiveServer(make_app(kit))  # real HTTP: the test client spools to temp files
    try:
        cookie, token = server.form_session("/verify")
        picture = qr_png(kit.pass_text(), padding_kb=900)  # above werkzeug's 500 KB spool
        # Any temporary file now fails: the directory does not exist.
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
        status, body = server.post_multipart(
            "/verify", cookie, {"csrf_token": token}, {"image": ("qr.png", picture)}
        )
    finally:
        server.close()
    assert status == 200, body[:300]
    assert b"The licence is genuine and in force." in body
    assert not (tmp_path / "no-such-dir").exists()


def test_web_caps_the_request_size(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    app = make_app(kit)
    client = app.test_client()
    token = form_token(client, "/verify")
    limit = kit.config.web.max_upload_kb * 1024
    r = client.post(
        "/verify",
        data={
            "csrf_token": token,
            "image": (io.BytesIO(qr_png("LC1:X") + bytes(limit + 128 * 1024)), "big.png"),
        },
    )
    assert r.status_code == 413
    assert kit.port.recent_verdicts() == []
