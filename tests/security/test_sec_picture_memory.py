"""Attack replay (issue 21, finding 1): one picture upload kills the kiosk.

``/verify`` pictures were decoded in the kiosk process, and the 40 MP cap allowed ~700 MB
of decoding while the unit gives the kiosk ``MemoryMax=128M``: a 155 KB 6320x6320 PNG, a
39 KB greyscale PNG of the same size, a 47 KB 4000x3000 RGBA PNG and a 625 KB flat JPEG
each got it killed by the kernel; the standalone web (112M) the same.

Replayed in a real memory cgroup of the unit's own ``MemoryMax`` (read from the unit
file): ``appliance run`` (and ``appliance web --standalone``) started inside it, the
pictures sent the way the web sends them (over the kiosk socket; over HTTP to the
standalone web), then pictures exactly at the budget's pixel cap per mode, which must
decode. The process must survive every one (no OOM kill in the cgroup), answer each
picture, and still verify a normal picture afterwards. Skipped, with the reason, where
no memory cgroup can be made (not root, no writable hierarchy).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from PIL import Image
from web_support import LiveServer

from appliance.core.errors import ImageTooLarge
from appliance.devices.pictures import PICTURE_BUDGET_BYTES, max_pixels, peak_bytes
from appliance_web.socket_port import SocketKioskPort

REPO = Path(__file__).resolve().parents[2]
V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


def unit_memory_max(unit: str) -> int:
    text = (REPO / "systemd" / unit).read_text()
    value = re.search(r"^MemoryMax=(\d+)M$", text, re.M)
    assert value, f"{unit} has no MemoryMax=...M"
    return int(value.group(1)) * 2**20


class MemoryCgroup:
    """A child memory cgroup (v1 or v2) with a hard limit, removed afterwards."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        own = Path("/proc/self/cgroup").read_text()
        name = f"appliance-test-{os.getpid()}-{time.monotonic_ns()}"
        if (V1 / "memory.limit_in_bytes").exists():
            here = re.search(r"^\d+:memory:(\S+)$", own, re.M)
            parent = V1 / (here.group(1).lstrip("/") if here else "")
            self.v2 = False
            self.path = (parent if parent.is_dir() else V1) / name
        elif (V2 / "cgroup.controllers").exists():
            here = re.search(r"^0::(\S+)$", own, re.M)
            parent = V2 / (here.group(1).lstrip("/") if here else "")
            self.v2 = True
            self.path = parent / name
        else:
            pytest.skip("no memory cgroup hierarchy mounted (v1 memory or v2)")
        try:
            if self.v2:  # the memory controller must be on for the parent's children
                with contextlib.suppress(OSError):
                    (self.path.parent / "cgroup.subtree_control").write_text("+memory")
            self.path.mkdir()
            if self.v2:
                if not (self.path / "memory.max").exists():
                    self.path.rmdir()
                    pytest.skip(f"no memory controller for children of {self.path.parent}")
                (self.path / "memory.max").write_text(str(limit))
                (self.path / "memory.swap.max").write_text("0")
            else:
                (self.path / "memory.limit_in_bytes").write_text(str(limit))
        except OSError as e:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            pytest.skip(f"cannot create a memory cgroup at {self.path}: {e.strerror}")

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this cgroup from its first instruction (a shell that moves
        itself in, then execs): every byte it and its children allocate is charged here."""
        procs = self.path / "cgroup.procs"
        return ["/bin/sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *argv]

    def oom_kills(self) -> int:
        if self.v2:
            events = (self.path / "memory.events").read_text()
            return int(re.search(r"^oom_kill (\d+)$", events, re.M).group(1))
        control = (self.path / "memory.oom_control").read_text()
        found = re.search(r"^oom_kill (\d+)$", control, re.M)
        return int(found.group(1)) if found else 0

    def peak(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((self.path / name).read_text())
        return None

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


# -- the pictures ------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def flat_png(width: int, height: int, colour_type: int) -> bytes:
    """A valid flat PNG built row by row (no decoded copy in the test): 0 grey, 2 RGB,
    6 RGBA."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    z = zlib.compressobj(9)
    row = b"\x00" + bytes([200]) * (width * channels)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def flat_jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (180, 180, 180)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def at_cap(fmt: str, mode: str, text: str) -> bytes:
    """A picture of ``mode`` exactly at the budget's pixel cap (4:3), a QR code in it."""
    guess = max_pixels(fmt, mode, data_bytes=256 * 1024)
    width = math.isqrt(guess * 4 // 3)
    height = guess // width
    while peak_bytes(fmt, mode, (width, height), data_bytes=256 * 1024) > PICTURE_BUDGET_BYTES:
        height -= 1
    fill = {"L": 230, "RGB": (230, 230, 230), "RGBA": (230, 230, 230, 255)}[mode]
    img = Image.new(mode, (width, height), fill)
    code = io.BytesIO()
    segno.make(text, error="m", micro=False).save(code, kind="png", scale=8, border=4)
    img.paste(Image.open(code).convert(mode), (40, 40))
    out = io.BytesIO()
    img.save(out, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    data = out.getvalue()
    assert (
        len(data) <= 256 * 1024
        and peak_bytes(fmt, mode, (width, height), data_bytes=len(data)) <= PICTURE_BUDGET_BYTES
    )
    return data


# The pictures and what each must get: refused from its header (the PNGs need
# more than the budget), or decoded (a JPEG decodes its luma plane scaled down to fit).
HOSTILE = {
    "6320x6320 RGB PNG": (lambda: flat_png(6320, 6320, 2), "refused"),
    "6320x6320 grey PNG": (lambda: flat_png(6320, 6320, 0), "refused"),
    "4000x3000 RGBA PNG": (lambda: flat_png(4000, 3000, 6), "refused"),
    "6000x6000 flat JPEG": (lambda: flat_jpeg(6000, 6000), "NO_QR_FOUND"),
    # The largest upload the web takes (web.max_upload_kb): copies of it in every process.
    "10 MB JPEG": (lambda: noise_jpeg(10 * 2**20), "NO_QR_FOUND"),
}


def noise_jpeg(size: int) -> bytes:
    """A photo-sized JPEG of noise (incompressible), just under ``size`` bytes."""
    import numpy as np

    pixels = np.random.default_rng(7).integers(0, 256, (2700, 3600, 3), dtype=np.uint8)
    for quality in (95, 92, 90, 85, 80):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
        if len(buf.getvalue()) <= size:
            return buf.getvalue()
    raise AssertionError("no quality makes the JPEG small enough")


def qr_picture(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
    return buf.getvalue()


# -- the kiosk in its unit's cgroup -------------------------------------------------------


def write_config(tmp: Path) -> Path:
    frames = tmp / "frames"
    frames.mkdir()
    Image.new("L", (640, 480), 200).save(frames / "blank.png")
    config = tmp / "appliance.toml"
    config.write_text(f"""
[device]
id = "picture-memory"
mode = "kiosk"

[paths]
state_dir = "{tmp / "state"}"
secrets_dir = "{tmp / "secrets"}"
run_dir = "{tmp / "run"}"

[camera]
source = "images"
images_dir = "{frames}"
fps = 5

[indicator]
backend = "mock"

[audit]
required = false

[web]
kiosk_socket = "{tmp / "run" / "kiosk.sock"}"
language = "en"
trusted_hosts = ["127.0.0.1", "localhost"]
""")
    return config


@pytest.fixture
def installed(tmp_path: Path, authority, server) -> Path:
    from sync_support import device

    device(tmp_path / "state", server.url, authority.root_file).sync_once()
    return write_config(tmp_path)


def _environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    return env


@contextlib.contextmanager
def in_cgroup(argv: list[str], unit: str) -> Iterator[tuple[subprocess.Popen, MemoryCgroup]]:
    group = MemoryCgroup(unit_memory_max(unit))
    proc = subprocess.Popen(
        group.wrap(argv),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    try:
        yield proc, group
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        group.remove()


def wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"exited {proc.returncode}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "the kiosk socket did not appear"
        time.sleep(0.05)


def test_kiosk_survives_every_picture_in_its_units_memory(installed: Path, authority) -> None:
    sock = installed.parent / "run" / "kiosk.sock"
    argv = [sys.executable, "-m", "appliance.cli", "run", "--config", str(installed)]
    with in_cgroup(argv, "appliance-kiosk.service") as (proc, group):
        wait_for(sock, proc)
        port = SocketKioskPort(sock, timeout_s=30)
        for label, (make, expected) in HOSTILE.items():
            try:
                answer = [e["reason"] for e in port.verify_image(make())]
            except ImageTooLarge as e:
                assert "MiB" in str(e), (label, str(e))
                print(label, e)
                answer = "refused"
            if expected == "decoded":
                assert answer != "refused" and "NO_QR_FOUND" not in answer, label
            else:
                assert answer == expected or [expected] == answer, label
            assert proc.poll() is None, f"the kiosk died on the {label}"
        for fmt, mode in (("PNG", "L"), ("PNG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGBA")):
            events = port.verify_image(at_cap(fmt, mode, "LC1:AT-THE-CAP"))
            assert [e["reason"] for e in events] != ["NO_QR_FOUND"], (fmt, mode)
            assert proc.poll() is None, f"the kiosk died on a {fmt} {mode} at the cap"
        events = port.verify_image(qr_picture(authority.credential()))
        assert [e["outcome"] for e in events] == ["PASS"]
        assert group.oom_kills() == 0
        print(f"kiosk cgroup peak: {group.peak()} of {group.limit}")


class RemoteWeb(LiveServer):
    """The helpers of ``LiveServer`` (GET, form session, multipart POST) against a web
    server running in another process."""

    def __init__(self, port: int) -> None:  # no in-test server
        self.port = port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_web_survives_every_picture_in_its_units_memory(
    installed: Path, authority
) -> None:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "appliance.cli",
        "web",
        "--standalone",
        "--config",
        str(installed),
        "--port",
        str(port),
    ]
    with in_cgroup(argv, "appliance-web.service") as (proc, group):
        web = RemoteWeb(port)
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            with contextlib.suppress(OSError):
                if web.get("/verify")[0] == 200:
                    break
            assert time.monotonic() < deadline, "the web did not start"
            time.sleep(0.1)

        def upload(data: bytes) -> tuple[int, bytes]:
            cookie, token = web.form_session("/verify")
            return web.post_multipart(
                "/verify", cookie, {"csrf_token": token}, {"image": ("picture.png", data)}
            )

        for label, (make, expected) in HOSTILE.items():
            status, body = upload(make())
            if expected == "refused":
                assert status == 413 and b"too large" in body, label
            elif expected == "decoded":
                assert status == 200 and b"No QR code" not in body, label
            else:
                assert status == 200 and b"No QR code" in body, label
            assert proc.poll() is None, f"the web died on the {label}"
        for fmt, mode in (("PNG", "L"), ("PNG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGBA")):
            status, body = upload(at_cap(fmt, mode, "LC1:AT-THE-CAP"))
            assert status == 200 and b"No QR code" not in body, (fmt, mode)
            assert proc.poll() is None, f"the web died on a {fmt} {mode} at the cap"
        status, body = upload(qr_picture(authority.credential()))
        assert status == 200 and b"PASS" in body.upper()
        assert group.oom_kills() == 0
        print(f"web cgroup peak: {group.peak()} of {group.limit}")


# -- the model and the worker's own limits -------------------------------------------------

MEASURE = """
import json, sys
from appliance.devices.pictures import load_grey_bytes
from appliance.devices.scanner import make_decoder
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
data = sys.stdin.buffer.read()
decoder = make_decoder("both")
decoder.load_all()
before = rss("VmRSS")
try:
    open("/proc/self/clear_refs", "w").write("5")  # the peak starts here
except OSError:
    print(-1)  # no way to reset the peak here
    sys.exit(0)
decoder.decode(load_grey_bytes(data, budget_bytes=2**40))
print(json.dumps(rss("VmHWM") - before))
"""


def sample(fmt: str, mode: str, keyed: bool = False) -> bytes:
    img = Image.new(
        mode, (1600, 1200), {"L": 200, "P": 3, "LA": (200, 255)}.get(mode, (200,) * len(mode))
    )
    out = io.BytesIO()
    extra = {"transparency": (7, 7, 7) if mode == "RGB" else 7} if keyed else {}
    img.save(out, fmt, **extra)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode", "keyed"),
    [
        ("PNG", "L", False),
        ("PNG", "P", False),
        ("PNG", "P", True),
        ("PNG", "RGB", False),
        ("PNG", "RGB", True),
        ("PNG", "RGBA", False),
        ("PNG", "LA", False),
        ("JPEG", "L", False),
        ("JPEG", "RGB", False),
        ("JPEG", "CMYK", False),
        ("WEBP", "RGB", False),
        ("WEBP", "RGBA", False),
    ],
)
def test_measured_peak_is_within_the_model(fmt: str, mode: str, keyed: bool) -> None:
    """What the decode path really allocates (peak RSS of a fresh interpreter, QR cascade
    included) stays under ``peak_bytes``: the model the caps are derived from."""
    data = sample(fmt, mode, keyed)
    with Image.open(io.BytesIO(data)) as img:
        decoded_mode, size = img.mode, img.size
        keyed = "transparency" in img.info
    if fmt == "JPEG":
        decoded_mode = "L" if mode != "CMYK" else "CMYK"
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE],
        input=data,
        capture_output=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    measured = int(proc.stdout)
    if measured < 0:
        pytest.skip("/proc/self/clear_refs cannot reset the peak RSS here")
    model = peak_bytes(fmt, decoded_mode, size, keyed=keyed, data_bytes=len(data))
    assert measured <= model, (fmt, mode, measured / (size[0] * size[1]))


def test_the_worker_cannot_grow_past_its_budget() -> None:
    """The child's address-space limit holds by itself, whatever the model says: an
    allocation past it is a MemoryError in the child, not an OOM kill of the unit."""
    code = (
        "import sys\nfrom appliance.devices.picture_worker import limit_self\n"
        "limit_self(16 * 2**20, 10)\n"
        "try:\n    block = bytearray(64 * 2**20)\nexcept MemoryError:\n"
        "    print('refused')\n"
        "print(open('/proc/self/oom_score_adj').read().strip())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["refused", "1000"], proc.stderr[-2000:]


def test_a_worker_that_dies_costs_only_that_upload() -> None:
    from appliance.devices.picture_worker import decode_upload

    with pytest.raises(ImageTooLarge, match="could not be decoded within"):
        decode_upload(qr_picture("LC1:SLOW"), "both", timeout_s=0.001)  # killed at once
    assert decode_upload(qr_picture("LC1:NEXT"), "both") == ["LC1:NEXT"]


def test_bridge_depth_check_is_linear_in_memory() -> None:
    """The kiosk socket's nesting check ran a backtracking regex over the whole line: one
    750 KB upload took 85 MiB, a line of escapes 57 bytes per byte (issue 21)."""
    import tracemalloc

    from appliance.port.wire import too_deep

    line = b'{"args":{"data_b64":"' + b"\\n" * 2_000_000 + b"A" * 2_000_000 + b'"}}'
    tracemalloc.start()
    try:
        assert not too_deep(line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(line)


def test_the_socket_refuses_a_payload_above_its_cap(tmp_path: Path) -> None:
    """A picture's size is checked before a byte of it is read; a short payload ends the
    connection, never the bridge."""
    import json
    import socket as sockets

    from appliance.kiosk.bridge import BridgeServer

    class Port:
        def verify_image(self, data: bytes, source: str) -> list:
            return [{"bytes": len(data), "source": source}]

    path = tmp_path / "k.sock"
    with BridgeServer(Port(), path, max_message_bytes=1000):  # type: ignore[arg-type]

        def ask(size: int, payload: bytes) -> dict | None:
            with sockets.socket(sockets.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(path))
                s.sendall(
                    json.dumps(
                        {"id": 1, "method": "verify_image", "args": {"data_bytes": size}}
                    ).encode()
                    + b"\n"
                    + payload
                )
                s.shutdown(sockets.SHUT_WR)
                line = s.makefile("rb").readline()
                return json.loads(line) if line else None

        assert ask(1001, b"x" * 1001)["error"]["type"] == "BadRequest"
        assert ask(0, b"")["error"]["type"] == "BadRequest"
        assert ask(100, b"x" * 10) is None  # cut short: the connection ends
        assert ask(1000, b"x" * 1000)["result"] == [{"bytes": 1000, "source": "web-image"}]
