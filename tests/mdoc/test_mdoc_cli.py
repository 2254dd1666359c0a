"""``appliance mdoc verify`` exactly as spec mdl-reader s.5.1, and ``appliance verify`` given an
``mdoc:`` text or image (MDOC_SESSION_REQUIRED)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import segno
from annexd import AnnexD
from cli_support import run_cli
from cryptography.hazmat.primitives import serialization
from issuer_support import NOW
from mdoc_cases import Session, World, mutate

from appliance.cli import main

AT = "2021-01-01T00:00:00Z"
ANNEX_D_LINE = "PASS\tOK\tMDOC\tUS-UT\torg.iso.18013.5.1.mDL\t123456789"
GENERATED_AT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")  # --at for a generated world


def annexd_args(at: str = AT, *extra: str) -> list[str]:
    return [
        "mdoc",
        "verify",
        "--trust-source",
        "annexd-trust.json",
        "--at",
        at,
        "--session-transcript",
        "session_transcript_bytes.hex",
        "--reader-key",
        "e_reader_key.pem",
        "--request",
        "device_request.hex",
        *extra,
    ]


def generated_files(world: World, tmp_path: Path) -> tuple[Path, Path]:
    """A generated world's trust source and session transcript, as files the CLI reads."""
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(world.iaca.trust_document()))
    transcript = tmp_path / "t.bin"
    transcript.write_bytes(world.session.transcript)
    return trust, transcript


def verify_generated(trust: Path, *args: str, at: str | None = GENERATED_AT) -> int:
    """``appliance mdoc verify --trust-source TRUST [--at AT] ARGS`` in this process."""
    at_args = ["--at", at] if at is not None else []
    return main(["mdoc", "verify", "--trust-source", str(trust), *at_args, *args])


def test_v2_spec_example_line_and_exit(annexd: AnnexD) -> None:
    proc = run_cli(*annexd_args(AT, "--response", "device_response.hex"), cwd=annexd.root)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, ANNEX_D_LINE + "\n", "")


def test_v2_session_data_and_json(annexd: AnnexD) -> None:
    proc = run_cli(
        *annexd_args(AT, "--session-data", "--json", "--response", "session_data.hex"),
        cwd=annexd.root,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "verdict": "PASS",
        "reason": "OK",
        "profile": "MDOC",
        "iss": "US-UT",
        "kid": "6bdac7eb36008baf",
        "doctype": "org.iso.18013.5.1.mDL",
        "no": "123456789",
        "valid_until": "2021-10-01T13:30:02Z",
        "device_auth": "mac",
        "elements": [
            "family_name",
            "issue_date",
            "expiry_date",
            "document_number",
            "portrait",
            "driving_privileges",
        ],
    }


def test_binary_files_several_responses_in_order_and_worst_exit(
    annexd: AnnexD, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "response.cbor"
    binary.write_bytes(annexd.bytes("device_response"))
    trailing = tmp_path / "trailing.cbor"
    trailing.write_bytes(annexd.bytes("device_response") + b"\x00")
    args = [
        a if not a.endswith((".hex", ".json", ".pem")) else str(annexd.path(a))
        for a in annexd_args(AT)
    ]
    code = main([*args, "--response", str(binary), "--response", str(trailing)])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [ANNEX_D_LINE, "FAIL\tMDOC_MALFORMED\tMDOC\t-\t-\t-"]
    assert code == 1


@pytest.mark.parametrize(
    ("at", "line", "code"),
    [
        ("2021-10-01T14:00:00Z", "FAIL\tEXPIRED\tMDOC\tUS-UT\torg.iso.18013.5.1.mDL\t123456789", 1),
        (
            "2021-10-01T06:00:00Z",
            "FAIL\tMDOC_DS_EXPIRED\tMDOC\tUS-UT\torg.iso.18013.5.1.mDL\t123456789",
            1,
        ),
    ],
)
def test_annex_d_mutations_exit_1(annexd: AnnexD, at: str, line: str, code: int) -> None:
    proc = run_cli(*annexd_args(at, "--response", "device_response.hex"), cwd=annexd.root)
    assert (proc.returncode, proc.stdout.strip()) == (code, line)


def test_unverifiable_exits_2(annexd: AnnexD, tmp_path: Path) -> None:
    declined = tmp_path / "declined.hex"
    declined.write_text(annexd.bytes("session_termination").hex())
    proc = run_cli(*annexd_args(AT, "--session-data", "--response", str(declined)), cwd=annexd.root)
    assert (proc.returncode, proc.stdout) == (2, "UNVERIFIABLE\tMDOC_DECLINED\tMDOC\t-\t-\t-\n")


@pytest.mark.parametrize("drop", ["--reader-key", "--session-transcript", "--trust-source"])
def test_usage_errors_exit_64(annexd: AnnexD, drop: str) -> None:
    args = annexd_args(AT, "--response", "device_response.hex")
    i = args.index(drop)
    del args[i : i + 2]
    proc = run_cli(*args, cwd=annexd.root)
    assert proc.returncode == 64 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unreadable_files_exit_64(annexd: AnnexD, tmp_path: Path) -> None:
    bad_key = tmp_path / "key.pem"
    bad_key.write_text("not a key")
    args = annexd_args(AT, "--response", "device_response.hex")
    args[args.index("e_reader_key.pem")] = str(bad_key)
    assert run_cli(*args, cwd=annexd.root).returncode == 64
    assert (
        run_cli(*annexd_args(AT, "--response", str(tmp_path / "none")), cwd=annexd.root).returncode
        == 64
    )


def test_engagement_builds_the_transcript(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A generated holder answers a QR session: the transcript is built from the engagement
    text and --reader-key's public key, as the live reader builds it (s.3.1)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from appliance.core.credential.mdoc import session_crypto as sc
    from appliance.tools.holder_mdoc import device_engagement

    phone = ec.generate_private_key(ec.SECP256R1())
    engagement = device_engagement(phone.public_key(), peripheral_uuid=bytes(16))
    world = World(session=Session(engagement=engagement))
    response = tmp_path / "response.cbor"
    response.write_bytes(world.response())
    trust, _ = generated_files(world, tmp_path)
    key = tmp_path / "reader.pem"
    key.write_bytes(
        world.session.reader_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    text = "mdoc:" + base64.urlsafe_b64encode(engagement).decode().rstrip("=")
    code = verify_generated(
        trust, "--engagement", text, "--reader-key", str(key), "--response", str(response)
    )
    assert capsys.readouterr().out == "PASS\tOK\tMDOC\tUT-DMV\torg.iso.18013.5.1.mDL\tUT-123\n"
    assert code == 0
    code = verify_generated(
        trust,
        "--engagement",
        engagement.hex(),
        "--reader-key",
        str(key),
        "--request-profile",
        "age",
        "--age",
        "18",
        "--json",
        "--response",
        str(response),
    )
    row = json.loads(capsys.readouterr().out)
    assert (row["verdict"], row["reason"], code) == ("UNVERIFIABLE", "MDOC_ELEMENT_MISSING", 2)
    assert "no" not in row  # the age profile asked for no number: none is shown
    # The same response as the phone sends it (SessionData under SKDevice, counter 1).
    keys = sc.session_keys(phone, world.session.reader_key.public_key(), world.session.transcript)
    sealed = tmp_path / "session_data.cbor"
    sealed.write_bytes(
        sc.encode_session_data(data=sc.encrypt(keys.sk_device, sc.DEVICE, 1, response.read_bytes()))
    )
    code = verify_generated(
        trust,
        "--engagement",
        text,
        "--reader-key",
        str(key),
        "--session-data",
        "--response",
        str(sealed),
    )
    assert capsys.readouterr().out == "PASS\tOK\tMDOC\tUT-DMV\torg.iso.18013.5.1.mDL\tUT-123\n"
    assert code == 0
    assert (
        verify_generated(
            trust,
            "--engagement",
            "mdoc:!!",
            "--reader-key",
            str(key),
            "--response",
            str(response),
            at=None,
        )
        == 64
    )


def test_age_json_shows_the_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = World()
    mdoc = world.issue({"org.iso.18013.5.1": {"age_over_21": True}})
    response = tmp_path / "r.hex"
    response.write_text(world.response(mdoc, mac=False).hex())
    trust, transcript = generated_files(world, tmp_path)
    code = verify_generated(
        trust,
        "--session-transcript",
        str(transcript),
        "--request-profile",
        "age",
        "--json",
        "--response",
        str(response),
    )
    row = json.loads(capsys.readouterr().out)
    assert code == 0 and row["age_over"] == {"20": True} and row["device_auth"] == "signature"
    assert row["elements"] == []


def test_hostile_text_never_breaks_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World()
    elements = {"org.iso.18013.5.1": {"document_number": "A\tB\nC", "portrait": b"x"}}
    trust, transcript = generated_files(world, tmp_path)
    response = tmp_path / "r.cbor"
    response.write_bytes(world.response(world.issue(elements), mac=False))
    verify_generated(trust, "--session-transcript", str(transcript), "--response", str(response))
    assert capsys.readouterr().out == "PASS\tOK\tMDOC\tUT-DMV\torg.iso.18013.5.1.mDL\tA?B?C\n"


def test_verify_answers_an_mdoc_text_with_session_required(annexd: AnnexD, tmp_path: Path) -> None:
    text = "mdoc:" + base64.urlsafe_b64encode(annexd.bytes("device_engagement")).decode().rstrip(
        "="
    )
    proc = run_cli(
        "verify", "--trust-source", "annexd-trust.json", text, "MDOC:xyz", cwd=annexd.root
    )
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == ["UNVERIFIABLE\tMDOC_SESSION_REQUIRED\tMDOC"] * 2
    image = tmp_path / "engagement.png"
    segno.make(text, error="m", micro=False).save(str(image), scale=5)
    proc = run_cli(
        "verify",
        "--trust-source",
        "annexd-trust.json",
        "--json",
        "--image",
        str(image),
        cwd=annexd.root,
    )
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout) == {
        "verdict": "UNVERIFIABLE",
        "reason": "MDOC_SESSION_REQUIRED",
        "profile": "MDOC",
        "file": str(image),
    }


def test_help_documents_every_exit_status() -> None:
    out = " ".join(run_cli("mdoc", "verify", "--help").stdout.split())
    assert all(
        code in out for code in ("0 all PASS", "1 any FAIL", "2 any UNVERIFIABLE", "64", "74")
    )


def test_mutated_annex_d_through_the_cli(annexd: AnnexD, tmp_path: Path) -> None:
    def swap(item: dict) -> None:
        item["documents"][0]["docType"] = "org.iso.23220.photoid.1"

    mutated = tmp_path / "swapped.cbor"
    mutated.write_bytes(mutate(annexd.bytes("device_response"), swap))
    proc = run_cli(*annexd_args(AT, "--response", str(mutated)), cwd=annexd.root)
    assert proc.returncode == 1
    assert proc.stdout.split("\t")[:2] == ["FAIL", "MDOC_DOCTYPE_MISMATCH"]
