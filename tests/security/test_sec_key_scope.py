"""Keys are scoped to their credential format (spec LC1 s.4 ``profiles``).

Attacks replayed: an EU DCC document signer (a ``certificate`` key, trusted for HC1)
signs an LC1 driving licence; a SMART Health Cards issuer key (a ``jwk`` key, trusted for
SHC) signs an HC1. Both passed while every format shared one kid-to-key map.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cli_support import issue_args
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support import ISS, NOW, World, claims, cose, text

from appliance.cli import main
from appliance.core.errors import TrustDataError
from appliance.core.verifier import Checkpoint, Verdict, verify
from appliance.tools.holder import cose_key, present
from appliance.tools.issuer import SigningKey, generate_key
from appliance.trust.source import compute_kid, snapshot_from_document

AUTHORING = Checkpoint(check_staleness=False)
DCC_ISS = "XX"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class CertKey:
    """An EU DCC style document signer: a self-signed P-256 certificate (kid over its DER)."""

    def __init__(self) -> None:
        self.signer = SigningKey("ES256", ec.generate_private_key(ec.SECP256R1()))
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.signer.private_key.public_key())
            .serial_number(7)
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2034, 1, 1, tzinfo=dt.UTC))
            .sign(self.signer.private_key, hashes.SHA256())
        )
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.kid = compute_kid(self.der)

    def entry(self, **extra: Any) -> dict[str, Any]:
        return {
            "kid": self.kid.hex(),
            "alg": "ES256",
            "certificate": base64.b64encode(self.der).decode(),
            **extra,
        }


class JwkKey:
    """A SMART Health Cards issuer key: a P-256 JWK whose kid is its RFC 7638 thumbprint."""

    def __init__(self) -> None:
        self.signer = SigningKey("ES256", ec.generate_private_key(ec.SECP256R1()))
        numbers = self.signer.private_key.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        self.kid = hashlib.sha256(
            json.dumps(self.jwk, separators=(",", ":"), sort_keys=True).encode()
        ).digest()

    def entry(self, **extra: Any) -> dict[str, Any]:
        return {
            "kid": _b64url(self.kid),
            "alg": "ES256",
            "jwk": self.jwk,
            "not_before": "2024-01-01T00:00:00Z",
            "not_after": "2034-01-01T00:00:00Z",
            **extra,
        }


def trust_of(*issuers: tuple[str, list[dict[str, Any]]]) -> Any:
    return snapshot_from_document(
        {"issuers": [{"iss": iss, "keys": keys} for iss, keys in issuers]}
    )


def lc1_signed_by(signer: SigningKey, kid: bytes, **overrides: Any) -> str:
    """An LC1 licence whose COSE names ``kid`` and is signed by ``signer``."""
    return text(cose(signer, claims(**overrides).to_cbor(), protected={1: -7, 4: kid}))


def hc1_signed_by(signer: SigningKey, kid: bytes, iss: str = DCC_ISS) -> str:
    """A well-formed HC1 vaccination certificate signed by ``signer`` under ``kid``."""
    hcert = {
        "ver": "1.3.0",
        "nam": {"fn": "Muster", "fnt": "MUSTER"},
        "dob": "1990-01-02",
        "v": [
            {
                "ci": "URN:UVCI:01:XX:0001",
                "tg": "840539006",
                "dn": 2,
                "sd": 2,
                "dt": "2026-06-01",
                "co": "XX",
                "is": "XX Health",
            }
        ],
    }
    payload = cbor2.dumps({1: iss, 4: NOW + 86400, 6: NOW - 3600, -260: {1: hcert}})
    return text(cose(signer, payload, protected={1: -7, 4: kid}), prefix="HC1:")


def outcome(verdict: Verdict) -> tuple[str, str]:
    return str(verdict.outcome), str(verdict.reason)


def check(qr: str, trust: Any) -> tuple[str, str]:
    return outcome(verify(qr, trust, NOW, checkpoint=AUTHORING))


# --- the two attacks ----------------------------------------------------------------------


def test_dcc_document_signer_cannot_sign_a_driving_licence() -> None:
    dsc = CertKey()
    trust = trust_of((ISS, [dsc.entry()]))
    assert check(lc1_signed_by(dsc.signer, dsc.kid), trust) == ("FAIL", "UNKNOWN_ISSUER")
    # The same key still verifies the format it is trusted for.
    assert check(hc1_signed_by(dsc.signer, dsc.kid, ISS), trust) == ("PASS", "OK")


def test_dcc_document_signer_cannot_sign_a_presentation_licence() -> None:
    dsc, holder = CertKey(), generate_key("ES256")
    trust = trust_of((ISS, [dsc.entry()]))
    lc1 = lc1_signed_by(
        dsc.signer, dsc.kid, holder_cose_key=cose_key(holder.private_key.public_key())
    )
    assert check(present(lc1, holder, NOW), trust) == ("FAIL", "UNKNOWN_ISSUER")


def test_shc_issuer_key_cannot_sign_an_hc1() -> None:
    shc_key = JwkKey()
    trust = trust_of((DCC_ISS, [shc_key.entry()]))
    assert check(hc1_signed_by(shc_key.signer, shc_key.kid), trust) == ("FAIL", "UNKNOWN_ISSUER")


def test_licence_key_cannot_sign_an_hc1() -> None:
    world = World()
    trust = snapshot_from_document(
        world.editor.doc | {"issuers": [{**i, "iss": DCC_ISS} for i in world.editor.doc["issuers"]]}
    )
    qr = hc1_signed_by(world.es256, world.es256.kid)
    assert check(qr, trust) == ("FAIL", "UNKNOWN_ISSUER")


# --- explicit profiles -------------------------------------------------------------------


def test_explicit_profiles_widen_a_key_to_two_formats() -> None:
    dsc = CertKey()
    trust = trust_of((ISS, [dsc.entry(profiles=["LC1", "HC1"])]))
    assert check(lc1_signed_by(dsc.signer, dsc.kid), trust) == ("PASS", "OK")
    assert check(hc1_signed_by(dsc.signer, dsc.kid, ISS), trust) == ("PASS", "OK")
    shc_key = JwkKey()
    trust = trust_of((DCC_ISS, [shc_key.entry(profiles=["SHC", "HC1"])]))
    assert check(hc1_signed_by(shc_key.signer, shc_key.kid), trust) == ("PASS", "OK")


def test_explicit_profiles_narrow_a_licence_key() -> None:
    key, holder = generate_key("ES256"), generate_key("EdDSA")
    trust = trust_of((ISS, [key.trust_entry() | {"profiles": ["HC1"]}]))
    lc1 = lc1_signed_by(key, key.kid, holder_cose_key=cose_key(holder.private_key.public_key()))
    assert check(lc1, trust) == ("FAIL", "UNKNOWN_ISSUER")
    assert check(present(lc1, holder, NOW), trust) == ("FAIL", "UNKNOWN_ISSUER")
    assert check(hc1_signed_by(key, key.kid, ISS), trust) == ("PASS", "OK")


def test_lp1_licence_uses_the_lc1_keys() -> None:
    world, holder = World(), generate_key("ES256")
    lc1 = world.issue(holder_cose_key=cose_key(holder.private_key.public_key()))
    verdict = verify(present(lc1, holder, NOW), world.trust(), NOW, checkpoint=AUTHORING)
    assert (outcome(verdict), verdict.profile) == (("PASS", "OK"), "LP1")


def test_defaults_follow_the_key_form() -> None:
    licence_key, dsc, shc_key = generate_key("EdDSA"), CertKey(), JwkKey()
    trust = trust_of((ISS, [licence_key.trust_entry(), dsc.entry(), shc_key.entry()]))
    scopes = {fmt: set(trust.keys.by_format[fmt]) for fmt in ("LC1", "LP1", "HC1", "SHC")}
    assert scopes == {
        "LC1": {licence_key.kid},
        "LP1": {licence_key.kid},
        "HC1": {dsc.kid},
        "SHC": {shc_key.kid},
    }
    assert {k.kid: k.profiles for k in trust.keys} == {
        licence_key.kid: frozenset({"LC1"}),
        dsc.kid: frozenset({"HC1"}),
        shc_key.kid: frozenset({"SHC"}),
    }
    # A format without its own key set (a future profile) trusts no key at all.
    assert trust.keys.lookup("ZZ1", licence_key.kid) is None
    assert trust.keys.lookup("LP1", licence_key.kid) is not None


# --- refusing bad profiles -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        (["LC1", "XX9"], "unknown profile 'XX9'"),
        (["LP1"], "unknown profile 'LP1'"),
        ([], "profiles must be a non-empty list"),
        ("LC1", "profiles must be a non-empty list"),
        ([1], "profiles must be a non-empty list"),
    ],
)
def test_bad_profiles_refuse_the_source_naming_the_key(profiles: Any, message: str) -> None:
    key = generate_key("ES256")
    doc = {"issuers": [{"iss": ISS, "keys": [key.trust_entry() | {"profiles": profiles}]}]}
    where = f"issuers[0].keys[0] (kid {key.kid.hex()})"
    with pytest.raises(TrustDataError, match=re.escape(where) + ".*" + re.escape(message)):
        snapshot_from_document(doc)


def test_unknown_profile_exits_64(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    world = World()
    doc = copy.deepcopy(world.editor.doc)
    doc["issuers"][0]["keys"][0]["profiles"] = ["LC2"]
    bad = tmp_path / "trust.json"
    bad.write_text(json.dumps(doc))
    assert main(["verify", "--trust-source", str(bad), world.issue()]) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LC2" in err[0] and world.es256.kid.hex() in err[0]


# --- authoring tools: issuer keygen, trust-source add-key / key-status ----------------------


def test_trust_source_tools_scope_keys(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    key_file, ts = tmp_path / "issuer.pem", tmp_path / "trust.json"
    assert main(["issuer", "keygen", "--alg", "ES256", "--out", str(key_file)]) == 0
    kid = capsys.readouterr().out.strip()
    entry_file = key_file.with_name(key_file.name + ".trust.json")
    assert json.loads(entry_file.read_text())["key"]["profiles"] == ["LC1"]
    assert main(issue_args(key_file, "--iat", "2026-12-01T00:00:00Z")) == 0
    qr = capsys.readouterr().out.strip()
    at = ["--at", "2027-01-15T08:00:00Z"]

    assert (
        main(
            [
                "trust-source",
                "add-key",
                str(ts),
                "--create",
                "--entry",
                str(entry_file),
                "--profiles",
                "HC1",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.split() == [kid, "active", "HC1"]
    assert main(["verify", "--trust-source", str(ts), "--json", *at, qr]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "UNKNOWN_ISSUER"

    assert (
        main(
            [
                "trust-source",
                "add-key",
                str(ts),
                "--entry",
                str(entry_file),
                "--profiles",
                "HC1,LC1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["verify", "--trust-source", str(ts), *at, qr]) == 0
    capsys.readouterr()
    assert main(["trust-source", "key-status", str(ts), "--kid", kid, "--status", "revoked"]) == 0
    assert capsys.readouterr().out.split() == [kid, "revoked", "HC1,LC1"]

    before = ts.read_bytes()
    assert (
        main(
            [
                "trust-source",
                "add-key",
                str(ts),
                "--entry",
                str(entry_file),
                "--profiles",
                "LC1,XX9",
            ]
        )
        == 64
    )
    err = capsys.readouterr().err
    assert "unknown profile 'XX9'" in err and kid in err
    assert ts.read_bytes() == before


def test_listing_keys_spans_every_format() -> None:
    licence_key, dsc, shc_key = generate_key("ES256"), CertKey(), JwkKey()
    trust = snapshot_from_document(
        {
            "issuers": [
                {"iss": ISS, "name": "Land Transport", "keys": [licence_key.trust_entry()]},
                {"iss": DCC_ISS, "name": "Health", "keys": [dsc.entry(), shc_key.entry()]},
            ]
        }
    )
    assert len(trust.keys) == 3
    assert trust.issuer_names() == {ISS: "Land Transport", DCC_ISS: "Health"}


# --- published and installed trust data keep the scopes ------------------------------------


def test_publisher_refuses_an_unknown_profile() -> None:
    from appliance_sync.trust_parts import parts_from_document

    world = World()
    doc = copy.deepcopy(world.editor.doc)
    doc["issuers"][0]["keys"][1]["profiles"] = ["LC1", "DCC"]
    with pytest.raises(TrustDataError, match=re.escape(world.eddsa.kid.hex()) + ".*'DCC'"):
        parts_from_document(doc)


def test_publisher_makes_every_key_scope_explicit() -> None:
    from appliance_sync.trust_parts import parts_from_document

    dsc, shc_key, licence_key = CertKey(), JwkKey(), generate_key("EdDSA")
    entries = [
        dsc.entry(),
        shc_key.entry(profiles=["HC1", "SHC"]),
        {k: v for k, v in licence_key.trust_entry().items() if k != "profiles"},
    ]
    doc = {"issuers": [{"iss": ISS, "keys": entries}]}
    parts = parts_from_document(doc)
    assert [k["profiles"] for k in parts.issuers[0]["keys"]] == [["HC1"], ["HC1", "SHC"], ["LC1"]]
    assert "profiles" not in doc["issuers"][0]["keys"][0]  # the source is left as it was


def test_synced_store_keeps_the_scopes(tmp_path: Path) -> None:
    from sync_support import Authority, RepoServer, device

    from appliance.trust.store import load_trust_store

    authority, dsc = Authority.create(tmp_path / "authority"), CertKey()
    authority.editor.add_key(ISS, dsc.entry())
    authority.publish()
    server = RepoServer(authority.repo)
    try:
        assert device(tmp_path / "state", server.url, authority.root_file).sync_once().updated
    finally:
        server.stop()
    trust = load_trust_store(tmp_path / "state" / "trust")
    assert set(trust.keys.by_format["HC1"]) == {dsc.kid}
    assert set(trust.keys.by_format["LC1"]) == {authority.issuer.kid}
    assert check(lc1_signed_by(dsc.signer, dsc.kid), trust) == ("FAIL", "UNKNOWN_ISSUER")
    assert check(lc1_signed_by(authority.issuer, authority.issuer.kid), trust) == ("PASS", "OK")
    assert check(hc1_signed_by(dsc.signer, dsc.kid, ISS), trust) == ("PASS", "OK")
