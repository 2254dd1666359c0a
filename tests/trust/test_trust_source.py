"""Trust sources: a bad one is refused whole, naming the offending entry (exit 64)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from support import World

from appliance.cli import main
from appliance.core.errors import TrustDataError
from appliance.trust.source import load_trust_source, snapshot_from_document


@pytest.fixture(scope="module")
def good() -> dict:
    return World().editor.doc


def mutate(doc: dict, fn) -> dict:
    doc = copy.deepcopy(doc)
    fn(doc)
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["issuers"][0]["keys"][0].update(kid="0011223344556677"),
            "issuers[0].keys[0] (kid 0011223344556677): kid does not match",
        ),
        (lambda d: d["issuers"][0]["keys"][1].update(alg="ES256"), "issuers[0].keys[1]"),
        (lambda d: d["issuers"][0]["keys"][0].update(public_key="nope"), "not a PEM public key"),
        (lambda d: d["issuers"][0]["keys"][0].update(status="maybe"), "status must be"),
        (lambda d: d["issuers"][0]["keys"][0].update(not_after="tomorrow"), "not_after"),
        (lambda d: d["issuers"][0]["keys"][0].update(types="DL"), "types must be a list"),
        (lambda d: d["issuers"][0].pop("iss"), "issuers[0].iss"),
        (lambda d: d.update(status_lists=[{"uri": "u", "bits": 3, "lst": "eNo"}]), "bits"),
        (
            lambda d: d.update(status_lists=[{"uri": "u", "bits": 1, "lst": "!!"}]),
            "status_lists[0]",
        ),
        (lambda d: d["revoked"].update(cti_sha256=["abc"]), "revoked.cti_sha256[0]"),
        (lambda d: d["policy"].update(unknown_status="maybe"), "policy.unknown_status"),
        (lambda d: d["policy"].update(max_age="1"), "policy.max_age"),
        (lambda d: d["issuers"].append(copy.deepcopy(d["issuers"][0])), "duplicate kid"),
    ],
)
def test_bad_trust_source_is_refused_naming_the_entry(good: dict, change, message: str) -> None:
    import re

    with pytest.raises(TrustDataError, match=re.escape(message)):
        snapshot_from_document(mutate(good, change))


def test_cli_exit_64_with_one_line(
    tmp_path: Path, good: dict, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            mutate(good, lambda d: d["issuers"][0]["keys"][0].update(kid="0011223344556677"))
        )
    )
    assert main(["verify", "--trust-source", str(bad), "LC1:ABC"]) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kid does not match" in err[0]


@pytest.mark.parametrize("content", ["", "{", "[]", '{"issuers": {}}'])
def test_unreadable_trust_source(tmp_path: Path, content: str) -> None:
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(TrustDataError):
        load_trust_source(p)
    assert main(["verify", "--trust-source", str(p), "LC1:ABC"]) == 64


def test_missing_trust_source_exits_64(tmp_path: Path) -> None:
    assert main(["verify", "--trust-source", str(tmp_path / "none.json"), "LC1:X"]) == 64


def test_certificate_key_kid_is_sha256_of_certificate() -> None:
    import base64
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    import hashlib

    kid = hashlib.sha256(der).hexdigest()[:16]
    doc = {
        "issuers": [
            {
                "iss": "X",
                "keys": [
                    {"kid": kid, "alg": "ES256", "certificate": base64.b64encode(der).decode()}
                ],
            }
        ]
    }
    trust = snapshot_from_document(doc)
    k = trust.keys.by_format["HC1"][bytes.fromhex(kid)]
    assert k.not_after == dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()
    doc["issuers"][0]["keys"][0]["kid"] = "00" * 8
    with pytest.raises(TrustDataError, match="kid does not match"):
        snapshot_from_document(doc)


def test_editor_round_trip_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ts = tmp_path / "trust.json"
    key = tmp_path / "issuer.pem"
    assert (
        main(
            [
                "issuer",
                "keygen",
                "--alg",
                "EdDSA",
                "--out",
                str(key),
                "--iss",
                "TH-DLT",
                "--trust-source",
                str(ts),
            ]
        )
        == 0
    )
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    kid = capsys.readouterr().out.strip()
    assert len(kid) == 16
    assert (
        main(
            [
                "issuer",
                "issue",
                "--key",
                str(key),
                "--iss",
                "TH-DLT",
                "--typ",
                "BP",
                "--no",
                "B-1",
                "--nm",
                "ร้านค้า",
                "--status-uri",
                "s",
                "--status-idx",
                "9",
                "--png",
                str(tmp_path / "qr.png"),
            ]
        )
        == 0
    )
    qr = capsys.readouterr().out.strip()
    assert (tmp_path / "qr.png").stat().st_size > 100
    assert main(["verify", "--trust-source", str(ts), qr]) == 2  # status list unknown
    assert (
        main(["trust-source", "set-status", str(ts), "--uri", "s", "--index", "9", "--value", "2"])
        == 0
    )
    capsys.readouterr()
    assert main(["verify", "--trust-source", str(ts), "--json", qr]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "SUSPENDED"
    assert (
        main(["trust-source", "set-status", str(ts), "--uri", "s", "--index", "9", "--value", "0"])
        == 0
    )
    assert main(["verify", "--trust-source", str(ts), qr]) == 0
    assert (
        main(
            [
                "trust-source",
                "revoke-licence",
                str(ts),
                "--iss",
                "TH-DLT",
                "--typ",
                "BP",
                "--no",
                "B-1",
            ]
        )
        == 0
    )
    assert main(["verify", "--trust-source", str(ts), qr]) == 1
    assert main(["trust-source", "key-status", str(ts), "--kid", kid, "--status", "revoked"]) == 0
    capsys.readouterr()
    assert main(["verify", "--trust-source", str(ts), "--json", qr]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "ISSUER_KEY_REVOKED"
    load_trust_source(ts)
