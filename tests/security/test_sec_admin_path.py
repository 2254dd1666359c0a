"""Replays of issue 21's "new administrator" findings (13 to 17): the authoring tools and
the command line refuse what would silently go wrong.

Each test replays one finding; before the fix a misspelt trust source was created anew
(exit 0, nothing printed), a licence valid past year 9999 was signed and then shown with
``"exp": null``, and a revocation under an unknown issuer passed without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import ISS, World

from appliance.cli import main
from appliance.tools.issuer import save_private_key

AT = "2027-01-15T08:00:00Z"


@pytest.fixture
def world(tmp_path: Path) -> tuple[World, Path, Path]:
    """A world, its trust source and its ES256 key as a PEM file."""
    w = World()
    w.editor.save(tmp_path / "trust.json")
    save_private_key(w.es256, tmp_path / "issuer.pem")
    return w, tmp_path / "trust.json", tmp_path / "issuer.pem"


# --- finding 14: trust-source editors on a missing file, unknown issuers -------------------

EDITS = {
    "revoke-licence": ["--iss", ISS, "--typ", "DL", "--no", "63-0012345"],
    "set-status": ["--uri", "https://status.example/dl/1", "--index", "4", "--value", "1"],
    "set-policy": ["--max-age-hours", "48"],
    "revoke-credential": ["--cti", "00" * 16],
    "key-status": ["--kid", "00" * 8, "--status", "revoked"],
}


@pytest.mark.parametrize("action", sorted(EDITS))
def test_editor_refuses_a_misspelt_trust_source(world, action: str,
                                                capsys: pytest.CaptureFixture) -> None:
    """Was: exit 0, nothing printed, and a new trust.jsn holding only this change."""
    _, trust, _ = world
    misspelt = trust.with_name("trust.jsn")
    assert main(["trust-source", action, str(misspelt), *EDITS[action]]) == 64
    err = capsys.readouterr().err
    assert str(misspelt) in err and "--create" in err
    assert not misspelt.exists()


def test_create_starts_a_new_trust_source(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    assert main(["trust-source", "set-policy", str(new), "--create",
                 "--max-age-hours", "24"]) == 0
    assert json.loads(new.read_text())["policy"]["max_age_hours"] == 24
    # --create on a file that exists edits it, never starts it again
    assert main(["trust-source", "set-policy", str(new), "--create",
                 "--clock-skew-s", "60"]) == 0
    policy = json.loads(new.read_text())["policy"]
    assert (policy["max_age_hours"], policy["clock_skew_s"]) == (24, 60)


def test_issuer_keygen_still_creates_its_trust_source(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """The README walkthrough's first step: keygen --trust-source starts the file."""
    trust = tmp_path / "trust.json"
    assert main(["issuer", "keygen", "--alg", "ES256", "--out", str(tmp_path / "k.pem"),
                 "--iss", ISS, "--trust-source", str(trust)]) == 0
    assert f"new trust source: {trust}" in capsys.readouterr().err
    assert json.loads(trust.read_text())["issuers"][0]["iss"] == ISS


def test_revoking_under_an_unknown_issuer_warns(world, capsys: pytest.CaptureFixture) -> None:
    """Was: silent. The revocation is still recorded (the issuer may be added later)."""
    _, trust, _ = world
    assert main(["trust-source", "revoke-licence", str(trust), "--iss", "TH-DTL",
                 "--typ", "DL", "--no", "63-0012345"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "'TH-DTL'" in err
    assert len(json.loads(trust.read_text())["revoked"]["licence_sha256"]) == 1
    assert main(["trust-source", "revoke-licence", str(trust), "--iss", ISS,
                 "--typ", "DL", "--no", "63-0012345"]) == 0
    assert capsys.readouterr().err == ""


def test_revoking_a_credential_of_an_unknown_issuer_warns(
        world, capsys: pytest.CaptureFixture) -> None:
    w, trust, _ = world
    text = w.issue(iss="TH-DTL")
    assert main(["trust-source", "revoke-credential", str(trust), "--text", text]) == 0
    assert "'TH-DTL'" in capsys.readouterr().err


# --- finding 15: every date input bounded ---------------------------------------------------


def _issue(key: Path, *extra: str) -> list[str]:
    return ["issuer", "issue", "--key", str(key), "--iss", ISS, "--typ", "DL", "--no", "1",
            "--nm", "A", *extra]


@pytest.mark.parametrize(("extra", "named"), [
    (["--valid-days", "3000000"], "--valid-days"),
    (["--valid-days", "36526"], "--valid-days"),
    (["--exp", "9999-12-31T23:59:59Z"], "--exp"),
    (["--exp", "2200-01-01T00:00:00Z"], "--exp"),
    (["--iat", "1969-12-31T23:59:59Z"], "--iat"),
    (["--nbf", "+10000-01-01T00:00:00Z"], "--nbf"),
    (["--vu", "9999-12-31"], "--vu"),
    (["--dob", "0001-01-01"], "--dob"),
])
def test_issue_refuses_a_date_out_of_bounds(world, extra: list[str], named: str,
                                            capsys: pytest.CaptureFixture) -> None:
    """Was: --valid-days 3000000 signed a licence valid past year 9999."""
    _, _, key = world
    assert main(_issue(key, *extra)) == 64
    captured = capsys.readouterr()
    assert captured.out == "" and named in captured.err and "Traceback" not in captured.err


def test_the_longest_allowed_licence_shows_its_expiry(world,
                                                      capsys: pytest.CaptureFixture) -> None:
    """Was: verify --json printed "exp": null for the 3,000,000-day licence."""
    _, trust, key = world
    assert main(_issue(key, "--iat", AT, "--valid-days", "36525")) == 0
    text = capsys.readouterr().out.strip()
    assert main(["verify", "--trust-source", str(trust), "--json", "--at", AT, text]) == 0
    assert json.loads(capsys.readouterr().out)["exp"] == "2127-01-16T08:00:00Z"


@pytest.mark.parametrize("argv", [
    ["verify", "--trust-source", "t.json", "--at", "9999-12-31T00:00:00Z", "LC1:A"],
    ["verify", "--trust-source", "t.json", "--at", "1900-01-01T00:00:00Z", "LC1:A"],
    ["issuer", "keygen", "--alg", "ES256", "--out", "k.pem", "--not-after",
     "9999-01-01T00:00:00Z"],
    ["holder", "present", "--credential", "LC1:A", "--key", "h.pem", "--at",
     "3000-01-01T00:00:00Z"],
    ["audit", "export", "--config", "c.toml", "--since", "2500-01-01T00:00:00Z"],
])
def test_other_date_inputs_are_bounded(tmp_path: Path, argv: list[str],
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 64
    assert "outside" in capsys.readouterr().err
    assert not (tmp_path / "k.pem").exists()


# --- finding 16: translations are per request, never fixed when a template is built -------


def _legend(page: str) -> str:
    import re

    found = re.search(r'<p class="legend">(.*?)</p>', page, re.S)
    assert found, page[:400]
    return re.sub(r"<[^>]+>", " ", found.group(1))


def test_status_legend_follows_each_requests_language(tmp_path: Path) -> None:
    """Was: the English /status showed its legend in Thai once Thai had been rendered
    first (Jinja folded ``"PASS"|outcome_word`` into the compiled template)."""
    from web_support import make_app, make_kit

    client = make_app(make_kit(tmp_path, language="th")).test_client()
    thai = _legend(client.get("/status?lang=th").get_data(as_text=True))
    english = _legend(client.get("/status?lang=en").get_data(as_text=True))
    assert "ผ่าน" in thai and "Valid" not in thai
    assert "Valid" in english and "Not valid" in english and "ผ่าน" not in english
    assert "ผ่าน" in _legend(client.get("/status?lang=th").get_data(as_text=True))


def test_no_translating_filter_can_be_folded_at_compile_time(tmp_path: Path) -> None:
    """Every filter the screens register is evaluated per render: Jinja folds a filter
    of constants at compile time unless it takes the render context."""
    from jinja2.utils import _PassArg
    from web_support import make_app, make_kit

    app = make_app(make_kit(tmp_path))
    ours = ("outcome_word", "reason_text", "when", "duration", "licence_date", "signed_date",
            "ext_label", "source_name", "throttle_flag", "error_title", "outcome_class", "qr")
    folded = [n for n in ours if _PassArg.from_obj(app.jinja_env.filters[n])
              is not _PassArg.context]
    assert not folded
