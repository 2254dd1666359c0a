"""HC1 and SHC verifications per second on one core, beside LC1 (issue 8).

Each path is the whole ``verify`` from QR text to verdict against a trust snapshot that
holds the signer's key: LC1 (ES256, the project's own), HC1 from the EU dgc-testdata suite
(ES256, PS256 with 2048- and 3072-bit keys) and the SMART Health Cards example 00 (ES256,
JWKS key). Rates are measured interleaved (``common.paired_rates``) so the ratios hold
under other load.

Run from the repository root: ``.venv/bin/python benchmarks/bench_interop.py``. Prints a
table and writes benchmarks/results/interop.json.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import Row, paired_rates, print_table, row, save
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from appliance.core.verifier import Checkpoint, verify
from appliance.trust.source import compute_kid, snapshot_from_document

SHARED = Path(os.environ.get("APPLIANCE_SHARED_DATA", REPO.parent / "shared" / "data"))
DGC = SHARED / "vectors/dgc-testdata/upstream/common/2DCode/raw"
SHC = SHARED / "vectors/smart-health-cards/upstream/examples"
CHECK = Checkpoint(check_staleness=False)

HC1_CASES = (
    ("CO3", "HC1 verify ES256"),
    ("CO1", "HC1 verify PS256 2048-bit"),
    ("CO2", "HC1 verify PS256 3072-bit"),
)


def _hc1_case(name: str):
    case = json.loads((DGC / f"{name}.json").read_text("utf-8-sig"))
    cert = case["TESTCTX"]["CERTIFICATE"]
    der = base64.b64decode(cert)
    public_key = x509.load_der_x509_certificate(der).public_key()
    alg = "PS256" if isinstance(public_key, rsa.RSAPublicKey) else "ES256"
    doc = {
        "issuers": [
            {
                "iss": "AT",
                "keys": [{"kid": compute_kid(der).hex(), "alg": alg, "certificate": cert}],
            }
        ]
    }
    now = datetime.fromisoformat(
        case["TESTCTX"]["VALIDATIONCLOCK"].replace("Z", "+00:00")
    ).timestamp()
    return case["PREFIX"], snapshot_from_document(doc), now


def _shc_case():
    jwks = json.loads((SHC / "issuer/.well-known/jwks.json").read_text())
    doc = {
        "issuers": [
            {
                "iss": "https://spec.smarthealth.cards/examples/issuer",
                "keys": [{"kid": k["kid"], "alg": "ES256", "jwk": k} for k in jwks["keys"]],
            }
        ]
    }
    text = (SHC / "example-00-f-qr-code-numeric-value-0.txt").read_text().strip()
    return text, snapshot_from_document(doc), 1_700_000_000.0


def run() -> list[Row]:
    from support import NOW, World

    world = World()
    lc1_text = world.issue(world.es256)
    cases = [("LC1 verify ES256", lc1_text, world.trust(), NOW)]
    if not DGC.is_dir() or not SHC.is_dir():
        raise SystemExit(f"shared test data not found under {SHARED}")
    for name, label in HC1_CASES:
        cases.append((label, *_hc1_case(name)))
    cases.append(("SHC verify ES256", *_shc_case()))
    for label, text, trust, now in cases:
        reason = verify(text, trust, now, checkpoint=CHECK).reason
        assert str(reason) == "OK", (label, reason)
    rates = paired_rates(
        [
            (lambda t=text, s=trust, n=now: verify(t, s, n, checkpoint=CHECK))
            for _label, text, trust, now in cases
        ]
    )
    lc1 = rates[0]
    rows = []
    for (label, text, _trust, _now), rate in zip(cases, rates, strict=True):
        notes = f"{len(text)} chars" + (
            "" if label.startswith("LC1") else f"; {100 * rate / lc1:.0f}% of LC1"
        )
        rows.append(row(label, rate, "/s", notes))
    return rows


if __name__ == "__main__":
    result = run()
    print_table("Interop profiles: verifications per second (one core)", result)
    print(f"\nwritten to {save('interop', result)}")
