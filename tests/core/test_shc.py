"""SMART Health Cards: the published examples verify with their issuer's JWKS."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from appliance.core.credential import shc
from appliance.core.errors import Rejection, TrustDataError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint, verify
from appliance.trust.source import snapshot_from_document

EXAMPLES = Path("vectors/smart-health-cards/upstream/examples")
ISSUER = "https://spec.smarthealth.cards/examples/issuer"
# Not the tests' NOW (2027): the published examples are valid only in their own window.
SHC_TIME = 1_700_000_000.0  # 2023-11-14, after every example's nbf
CHECK = Checkpoint(check_staleness=False)


@pytest.fixture(scope="module")
def examples(shared_data: Path) -> Path:
    path = shared_data / EXAMPLES
    if not path.is_dir():
        pytest.skip(f"SMART Health Cards examples not found at {path}")
    return path


def qr_texts(examples: Path, n: str) -> list[str]:
    return [
        p.read_text().strip()
        for p in sorted(examples.glob(f"example-{n}-f-qr-code-numeric-value-*.txt"))
    ]


def trust_doc(examples: Path, revoked_rids: tuple[str, ...] = ()) -> dict[str, Any]:
    jwks = json.loads((examples / "issuer/.well-known/jwks.json").read_text())
    keys = [{"kid": k["kid"], "alg": "ES256", "jwk": k} for k in jwks["keys"]]
    return {
        "issuers": [{"iss": ISSUER, "name": "SMART example issuer", "keys": keys}],
        "revoked": {"cti_sha256": [hashlib.sha256(r.encode()).hexdigest() for r in revoked_rids]},
    }


@pytest.mark.parametrize("n", ["00", "01", "02", "03"])
def test_examples_decode_to_the_published_jws_and_payload(examples: Path, n: str) -> None:
    jws = shc.numeric_to_jws(" ".join(qr_texts(examples, n)))
    assert jws == (examples / f"example-{n}-d-jws.txt").read_text().strip()
    card = json.loads((examples / f"example-{n}-e-file.smart-health-card").read_text())
    assert card["verifiableCredential"] == [jws]
    envelope, _kid = shc.open_jws(jws)
    minified = (examples / f"example-{n}-c-jws-payload-minified.json").read_bytes().strip()
    assert shc.inflate_raw(envelope.payload) == minified


@pytest.mark.parametrize("n", ["00", "01", "02", "03"])
def test_examples_verify_with_their_keys(examples: Path, n: str) -> None:
    text = " ".join(qr_texts(examples, n))
    verdict = verify(text, snapshot_from_document(trust_doc(examples)), SHC_TIME, checkpoint=CHECK)
    assert (verdict.outcome, verdict.reason) == (Outcome.PASS, Reason.OK)
    out = verdict.to_json()
    assert out["profile"] == "SHC" and out["iss"] == ISSUER
    assert verdict.credential is not None and (verdict.credential.nm or n == "02")
    expected_kid = (
        "EBKOr72QQDcTBUuVzAzkfBTGew0ZA16GuWty64nS-sw"
        if n == "01"
        else "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"
    )
    assert verdict.kid == shc.b64url_decode(expected_kid)


def test_example_03_is_revoked_by_its_rid(examples: Path) -> None:
    # The published CRL lists "vwAjHdarZuc.1687450765"; example 03's nbf (1687450764.657)
    # is before that timestamp, so the card is revoked. The trust source carries the rid.
    trust = snapshot_from_document(trust_doc(examples, ("vwAjHdarZuc",)))
    for n, reason in (("03", Reason.REVOKED), ("00", Reason.OK), ("02", Reason.OK)):
        text = " ".join(qr_texts(examples, n))
        assert verify(text, trust, SHC_TIME, checkpoint=CHECK).reason is reason


def test_card_fields(examples: Path) -> None:
    verdict = verify(
        qr_texts(examples, "00")[0],
        snapshot_from_document(trust_doc(examples)),
        SHC_TIME,
        checkpoint=CHECK,
    )
    cred = verdict.credential
    assert cred is not None
    assert (cred.nm, cred.dob, cred.no, cred.typ) == (
        "Anyperson, John B.",
        "1951-01-20",
        "MKyCxh7p6uQ",
        "health-card",
    )
    assert cred.nbf == pytest.approx(1687450764.656)
    assert verdict.to_json()["exp"] == "9999-12-31T23:59:59Z"
    assert ("immunization", "cvx:207 2021-01-01 lot 0000001 ABC General Hospital") in cred.ext


def test_multi_part_codes(examples: Path) -> None:
    trust = snapshot_from_document(trust_doc(examples))
    parts = qr_texts(examples, "02")
    assert len(parts) == 3
    assert verify(" ".join(reversed(parts)), trust, SHC_TIME, checkpoint=CHECK).reason is Reason.OK
    for text in (parts[0], " ".join(parts[:2]), " ".join([parts[0], *parts[:2]])):
        verdict = verify(text, trust, SHC_TIME, checkpoint=CHECK)
        assert (verdict.reason, verdict.profile) == (Reason.MALFORMED_ENCODING, "SHC")


def test_unknown_key_tampering_and_time(examples: Path) -> None:
    text = qr_texts(examples, "00")[0]
    empty = snapshot_from_document({})
    assert verify(text, empty, SHC_TIME, checkpoint=CHECK).reason is Reason.UNKNOWN_ISSUER
    trust = snapshot_from_document(trust_doc(examples))
    jws = shc.numeric_to_jws(text)
    header, payload, signature = jws.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BA")
    assert (
        verify(
            to_numeric(f"{header}.{payload}.{flipped}"), trust, SHC_TIME, checkpoint=CHECK
        ).reason
        is Reason.BAD_SIGNATURE
    )
    assert verify(text, trust, 1_600_000_000, checkpoint=CHECK).reason is Reason.NOT_YET_VALID
    # A trust source naming another issuer URL for the same key: ISSUER_MISMATCH.
    doc = trust_doc(examples)
    doc["issuers"][0]["iss"] = "https://other.example/issuer"
    verdict = verify(text, snapshot_from_document(doc), SHC_TIME, checkpoint=CHECK)
    assert verdict.reason is Reason.ISSUER_MISMATCH


def to_numeric(jws: str) -> str:
    return shc.PREFIX + "".join(f"{ord(c) - 45:02d}" for c in jws)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("shc:/", Reason.MALFORMED_ENCODING),
        ("shc:/123", Reason.MALFORMED_ENCODING),
        ("shc:/99", Reason.MALFORMED_ENCODING),
        ("shc:/1/2/00", Reason.MALFORMED_ENCODING),
        ("shc:/3/2/00 shc:/1/2/00", Reason.MALFORMED_ENCODING),
        ("shc:/" + "0" * 20_000, Reason.TOO_LARGE),
        (to_numeric("a.b"), Reason.MALFORMED_STRUCTURE),
        (to_numeric("e30.e30.e30"), Reason.UNSUPPORTED_ALGORITHM),
    ],
)
def test_malformed_inputs(text: str, reason: Reason) -> None:
    verdict = verify(text, snapshot_from_document({}), SHC_TIME)
    assert (verdict.outcome, verdict.reason, verdict.profile) == (Outcome.FAIL, reason, "SHC")


def test_inflate_is_capped() -> None:
    bomb = zlib.compressobj(wbits=-15)
    data = bomb.compress(b"\0" * 1_000_000) + bomb.flush()
    with pytest.raises(Rejection) as e:
        shc.inflate_raw(data)
    assert e.value.reason is Reason.TOO_LARGE


def test_trust_source_jwk_rules(examples: Path) -> None:
    jwk = json.loads((examples / "issuer/.well-known/jwks.json").read_text())["keys"][0]

    def load(entry: dict[str, Any]) -> Any:
        return snapshot_from_document({"issuers": [{"iss": ISSUER, "keys": [entry]}]})

    key = next(iter(load({"kid": jwk["kid"], "alg": "ES256", "jwk": jwk}).keys))
    assert key.not_before == 0 and key.certificate is None
    for bad in ({**jwk, "d": "AAAA"}, {**jwk, "crv": "P-384"}, {**jwk, "x": jwk["y"]}):
        with pytest.raises(TrustDataError):
            load({"kid": jwk["kid"], "alg": "ES256", "jwk": bad})
    with pytest.raises(TrustDataError, match="kid does not match"):
        load({"kid": "A" * 43, "alg": "ES256", "jwk": {k: v for k, v in jwk.items() if k != "kid"}})
