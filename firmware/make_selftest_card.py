"""Generate the self-test card: ``appliance selftest`` decodes and verifies it.

Writes, next to this script: ``selftest-card.png`` and ``selftest-card.pdf`` (print at
100 %, hold 15-30 cm from the camera) and ``selftest-card.json`` (the QR text and the
one-key trust source it verifies against). The signing key is made here and thrown away:
the card verifies only against its own trust source, never against a fleet's trust data,
so a printed card can never pass at a real checkpoint.

    .venv/bin/python firmware/make_selftest_card.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import segno

from appliance.tools.issuer import Claims, LicenceData, generate_key, issue
from appliance.trust.editor import TrustSourceEditor

HERE = Path(__file__).resolve().parent
ISS = "TH-SELFTEST"
YEAR_S = 365 * 86400


def main(out: Path = HERE) -> Path:
    key = generate_key("ES256")
    now = int(time.time())
    claims = Claims(
        iss=ISS,
        licence=LicenceData(typ="TEST", no="SELFTEST-0001", nm="Self-test card"),
        iat=now - 86400,
        exp=now + 30 * YEAR_S,
    )
    text = issue(key, claims)
    editor = TrustSourceEditor()
    editor.add_key(
        ISS,
        key.trust_entry(not_after="2060-01-01T00:00:00Z"),
        "Appliance self-test card (not an authority)",
    )
    card = out / "selftest-card.json"
    card.write_text(json.dumps({"text": text, "trust": editor.doc}, indent=1) + "\n")
    qr = segno.make(text, error="m", micro=False)
    qr.save(out / "selftest-card.png", scale=6, border=4)
    qr.save(out / "selftest-card.pdf", scale=6, border=4)
    return card


if __name__ == "__main__":
    print(main())
