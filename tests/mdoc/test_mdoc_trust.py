"""Trust data for mdoc (spec mdl-reader s.2): the ``iaca`` key form and its loader checks, key
scope, ``revoked.mdoc_ds_sha256``, the trust-source commands, a signed VICAL, and publish and
sync carrying all of it to a device that then verifies and audits (``mdoc verify --config``)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from issuer_support import NOW, TestIaca
from mdoc_cases import AUTHORING, World
from sync_support import Authority, RepoServer, device

from appliance.cli import main
from appliance.core.credential.mdoc.device_auth import sig1_structure
from appliance.core.credential.mdoc.items_request import MDL_DOCTYPE
from appliance.core.errors import TrustDataError
from appliance.core.reasons import Outcome, Reason
from appliance.tools.issuer_mdoc import sign_es
from appliance.trust.source import snapshot_from_document
from appliance.trust.store import load_trust_store

AT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def _doc(iaca: TestIaca, **changes: Any) -> dict[str, Any]:
    doc = iaca.trust_document()
    doc["issuers"][0]["keys"][0].update(changes)
    return doc


def _refused(doc: dict[str, Any], words: str) -> None:
    with pytest.raises(TrustDataError, match=words):
        snapshot_from_document(doc)


def test_loader_checks_name_the_key() -> None:
    iaca = TestIaca.create()
    snapshot_from_document(_doc(iaca))  # the good one loads
    _refused(_doc(iaca, kid="0000000000000000"), f"kid .*computed {iaca.kid}")
    _refused(_doc(iaca, doctypes=[]), "doctypes")
    _refused(_doc(TestIaca.create(ca=False)), "not a CA")
    _refused(_doc(TestIaca.create(key_cert_sign=False)), "keyCertSign")
    ds = iaca.document_signer()
    not_root = _doc(iaca)
    not_root["issuers"][0]["keys"][0] = {**TestIaca(ds.key, ds.certificate).trust_entry()}
    _refused(not_root, "not self-signed")
    _refused(_doc(TestIaca.create(curve=ec.SECP256K1())), "P-256, P-384 or P-521")
    wider = iaca.certificate.not_valid_after_utc + dt.timedelta(days=1)
    _refused(_doc(iaca, not_after=wider.strftime("%Y-%m-%dT%H:%M:%SZ")), "never widen")
    narrower = NOW + dt.timedelta(days=1)
    snapshot_from_document(_doc(iaca, not_after=narrower.strftime("%Y-%m-%dT%H:%M:%SZ")))


def test_profiles_rule() -> None:
    iaca = TestIaca.create()
    _refused(_doc(iaca, profiles=["MDOC", "LC1"]), "MDOC only")
    snapshot_from_document(_doc(iaca, profiles=["MDOC"]))
    certificate_key = {
        "kid": iaca.kid,
        "alg": "ES256",
        "profiles": ["MDOC"],
        "certificate": iaca.trust_entry()["iaca"],
    }
    _refused({"issuers": [{"iss": "X", "keys": [certificate_key]}]}, "MDOC belongs to iaca")


def test_an_iaca_verifies_mdoc_only() -> None:
    iaca = TestIaca.create()
    keys = snapshot_from_document(_doc(iaca)).keys
    kid = bytes.fromhex(iaca.kid)
    assert keys.lookup("MDOC", kid) is not None
    assert all(keys.lookup(fmt, kid) is None for fmt in ("LC1", "LP1", "HC1", "SHC"))


def _write_pem(path: Path, cert: Any) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_add_iaca_and_revoke_ds_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    trust = tmp_path / "trust.json"
    cert = _write_pem(tmp_path / "iaca.pem", world.iaca.certificate)
    assert (
        main(
            [
                "trust-source",
                "add-iaca",
                str(trust),
                "--create",
                "--iss",
                "UT-DMV",
                "--cert",
                str(cert),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == f"{world.iaca.kid} active MDOC\n"
    response = world.response()
    from appliance.trust.source import load_trust_source

    result = world.verify(response, trust=load_trust_source(trust))
    assert result.verdict.reason is Reason.OK
    ds = _write_pem(tmp_path / "ds.pem", world.signer().certificate)
    assert main(["trust-source", "revoke-ds", str(trust), "--cert", str(ds)]) == 0
    result = world.verify(response, trust=load_trust_source(trust))
    assert (result.verdict.outcome, result.verdict.reason) == (Outcome.FAIL, Reason.MDOC_DS_REVOKED)
    # A DS certificate is not a root: refused, and the file is left as it was.
    before = trust.read_bytes()
    assert (
        main(["trust-source", "add-iaca", str(trust), "--iss", "UT-DMV", "--cert", str(ds)]) == 64
    )
    assert trust.read_bytes() == before


def _vical(
    signer_key: ec.EllipticCurvePrivateKey,
    infos: list[dict[str, Any]],
    *,
    date: dt.datetime = NOW - dt.timedelta(days=1),
    carried: bytes | None = None,
) -> bytes:
    body = {
        "version": "1.0",
        "vicalProvider": "Test VICAL provider",
        "date": cbor2.CBORTag(0, date.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "vicalIssueID": 7,
        "certificateInfos": infos,
    }
    payload = cbor2.dumps(body)
    protected = cbor2.dumps({1: -7})
    unprotected = {33: carried} if carried is not None else {}
    signature = sign_es(signer_key, sig1_structure(protected, payload))
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


def _import_vical(trust: Path, vical: Path, signer_pem: Path) -> list[str]:
    """The ``trust-source import-vical`` command line the VICAL tests run."""
    return [
        "trust-source",
        "import-vical",
        str(trust),
        "--create",
        "--vical",
        str(vical),
        "--signer",
        str(signer_pem),
        "--at",
        AT,
    ]


def _info(iaca: TestIaca, doctypes: list[str] | None = None) -> dict[str, Any]:
    return {
        "certificate": iaca.der,
        "serialNumber": cbor2.CBORTag(2, b"\x01"),
        "ski": b"\x00" * 20,
        "docType": doctypes or [MDL_DOCTYPE],
        "issuingCountry": "UT",
        "stateOrProvinceName": "North",
    }


def test_import_vical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signer = TestIaca.create(cn="vical signer")
    roots = [TestIaca.create(cn="root a"), TestIaca.create(cn="root b")]
    bad = TestIaca.create(cn="not a ca", ca=False)
    vical = tmp_path / "list.vical"
    vical.write_bytes(_vical(signer.key, [_info(roots[0]), _info(roots[1], ["a.b.c"]), _info(bad)]))
    signer_pem = _write_pem(tmp_path / "signer.pem", signer.certificate)
    trust = tmp_path / "trust.json"
    args = _import_vical(trust, vical, signer_pem)
    assert main([*args, "--iss-from", "state"]) == 0
    out, err = capsys.readouterr()
    assert out == "2 IACA(s) added or replaced, 1 skipped\n" and "not a CA" in err
    from appliance.trust.source import load_trust_source

    keys = load_trust_source(trust).keys
    entries = {k.kid.hex(): (k.iss, k.types) for k in keys}
    assert entries == {
        roots[0].kid: ("UT-North", frozenset({MDL_DOCTYPE})),
        roots[1].kid: ("UT-North", frozenset({"a.b.c"})),
    }
    assert main(args) == 0  # again, by country: replaced, not duplicated
    capsys.readouterr()
    assert {k.iss for k in load_trust_source(trust).keys} == {"UT"}
    assert len(load_trust_source(trust).keys) == 2


def test_vical_trust_comes_only_from_the_given_signer(tmp_path: Path) -> None:
    signer, other = TestIaca.create(cn="vical signer"), TestIaca.create(cn="intruder")
    trust = tmp_path / "trust.json"
    signer_pem = _write_pem(tmp_path / "signer.pem", signer.certificate)
    root = TestIaca.create()
    cases = {
        # Signed by someone else, who even carries their own certificate: refused.
        "forged": _vical(other.key, [_info(root)], carried=other.der),
        "future": _vical(signer.key, [_info(root)], date=NOW + dt.timedelta(days=2)),
        "garbage": b"\xd2\x84\x40",
    }
    for name, data in cases.items():
        vical = tmp_path / f"{name}.vical"
        vical.write_bytes(data)
        assert main(_import_vical(trust, vical, signer_pem)) == 64, name
        assert not trust.exists()


@pytest.fixture
def synced(tmp_path: Path) -> Any:
    """An authority publishing an IACA and a withdrawn DS; a device synced from it."""
    world, withdrawn = World(), None
    authority = Authority.create(tmp_path / "authority")
    authority.editor.add_key("UT-DMV", world.iaca.trust_entry(), "Test mDL issuer")
    withdrawn = world.iaca.document_signer(cn="withdrawn ds")
    authority.editor.revoke_mdoc_ds(withdrawn.certificate.public_bytes(serialization.Encoding.DER))
    authority.publish()
    server = RepoServer(authority.repo)
    try:
        device(tmp_path / "state", server.url, authority.root_file).sync_once()
        yield world, withdrawn, authority, tmp_path
    finally:
        server.stop()


def test_publish_and_sync_carry_iaca_keys_and_withdrawn_signers(synced: Any) -> None:
    world, withdrawn, authority, base = synced
    trust = load_trust_store(base / "state" / "trust", authority.root_file)
    response = world.response()
    assert (
        world.verify(
            response, trust=trust, now=dt.datetime.now(dt.UTC), checkpoint=AUTHORING
        ).verdict.reason
        is Reason.OK
    )
    world.ds = withdrawn
    result = world.verify(world.response(), trust=trust, now=dt.datetime.now(dt.UTC))
    assert result.verdict.reason is Reason.MDOC_DS_REVOKED


def test_mdoc_verify_config_audits_without_personal_data(
    synced: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    world, _, _, base = synced
    config = base / "device.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{base / "state"}"\nsecrets_dir = "{base / "secrets"}"\n'
    )
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    transcript = base / "t.bin"
    transcript.write_bytes(world.session.transcript)
    checkpoint = base / "checkpoint.cbor"
    now = dt.datetime.now(dt.UTC)
    checkpoint.write_bytes(
        world.response(world.issue(signed=now - dt.timedelta(days=1)), mac=False)
    )
    age = base / "age.cbor"
    age.write_bytes(
        world.response(
            world.issue(
                {"org.iso.18013.5.1": {"age_over_20": True, "document_number": "UT-123"}},
                signed=now - dt.timedelta(days=1),
            ),
            mac=False,
        )
    )
    capsys.readouterr()
    common = ["mdoc", "verify", "--config", str(config), "--session-transcript", str(transcript)]
    assert main([*common, "--response", str(checkpoint)]) == 0
    assert main([*common, "--request-profile", "age", "--response", str(age)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "PASS\tOK\tMDOC\tUT-DMV\torg.iso.18013.5.1.mDL\tUT-123",
        "PASS\tOK\tMDOC\tUT-DMV\torg.iso.18013.5.1.mDL\t-",
    ]
    with sqlite3.connect(base / "state" / "audit.db") as db:
        db.row_factory = sqlite3.Row
        rows = [
            dict(r)
            for r in db.execute(
                "SELECT source, verdict, reason, profile, iss, kid, licence_type, licence_hash, "
                "cti_hash, live FROM records ORDER BY seq"
            )
        ]
    checkpoint_row, age_row = rows[-2:]
    for row in rows[-2:]:
        assert (
            row["source"],
            row["verdict"],
            row["profile"],
            row["iss"],
            row["kid"],
            row["licence_type"],
            row["live"],
        ) == ("cli", "PASS", "MDOC", "UT-DMV", world.iaca.kid, MDL_DOCTYPE, 1)
    assert checkpoint_row["licence_hash"] and checkpoint_row["cti_hash"]
    assert age_row["licence_hash"] is None and age_row["cti_hash"] is None  # [D9]
    text = (base / "state" / "audit.db").read_bytes()
    assert b"UT-123" not in text and b"Doe" not in text


def test_mdoc_verify_config_at_writes_no_record(
    synced: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--at`` is exactly as ``appliance verify``'s (spec s.5.1): the verdict at that
    instant, never an audited record with a caller's time (issue 21, finding 9)."""
    world, _, _, base = synced
    config = base / "device.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{base / "state"}"\nsecrets_dir = "{base / "secrets"}"\n'
    )
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    transcript = base / "t.bin"
    transcript.write_bytes(world.session.transcript)
    now = dt.datetime.now(dt.UTC)
    response = base / "r.cbor"
    response.write_bytes(world.response(world.issue(signed=now - dt.timedelta(days=1)), mac=False))
    args = ["mdoc", "verify", "--config", str(config), "--session-transcript", str(transcript)]
    assert main([*args, "--response", str(response)]) == 0  # audited: the log now exists

    def records() -> int:
        with sqlite3.connect(base / "state" / "audit.db") as db:
            return int(db.execute("SELECT count(*) FROM records").fetchone()[0])

    before = records()
    capsys.readouterr()
    at = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main([*args, "--at", at, "--response", str(response)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("PASS\tOK\tMDOC")
    assert "not audited" in captured.err
    assert records() == before
