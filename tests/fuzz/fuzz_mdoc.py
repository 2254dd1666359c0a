"""atheris fuzz harness over the mdoc verifier (spec mdl-reader s.1, s.4; issue 23).

Short run (CI, via tests/mdoc/test_mdoc_fuzz.py):  python tests/fuzz/fuzz_mdoc.py -runs=5000
Long run:  FUZZ_STRUCTURED=1 python tests/fuzz/fuzz_mdoc.py .fuzz/mdoc -max_total_time=3600

Inputs reach ``verify_mdoc`` three ways: raw bytes as a DeviceResponse; a valid response of
a trusted test issuer with bytes overwritten where the fuzzer says (so the structure mostly
holds and the checks behind the signatures are reached); raw bytes as a SessionData message.
With ``FUZZ_STRUCTURED=1`` a further mode drives the structure-aware generator
(tests/fuzz/mdoc_structure.py: hostile CBOR trees in every part, re-signed where the issuer
signs) through hypothesis's ``fuzz_one_input``. Any exception escaping the verifier is a
bug, and so is its last-resort net firing (it logs an error). Each input's CPU time is held
to ``BUDGET_S`` as for the other formats (best of three, written to ``$FUZZ_CANDIDATES_DIR``
for confirm_seeds.py); a crash or net input goes to ``$FUZZ_SEEDS_DIR``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import atheris
from hypothesis import HealthCheck, given, settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "mdoc"))

with atheris.instrument_imports():
    from appliance.core.credential.mdoc import session_crypto as sc
    from appliance.core.credential.mdoc.verify import verify_mdoc, verify_mdoc_session_data

from issuer_support import NOW as ISSUED_AT  # noqa: E402
from mdoc_cases import AUTHORING, World  # noqa: E402
from mdoc_structure import responses  # noqa: E402

BUDGET_S = 0.005
SEEDS = os.environ.get("FUZZ_SEEDS_DIR")
CANDIDATES = os.environ.get("FUZZ_CANDIDATES_DIR")
STRUCTURED = os.environ.get("FUZZ_STRUCTURED") == "1"
WORLD = World()
TRUST = WORLD.trust()
VALID = WORLD.response()
NOW = ISSUED_AT.timestamp()
E_DEVICE = WORLD.holder_key.public_key()  # any key: the SessionData mode fails to decrypt


class _Net(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.fired = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.fired += 1


NET = _Net()
logging.getLogger("appliance.core.credential.mdoc.verify").addHandler(NET)


def _run(data: bytes, session_data: bool) -> None:
    common = {
        "session_transcript_bytes": WORLD.session.transcript,
        "e_reader_key": WORLD.session.reader_key,
        "trust": TRUST,
        "now": NOW,
        "checkpoint": AUTHORING,
    }
    if session_data:
        verify_mdoc_session_data(data, e_device_key=E_DEVICE, **common)  # type: ignore[arg-type]
    else:
        verify_mdoc(data, **common)  # type: ignore[arg-type]


def _cost(data: bytes, session_data: bool) -> float:
    start = time.process_time()
    _run(data, session_data)
    return time.process_time() - start


def _record(data: bytes, why: str, directory: str | None) -> None:
    if directory is None:
        return
    path = Path(directory) / f"mdoc-{why}-{hashlib.sha256(data).hexdigest()[:16]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def check(data: bytes, session_data: bool = False) -> None:
    fired = NET.fired
    try:
        spent = _cost(data, session_data)
    except BaseException:
        _record(data, "raised", SEEDS)
        raise
    if NET.fired != fired:
        _record(data, "net", SEEDS)
        raise AssertionError("the mdoc verifier's last-resort net caught a fault")
    if spent > BUDGET_S and min(_cost(data, session_data) for _ in range(3)) > BUDGET_S:
        _record(data, "slow", CANDIDATES)


@settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(response=responses(WORLD))
def structured(response: bytes) -> None:
    check(response)


def overwrite(body: bytes) -> bytes:
    """``VALID`` with fuzzer bytes written at fuzzer positions (2-byte offset, length, data)."""
    out = bytearray(VALID)
    provider = atheris.FuzzedDataProvider(body)
    while provider.remaining_bytes() > 3:
        at = provider.ConsumeIntInRange(0, len(out) - 1)
        chunk = provider.ConsumeBytes(provider.ConsumeIntInRange(1, 16))
        out[at : at + len(chunk)] = chunk
    return bytes(out)


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % (4 if STRUCTURED else 3), data[1:]
    if mode == 3:
        structured.hypothesis.fuzz_one_input(body)
    elif mode == 2:
        check(body, session_data=True)
    elif mode == 1:
        check(overwrite(body))
    else:
        check(body)


def main() -> None:
    assert sc.DEFAULT_MAX_SESSION_DATA > 0  # the session layer is instrumented too
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
