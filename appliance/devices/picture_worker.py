"""Uploaded pictures decoded in a short-lived child process whose death costs that upload.

A picture from the web is the one input whose memory grows with what the sender chose
(issue 21: one 155 KB PNG got the kiosk killed in its 128 MiB unit). The kiosk (and a
standalone web) therefore never decode an upload themselves: ``decode_upload`` starts
``python -m appliance.devices.picture_worker``, writes the bytes to its stdin and reads
the QR texts back as one JSON line. The child, after its imports and before reading a
byte, limits itself:

- address space: its size now plus ``PICTURE_BUDGET_BYTES`` (soft and hard, so nothing it
  decodes can raise it); ``appliance.devices.pictures`` refuses any picture whose modelled
  peak is above the budget, and a model error ends in a ``MemoryError`` in the child, not
  in a kernel OOM kill of the unit. ``prlimit`` (the prlimit64 call) rather than
  ``setrlimit``: the units' ``SystemCallFilter=~@resources`` denies setrlimit;
- CPU seconds (a hard kill after the timeout), no core file, no file written;
- ``oom_score_adj`` 1000: should the unit's cgroup still run out, the kernel kills the
  child first.

The parent waits ``timeout_s`` at most, kills the child on the deadline, and answers
``ImageTooLarge`` or ``ImageReadError`` with a message for that upload whatever happened
to the child. One child at a time (``_ONE``): the budget is the unit's, not per request.
Nothing here logs picture content or QR texts.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import subprocess
import sys
import threading
from typing import Any

from appliance.core.errors import ImageReadError, ImageTooLarge

log = logging.getLogger(__name__)

# Memory one picture may cost on top of the worker's own interpreter and imports (its
# address-space limit), the caps of ``appliance.devices.pictures`` derived from it. The
# units' arithmetic (x86, measured by tests/security/test_sec_picture_memory.py): the kiosk
# (~62 MiB) plus a worker (~31 MiB, half of it libraries the kiosk already maps) plus this
# stays under the kiosk's MemoryMax=128M; the standalone web likewise under 112M.
PICTURE_BUDGET_BYTES = 40 * 2**20

# Seconds one upload may take, interpreter start included; the web waits for the kiosk's
# answer ``web.kiosk_socket_timeout_s`` (10 s by default), so this stays below it.
TIMEOUT_S = 8.0
# An answer is a few QR texts (a QR code holds at most 7,089 characters).
MAX_TEXTS = 16
MAX_ANSWER_BYTES = 256 * 1024
_ONE = threading.Semaphore(1)
_ERRORS: dict[str, type[ImageReadError]] = {
    "ImageTooLarge": ImageTooLarge,
    "ImageReadError": ImageReadError,
}
# Single-threaded numerics: each BLAS thread reserves its own buffers and stack.
_CHILD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "1",
}


def decode_upload(
    data: bytes,
    backend: str,
    name: str = "upload",
    *,
    budget_bytes: int = PICTURE_BUDGET_BYTES,
    timeout_s: float = TIMEOUT_S,
) -> list[str]:
    """Every QR text in an uploaded picture, decoded by a child process (see above)."""
    if not _ONE.acquire(timeout=timeout_s):
        raise ImageReadError(f"{name}: another picture is being checked; try again")
    try:
        return _run_child(data, backend, name, budget_bytes, timeout_s)
    finally:
        _ONE.release()


def _run_child(
    data: bytes, backend: str, name: str, budget_bytes: int, timeout_s: float
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "appliance.devices.picture_worker",
        backend,
        str(budget_bytes),
        str(len(data)),
        str(timeout_s),
    ]
    too_much = ImageTooLarge(
        f"{name}: the picture could not be decoded within the "
        f"{budget_bytes // 2**20} MiB and {timeout_s:g} s a picture "
        "may use"
    )
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **_CHILD_ENV},
        )
    except OSError as e:
        raise ImageReadError(f"{name}: cannot start the picture decoder ({e.strerror or e})") from e
    try:
        out, _ = child.communicate(data, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        log.warning("picture decoder: killed after %g s", timeout_s)
        raise too_much from None
    answer = _answer(out)
    if answer is None:
        log.warning("picture decoder: ended with status %s and no answer", child.returncode)
        raise too_much
    if not answer.get("ok"):
        kind = _ERRORS.get(str(answer.get("error")), ImageReadError)
        raise kind(str(answer.get("message") or f"{name}: cannot read image")[:500])
    texts = answer.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ImageReadError(f"{name}: the picture decoder gave a malformed answer")
    return texts[:MAX_TEXTS]


def _answer(out: bytes) -> dict[str, Any] | None:
    if not out or len(out) > MAX_ANSWER_BYTES:
        return None
    try:
        answer = json.loads(out)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


# -- the child -----------------------------------------------------------------------------


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


def limit_self(budget_bytes: int, cpu_s: int) -> None:
    """Cap this process: address space now + ``budget_bytes``, CPU, no core, no file."""
    limit = _vm_size() + budget_bytes
    resource.prlimit(0, resource.RLIMIT_AS, (limit, limit))
    resource.prlimit(0, resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.prlimit(0, resource.RLIMIT_CORE, (0, 0))
    resource.prlimit(0, resource.RLIMIT_FSIZE, (0, 0))
    try:
        with open("/proc/self/oom_score_adj", "w", encoding="ascii") as f:
            f.write("1000")
    except OSError:
        pass  # a kernel without it: the address-space limit still holds


def _decode_in_child(
    backend: str, budget_bytes: int, max_bytes: int, timeout_s: float
) -> dict[str, Any]:
    # Everything the decode needs is loaded before the limit is set.
    from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401

    # PNG text chunks say nothing about QR codes; Pillow would hold 64 MiB of them.
    PngImagePlugin.MAX_TEXT_MEMORY = 2**20

    from appliance.devices.pictures import load_grey_bytes
    from appliance.devices.scanner import CascadeDecoder, make_decoder

    decoder = make_decoder(backend)
    if isinstance(decoder, CascadeDecoder):
        decoder.load_all()
    limit_self(budget_bytes, math.ceil(timeout_s))
    data = sys.stdin.buffer.read(max_bytes + 1)
    if len(data) > max_bytes:
        return {"ok": False, "error": "ImageTooLarge", "message": "upload: too large"}
    try:
        texts = decoder.decode(load_grey_bytes(data, "upload", budget_bytes=budget_bytes))
    except (ImageReadError, ImageTooLarge) as e:
        return {"ok": False, "error": type(e).__name__, "message": str(e)}
    except MemoryError:
        return {
            "ok": False,
            "error": "ImageTooLarge",
            "message": f"upload: needs more than the {budget_bytes // 2**20} MiB a picture may use",
        }
    return {"ok": True, "texts": texts[:MAX_TEXTS]}


def main(argv: list[str]) -> int:
    backend, budget, max_bytes, timeout_s = argv
    answer = _decode_in_child(backend, int(budget), int(max_bytes), float(timeout_s))
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
