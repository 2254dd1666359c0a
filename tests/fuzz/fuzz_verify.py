"""atheris fuzz harness over the whole ``verify`` path.

Short run (CI, via tests/test_fuzz.py):  python tests/fuzz/fuzz_verify.py -runs=20000
Release run (documented in README):     make fuzz   (one hour, -max_total_time=3600)

Any exception escaping ``verify`` is a bug: the core returns verdicts, it never raises.
Inputs are mutated both as raw text and as the Base45 of mutated COSE, so the fuzzer
reaches the CBOR, COSE and claims layers, not only the outer decoders.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from appliance.credential.base45 import b45encode
    from appliance.verifier import Checkpoint, verify

from support import NOW, World

WORLD = World()
WORLD.editor.set_status("https://status.example/1", 5, 1)
TRUST = WORLD.trust()
CHECKPOINT = Checkpoint(check_staleness=False)


def one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 0:
        text = body.decode("utf-8", "replace")
    elif mode == 1:
        text = "LC1:" + b45encode(zlib.compress(body))
    elif mode == 2:
        text = "LP1:" + b45encode(zlib.compress(body))
    else:
        text = "LC1:" + b45encode(body)
    verify(text, TRUST, NOW, checkpoint=CHECKPOINT)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
