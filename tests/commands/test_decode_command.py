"""``appliance decode`` per spec LC1 s.7: output forms, exit statuses, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import segno
from PIL import Image

from appliance.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    one = tmp_path / "one.png"
    segno.make("LC1:FIRST CODE", error="m", micro=False).save(one, scale=5, border=4)
    two = tmp_path / "two.png"
    canvas = Image.new("L", (700, 300), 255)
    for i, text in enumerate(("LC1:LEFT", "LC1:RIGHT")):
        path = tmp_path / f"part{i}.png"
        segno.make(text, error="m", micro=False).save(path, scale=6, border=4)
        canvas.paste(Image.open(path), (40 + 360 * i, 40))
    canvas.save(two)
    jpg = tmp_path / "photo.jpg"
    Image.open(one).convert("RGB").save(jpg, quality=70)
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture")
    return {"one": one, "two": two, "jpg": jpg, "blank": blank, "bad": bad}


def test_plain_output_prints_every_text(images, capsys) -> None:
    assert main(["decode", str(images["one"]), str(images["two"]), str(images["jpg"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "LC1:FIRST CODE"
    assert sorted(lines[1:3]) == ["LC1:LEFT", "LC1:RIGHT"]
    assert lines[3] == "LC1:FIRST CODE"


def test_json_output_is_one_object_per_image(images, capsys) -> None:
    status = main(["decode", "--json", str(images["one"]), str(images["blank"])])
    assert status == 1  # the blank image held no code
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        {"file": str(images["one"]), "texts": ["LC1:FIRST CODE"]},
        {"file": str(images["blank"]), "texts": []},
    ]


def test_unreadable_file_is_usage_as_in_verify(images, capsys) -> None:
    """Exit 64 like verify --image, one line, and nothing printed for the other images."""
    status = main(["decode", "--json", str(images["one"]), str(images["bad"])])
    out, err = capsys.readouterr()
    assert status == 64 and out == ""
    assert "bad.png" in err and len(err.strip().splitlines()) == 1
    assert main(["decode", str(images["bad"].parent / "absent.png")]) == 64


def test_a_picture_without_a_code_is_said(images, capsys) -> None:
    assert main(["decode", str(images["one"]), str(images["blank"])]) == 1
    out, err = capsys.readouterr()
    assert out == "LC1:FIRST CODE\n"
    assert err.strip().splitlines() == [f"appliance decode: no QR code in {images['blank']}"]


def test_backend_names_match_the_scanner() -> None:
    from appliance.commands import decode
    from appliance.devices import scanner

    assert (decode.BACKENDS, decode.DEFAULT_BACKEND) == (scanner.BACKENDS, scanner.DEFAULT_BACKEND)


@pytest.mark.parametrize(
    "argv", [["decode"], ["decode", "--nope", "x.png"], ["decode", "--backend", "opencv", "x.png"]]
)
def test_bad_usage_exits_64(argv, capsys) -> None:
    assert main(argv) == 64
    assert capsys.readouterr().err.strip()


@pytest.mark.parametrize("backend", ["zxing", "zbar", "both"])
def test_every_backend_is_selectable(images, backend, capsys) -> None:
    assert main(["decode", "--backend", backend, str(images["one"])]) == 0
    assert capsys.readouterr().out == "LC1:FIRST CODE\n"


def test_installed_command_runs(images) -> None:
    exe = Path(sys.executable).parent / "appliance"
    if not exe.exists():
        pytest.skip("the appliance console script is not installed in this environment")
    done = subprocess.run(
        [str(exe), "decode", "--json", str(images["two"]), str(images["blank"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert sorted(first["texts"]) == ["LC1:LEFT", "LC1:RIGHT"]
    assert second["texts"] == []


@pytest.mark.slow
def test_decode_command_reads_the_corpus(shared_data: Path, capsys) -> None:
    root = shared_data / "qr-corpus"
    if not (root / "MANIFEST.tsv").is_file():
        pytest.skip(f"QR corpus not found at {root}")
    with (root / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    main(["decode", "--json", *(str(root / r["file"]) for r in rows)])
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["file"] for o in found] == [str(root / r["file"]) for r in rows]
    hits = sum(
        (root / r["expected_text_file"]).read_bytes().decode("utf-8") in o["texts"]
        for r, o in zip(rows, found, strict=True)
    )
    assert hits / len(rows) >= 0.932, f"{hits}/{len(rows)}"
    assert hits >= 226, f"{hits}/{len(rows)}"
