"""Format test vectors written by others (../shared/data/vectors), through our own code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from appliance.core.credential.base45 import b45decode, b45encode
from appliance.core.credential.cose import ALG_NAMES, HEADER_ALG, parse_sign1
from appliance.core.credential.signature import verify_signature
from appliance.core.errors import Base45Error, CoseError
from appliance.trust.revocation import StatusList
from appliance.trust.source import snapshot_from_document


@pytest.fixture(scope="module")
def vectors(shared_data: Path) -> Path:
    return shared_data / "vectors"


# --- RFC 9285 Base45 -----------------------------------------------------------------------


def test_base45_rfc_vectors(vectors: Path) -> None:
    doc = json.loads((vectors / "rfc9285-base45" / "base45_vectors.json").read_text())
    assert doc["valid"] and doc["invalid"]
    for case in doc["valid"]:
        data = bytes.fromhex(case["bytes_hex"])
        assert b45encode(data) == case["base45"], case
        assert b45decode(case["base45"]) == data, case
    for case in doc["invalid"]:
        with pytest.raises(Base45Error):
            b45decode(case["base45"].encode("utf-8"))


# --- cose-wg Sign1 examples (ES256 on P-256, EdDSA on Ed25519) -------------------------------

_STRICT_DEVIATIONS = {
    # alg only in the unprotected header with protected h'A0': a strict verifier that
    # requires a protected alg (as LC1 does) refuses it; cose-wg/Examples issue #107.
    "sign1-tests/sign-pass-01.json": "alg must be protected (cose-wg/Examples #107)",
}
_NOT_APPLICABLE = {
    "sign1-tests/sign-pass-02.json": "external AAD: LC1's Sig_structure has none",
}


def _public_key(jwk: dict):
    def b(name: str) -> bytes:
        if name + "_hex" in jwk:
            return bytes.fromhex(jwk[name + "_hex"])
        return base64.urlsafe_b64decode(jwk[name] + "=" * (-len(jwk[name]) % 4))

    if jwk["kty"] == "OKP":
        return ed25519.Ed25519PublicKey.from_public_bytes(b("x"))
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(b("x"), "big"), int.from_bytes(b("y"), "big"), ec.SECP256R1()
    ).public_key()


def _cose_cases(vectors: Path) -> list[tuple[str, dict]]:
    root = vectors / "cose-wg-examples" / "upstream"
    out = []
    for path in sorted(root.glob("*/*.json")):
        doc = json.loads(path.read_text())
        sign0 = doc.get("input", {}).get("sign0")
        if not sign0:
            continue
        key = sign0["key"]
        if (sign0["alg"], key.get("crv")) in (("ES256", "P-256"), ("EdDSA", "Ed25519")):
            out.append((str(path.relative_to(root)), doc))
    return out


def _verify_cose(data: bytes, public_key, alg_name: str) -> bool:
    try:
        sign1 = parse_sign1(data)
    except CoseError:
        return False
    if ALG_NAMES.get(sign1.protected_map.get(HEADER_ALG)) != alg_name:
        return False
    return verify_signature(alg_name, public_key, sign1.to_be_signed(), sign1.signature)


def test_cose_wg_sign1_examples(vectors: Path) -> None:
    cases = _cose_cases(vectors)
    assert len(cases) >= 12
    checked = 0
    for name, doc in cases:
        if name in _NOT_APPLICABLE:
            continue
        sign0 = doc["input"]["sign0"]
        ok = _verify_cose(
            bytes.fromhex(doc["output"]["cbor"]), _public_key(sign0["key"]), sign0["alg"]
        )
        expected = not doc.get("fail", False)
        if name in _STRICT_DEVIATIONS:
            assert ok is False, name
            continue
        assert ok is expected, name
        checked += 1
    assert checked >= 10


def test_cose_wg_to_be_signed_matches(vectors: Path) -> None:
    for name, doc in _cose_cases(vectors):
        if name in _NOT_APPLICABLE or name in _STRICT_DEVIATIONS or doc.get("fail"):
            continue
        sign1 = parse_sign1(bytes.fromhex(doc["output"]["cbor"]))
        assert sign1.to_be_signed().hex().upper() == doc["intermediates"]["ToBeSign_hex"], name


# --- RFC 8392 CWT ----------------------------------------------------------------------------


def test_rfc8392_signed_cwt(vectors: Path) -> None:
    doc = json.loads((vectors / "rfc8392-cwt" / "rfc8392_appendix_a.json").read_text())
    key = cbor2.loads(bytes.fromhex(doc["cose_key_A_2_3_hex"]))
    public_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(key[-2], "big"), int.from_bytes(key[-3], "big"), ec.SECP256R1()
    ).public_key()
    token = bytes.fromhex(doc["signed_cwt_A_3_hex"])
    sign1 = parse_sign1(token)
    assert sign1.to_be_signed().hex() == doc["signed_cwt_A_3_expected"]["to_be_signed_hex"].lower()
    assert verify_signature("ES256", public_key, sign1.to_be_signed(), sign1.signature)
    claims = cbor2.loads(sign1.payload)
    assert claims[1] == "coap://as.example.com" and claims[4] == 1444064944
    assert claims[7] == bytes.fromhex("0b71")
    for case in doc["derived_negative"]:
        assert case["expected_signature_valid"] is False
        bad = parse_sign1(bytes.fromhex(case["cwt_hex"]))
        assert not verify_signature("ES256", public_key, bad.to_be_signed(), bad.signature)
    # A.4 is COSE_Mac0 under the CWT tag: not a Sign1.
    with pytest.raises(CoseError):
        parse_sign1(bytes.fromhex(doc["maced_cwt_A_4_hex"]))


# --- Token Status List -----------------------------------------------------------------------


def test_status_list_vectors(vectors: Path) -> None:
    doc = json.loads(
        (vectors / "ietf-oauth-status-list" / "status_list_encoding_vectors.json").read_text()
    )
    assert len(doc["vectors"]) >= 6
    for vector in doc["vectors"]:
        enc = vector["json_encoding"]
        uri = "https://example.com/statuslists/1"
        trust = snapshot_from_document(
            {"status_lists": [{"uri": uri, "bits": enc["bits"], "lst": enc["lst"]}]}
        )
        lst: StatusList = trust.status_lists[uri]
        assert lst.bits == int(vector["bits"])
        statuses = {int(k): v for k, v in vector["statuses"].items()}
        for index, value in statuses.items():
            assert lst.status(index) == value, (vector["name"], index)
        size = int(vector["size_entries"])
        for index in (i for i in (0, 1, 2, size // 3, size - 1) if i not in statuses):
            assert lst.status(index) == 0, (vector["name"], index)
        if "uncompressed_hex" in vector:
            assert len(lst) == len(bytes.fromhex(vector["uncompressed_hex"])) * 8 // lst.bits


def test_decoder_reuse_carries_no_state_between_inputs() -> None:
    """loads_exact re-uses one cbor2 decoder per thread: a shared reference (tag 29) must
    not resolve against a value shared (tag 28) by an earlier input."""
    from appliance.core.credential.cose import loads_exact

    with pytest.raises(CoseError):  # the pre-scan refuses shared references outright
        loads_exact(cbor2.dumps(cbor2.CBORTag(28, [1, 2, 3])))
    assert loads_exact(cbor2.dumps([1, 2, 3])) == [1, 2, 3]
    with pytest.raises(CoseError):
        loads_exact(cbor2.dumps(cbor2.CBORTag(29, 0)))
    with pytest.raises(CoseError):
        loads_exact(b"\x81" * 17 + b"\x00")  # depth limit still applies
    with pytest.raises(CoseError):
        loads_exact(b"\x00\x00")  # trailing bytes
