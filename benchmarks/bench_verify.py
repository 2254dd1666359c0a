"""Verifications per second on one core beside the bare signature check (issue 2, 9).

The bare rate is cryptography's own verify over the same Sig_structure with a
pre-built DER signature (ES256) - the floor no verifier can beat. The LC1 path is the
whole ``verify`` from QR text to verdict; LP1 adds the holder signature, so its
reference is the bare rate of two signature checks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, paired_rates, print_table, row, save
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from appliance.core.credential.lc1 import PROFILE
from appliance.core.verifier import Checkpoint, verify
from appliance.tools.holder import cose_key, present
from appliance.tools.issuer import generate_key


def _bare(key, message: bytes, signature: bytes, with_der: bool = False):
    """cryptography's verify alone; ``with_der`` adds the raw r||s -> DER step that any
    COSE ES256 check with cryptography must take."""
    if key.alg == "EdDSA":
        pub = key.private_key.public_key()
        return lambda: pub.verify(signature, message)
    pub = key.private_key.public_key()
    algo = ec.ECDSA(hashes.SHA256())
    if with_der:

        def check() -> None:
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            pub.verify(der, message, algo)

        return check
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    return lambda: pub.verify(der, message, algo)


def run() -> list[Row]:
    from support import NOW, World

    world = World()
    trust = world.trust()
    checkpoint = Checkpoint(check_staleness=False)
    rows: list[Row] = []
    for key in (world.es256, world.eddsa):
        text = world.issue(key)
        opened = PROFILE.open(text)
        tbs, sig = opened.sign1.to_be_signed(), opened.sign1.signature
        assert str(verify(text, trust, NOW, checkpoint=checkpoint).reason) == "OK"
        holder = generate_key(key.alg)
        cred = world.issue(key, holder_cose_key=cose_key(holder.private_key.public_key()))
        lp1 = present(cred, holder, NOW)
        assert str(verify(lp1, trust, NOW, checkpoint=checkpoint).reason) == "OK"
        bare, bare_der, full, live = paired_rates(
            [
                _bare(key, tbs, sig),
                _bare(key, tbs, sig, with_der=True),
                lambda t=text: verify(t, trust, NOW, checkpoint=checkpoint),
                lambda t=lp1: verify(t, trust, NOW, checkpoint=checkpoint),
            ]
        )
        rows.append(row(f"bare signature check {key.alg}", bare, "/s", "cryptography"))
        note = f"{100 * full / bare:.0f}% of bare; target >= 75%"
        if key.alg == "ES256":
            rows.append(
                row(
                    "bare ES256 check incl. r||s -> DER",
                    bare_der,
                    "/s",
                    "the least a COSE ES256 check with cryptography does",
                )
            )
            note += f"; {100 * full / bare_der:.0f}% of bare incl. DER"
        rows.append(row(f"LC1 verify {key.alg} ({len(text)} chars)", full, "/s", note))
        rows.append(
            row(
                f"LP1 verify {key.alg}+{holder.alg}",
                live,
                "/s",
                f"{100 * live / (bare / 2):.0f}% of two bare checks; target >= 40%",
            )
        )
    rows.append(import_time_row())
    return rows


def import_time_row() -> Row:
    """Cumulative import time of the verifier as reported by ``python -X importtime``."""
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import appliance.core.verifier, appliance.core.credential.registry as r; r.profiles()",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() in (
            "appliance.core.verifier",
            "appliance.core.credential.lp1",
        ):
            total += int(parts[1].strip())
    return row("import time verifier + profiles", total / 1000, "ms", "python -X importtime")


if __name__ == "__main__":
    result = run()
    print_table("Verifier throughput (one core)", result)
    print(f"\nwritten to {save('verify', result)}")
