"""atheris fuzz harness over the live session's parsers: the `mdoc:` engagement and the
holder's SessionData (spec mdl-reader s.1, s.3; issue 23).

Short run (CI, via tests/mdoc/test_engagement_fuzz.py):
    python tests/fuzz/fuzz_engagement.py -runs=5000
Long run:  python tests/fuzz/fuzz_engagement.py .fuzz/engagement -max_total_time=3600

Inputs: raw bytes as a base64url engagement; a valid engagement (both BLE modes, P-256)
with bytes overwritten where the fuzzer says, so the checks past the CBOR layer are reached;
raw text as the whole QR text; raw bytes as a SessionData message to a live reader session.
The engagement parser may only raise ``Rejection``; ``ReaderSession.receive`` may raise
nothing. Each input's CPU time is held to ``BUDGET_S`` as for the other formats (best of
three, written to ``$FUZZ_CANDIDATES_DIR``); a crash goes to ``$FUZZ_SEEDS_DIR``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import sys
import time
import uuid
from pathlib import Path

import atheris
from cryptography.hazmat.primitives.asymmetric import ec

with atheris.instrument_imports():
    from appliance.core.credential.mdoc.engagement import choose_ble, parse_engagement
    from appliance.core.credential.mdoc.session import ReaderSession
    from appliance.core.errors import Rejection

from appliance.tools.holder_mdoc import HolderSession, device_engagement, engagement_text

BUDGET_S = 0.005
SEEDS = os.environ.get("FUZZ_SEEDS_DIR")
CANDIDATES = os.environ.get("FUZZ_CANDIDATES_DIR")
_KEY = ec.generate_private_key(ec.SECP256R1())
VALID = device_engagement(
    _KEY.public_key(), peripheral_uuid=uuid.uuid4().bytes, central_uuid=uuid.uuid4().bytes
)
_ENGAGEMENT = parse_engagement(engagement_text(VALID))


def _session() -> ReaderSession:
    """A reader session the holder has opened (so a real answer would decrypt)."""
    session = ReaderSession.start(_ENGAGEMENT, max_response_bytes=65_536)
    HolderSession(_KEY, VALID).open(session.establishment())
    return session


SESSION_TEMPLATE = _session()


def _engagement(text: str) -> None:
    with contextlib.suppress(Rejection):
        choose_ble(parse_engagement(text))


def _receive(message: bytes) -> None:
    session = ReaderSession(
        _ENGAGEMENT.e_device_key,
        SESSION_TEMPLATE.e_reader_key,
        SESSION_TEMPLATE.transcript,
        SESSION_TEMPLATE.device_request,
        max_response_bytes=65_536,
    )
    reply = session.receive(message)
    assert (reply.response is None) != (reply.reason is None)


def _record(data: bytes, why: str, directory: str | None) -> None:
    if directory is None:
        return
    path = Path(directory) / f"engagement-{why}-{hashlib.sha256(data).hexdigest()[:16]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _cost(run: object, arg: object) -> float:
    start = time.process_time()
    run(arg)  # type: ignore[operator]
    return time.process_time() - start


def check(data: bytes, run: object, arg: object) -> None:
    try:
        spent = _cost(run, arg)
    except BaseException:
        _record(data, "raised", SEEDS)
        raise
    if spent > BUDGET_S and min(_cost(run, arg) for _ in range(3)) > BUDGET_S:
        _record(data, "slow", CANDIDATES)


def overwrite(body: bytes) -> bytes:
    """``VALID`` with fuzzer bytes written at fuzzer positions (offset, length, data)."""
    out = bytearray(VALID)
    provider = atheris.FuzzedDataProvider(body)
    while provider.remaining_bytes() > 2:
        at = provider.ConsumeIntInRange(0, len(out) - 1)
        chunk = provider.ConsumeBytes(provider.ConsumeIntInRange(1, 8))
        out[at : at + len(chunk)] = chunk
    return bytes(out[: provider.ConsumeIntInRange(1, len(out))] if body else out)


def _text(raw: bytes) -> str:
    return "mdoc:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 0:
        check(data, _engagement, _text(body))
    elif mode == 1:
        check(data, _engagement, _text(overwrite(body)))
    elif mode == 2:
        check(data, _engagement, "mdoc:" + body.decode("utf-8", "replace"))
    else:
        check(data, _receive, body)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
