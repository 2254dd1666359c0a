"""atheris fuzz harness over the whole ``verify`` path.

Short run (CI, via tests/fuzz/test_fuzz.py):  python tests/fuzz/fuzz_verify.py -runs=20000
Release run (documented in README):     make fuzz   (one hour, -max_total_time=3600)

Any exception escaping ``verify`` is a bug, and so is the last-resort net in ``verify``
firing (it logs an error): the core returns verdicts from its own checks. Half the inputs
are byte-level: raw text, or the Base45 of mutated COSE, so the fuzzer reaches the CBOR,
COSE and claims layers. With ``FUZZ_STRUCTURED=1`` (``make fuzz``) the other half drive
the structure-aware generator (tests/fuzz/structure.py: hostile CBOR trees in signed
COSE_Sign1 envelopes, for every prefix) through hypothesis's ``fuzz_one_input``; it runs
about 400 inputs/s against 30,000 for the byte level, so the short CI run leaves it out
(tests/security/test_sec_structure_fuzz.py runs it briefly, and the generator itself).

Each verification's CPU time (``time.process_time``) is measured. An input that raises
or reaches the net is written to ``$FUZZ_SEEDS_DIR`` (``make fuzz`` sets tests/fuzz/seeds)
as a regression seed, which tests/security/test_sec_structure_fuzz.py replays. An input
over ``BUDGET_S`` here (best of three) is only a candidate, written to
``$FUZZ_CANDIDATES_DIR``: atheris' coverage instrumentation slows the Python code several
times, so confirm_seeds.py re-measures candidates uninstrumented and keeps as seeds those
still over the budget. Without the variables nothing is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
import zlib
from pathlib import Path

import atheris
from hypothesis import HealthCheck, given, settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

with atheris.instrument_imports():
    from appliance.core.credential.base45 import b45encode
    from appliance.core.verifier import Checkpoint, verify

from structure import qr_texts  # noqa: E402
from support import NOW, World  # noqa: E402

BUDGET_S = 0.005
SEEDS = os.environ.get("FUZZ_SEEDS_DIR")
CANDIDATES = os.environ.get("FUZZ_CANDIDATES_DIR")
STRUCTURED = os.environ.get("FUZZ_STRUCTURED") == "1"
WORLD = World()
WORLD.editor.set_status("https://status.example/1", 5, 1)
TRUST = WORLD.trust()
CHECKPOINT = Checkpoint(check_staleness=False)


class _Net(logging.Handler):
    """Counts the verifier's last-resort net firing (an error record)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.fired = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.fired += 1


NET = _Net()
logging.getLogger("appliance.core.verifier").addHandler(NET)


def _cost(text: str) -> float:
    start = time.process_time()
    verify(text, TRUST, NOW, checkpoint=CHECKPOINT)
    return time.process_time() - start


def _record(text: str, why: str, directory: str | None) -> None:
    if directory is None:
        return
    name = f"{why}-{hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()[:16]}"
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "replace"))


def check(text: str) -> None:
    """Verify one text within the CPU budget, without the net; record it if not."""
    fired = NET.fired
    try:
        spent = _cost(text)
    except BaseException:
        _record(text, "raised", SEEDS)
        raise
    if NET.fired != fired:
        _record(text, "net", SEEDS)
        raise AssertionError("verify's last-resort net caught a fault: a decoding bug")
    if spent > BUDGET_S and min(_cost(text) for _ in range(3)) > BUDGET_S:
        _record(text, "slow", CANDIDATES)


@settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=qr_texts(WORLD.es256))
def structured(text: str) -> None:
    check(text)


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % (8 if STRUCTURED else 4), data[1:]
    if mode >= 4:
        structured.hypothesis.fuzz_one_input(body)
        return
    if mode == 0:
        text = body.decode("utf-8", "replace")
    elif mode == 1:
        text = "LC1:" + b45encode(zlib.compress(body))
    elif mode == 2:
        text = "LP1:" + b45encode(zlib.compress(body))
    else:
        text = "LC1:" + b45encode(body)
    check(text)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
