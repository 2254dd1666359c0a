"""Every command and sub-command, bad input of every kind: one line, a contract exit code.

The commands are discovered from the argparse tree, so a command added later is probed
too. For each leaf command the required arguments are filled with plausible values and
one argument at a time is made bad: an unknown option, nothing at all, a missing file, a
binary file, a negative number, a date that is not ISO 8601, empty standard input.
The contract (README "Command line", docs/cli.md): exit 0/1/2 verdicts, 64 bad usage,
74 could not audit; never a traceback, and a failure says so in one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import build_parser
from appliance.commands import argtypes

PROBE = Path(__file__).with_name("cli_probe.py")
CONTRACT = {0, 1, 2, 64, 74}
DATE_DESTS = {"at", "since", "iat", "exp", "nbf", "dob", "vf", "vu", "not_before", "not_after"}
# Flags that keep a command short-lived when its bad input is (rightly) accepted.
SHORT_LIVED = {"demo": ["--duration", "0", "--no-web"]}
LOG_PREFIXES = ("DEBUG ", "INFO ", "WARNING ")


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command path, parser) for every command that takes no further sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaves(sub, (*path, name))


LEAVES = dict(leaves(build_parser()))


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
    ]


def _is_date(action: argparse.Action) -> bool:
    return (
        action.dest in DATE_DESTS
        or action.metavar == "ISO8601"
        or action.type in (argtypes.iso_day, argtypes.iso_instant)
    )


def _is_number(action: argparse.Action) -> bool:
    return action.type in (
        int,
        float,
        argtypes.positive_float,
        argtypes.non_negative_float,
        argtypes.non_negative_int,
        argtypes.positive_int,
        argtypes.port,
    )


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _filler(action: argparse.Action, work: Path) -> str:
    """A plausible value, so a probe reaches the argument it makes bad."""
    if action.choices:
        return str(next(iter(action.choices)))
    if action.type is Path:
        return str(work / f"new-{action.dest}")
    if _is_number(action):
        return "1"
    if _is_date(action):
        return "2027-01-15"
    return "x"


def _argv(
    command: tuple[str, ...],
    parser: argparse.ArgumentParser,
    work: Path,
    bad: argparse.Action | None = None,
    value: str | None = None,
) -> list[str]:
    opts: list[str] = []
    positionals: list[str] = []
    for action in _arguments(parser):
        if not _takes_value(action):
            continue
        required = action.required or (not action.option_strings and action.nargs != "*")
        if action is bad:
            chosen = value
        elif required:
            chosen = _filler(action, work)
        else:
            continue
        if action.option_strings:
            opts += [action.option_strings[0], str(chosen)]
        else:
            positionals.append(str(chosen))
    return [*command, *SHORT_LIVED.get(command[0], []), *opts, *positionals]


def cases(command: tuple[str, ...], parser: argparse.ArgumentParser, work: Path) -> list[dict]:
    """Bad invocations of one command, each with the exit statuses it may give."""
    binary = work / "binary.bin"
    missing = work / "no-such-dir" / "no-such-file"
    out = [
        {
            "kind": "unknown option",
            "argv": [*_argv(command, parser, work), "--no-such-option"],
            "want": [64],
        },
    ]
    if any(
        a.required or (not a.option_strings and a.nargs in (None, "+")) for a in _arguments(parser)
    ):
        out.append({"kind": "no arguments", "argv": list(command), "want": [64]})
    for action in _arguments(parser):
        if not _takes_value(action):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        if action.type is Path or action.dest in ("images", "texts"):
            for label, value in (("missing file", missing), ("binary file", binary)):
                out.append(
                    {
                        "kind": f"{label} for {name}",
                        "argv": _argv(command, parser, work, action, str(value)),
                        "want": sorted(CONTRACT),
                    }
                )
        if _is_number(action):
            out.append(
                {
                    "kind": f"negative {name}",
                    "argv": _argv(command, parser, work, action, "-5"),
                    "want": [64],
                }
            )
        if _is_date(action):
            out.append(
                {
                    "kind": f"bad date {name}",
                    "argv": _argv(command, parser, work, action, "next-year"),
                    "want": [64],
                }
            )
        if "@FILE" in (action.help or ""):
            out.append(
                {
                    "kind": f"missing @FILE for {name}",
                    "argv": _argv(command, parser, work, action, f"@{missing}"),
                    "want": [64],
                }
            )
        if "'-'" in (action.help or ""):
            out.append(
                {
                    "kind": f"empty stdin for {name}",
                    "argv": _argv(command, parser, work, action, "-"),
                    "want": [64],
                    "stdin": "\n \n",
                }
            )
    return out


def _probe(batch: list[dict], tmp: Path) -> list[dict]:
    cases_file, results_file = tmp / "cases.json", tmp / "results.jsonl"
    cases_file.write_text(json.dumps(batch))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with contextlib.suppress(subprocess.TimeoutExpired):  # the missing results say which
        subprocess.run(
            [sys.executable, str(PROBE), str(cases_file), str(results_file)],
            cwd=tmp,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    if not results_file.exists():
        return []
    return [json.loads(line) for line in results_file.read_text().splitlines()]


@pytest.mark.parametrize("command", sorted(LEAVES), ids=" ".join)
def test_bad_input_gives_one_line_and_a_contract_status(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "binary.bin").write_bytes(bytes(range(256)) * 8 + b"\xff\xfe\x00LC1:")
    batch = cases(command, LEAVES[command], work)
    results = _probe(batch, tmp_path)
    problems = []
    for case in batch[len(results) : len(results) + 1]:
        problems.append(f"{case['kind']}: {case['argv']} did not finish (hangs?)")
    for case, result in zip(batch, results, strict=False):
        stderr = result["stderr"]
        lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith(LOG_PREFIXES)]
        where = f"{case['kind']}: appliance {' '.join(case['argv'])}"
        if result["escaped"] or "Traceback" in stderr:
            last = (result["escaped"] or stderr).strip().splitlines()[-1]
            problems.append(f"{where}: traceback ({last})")
        elif result["status"] not in case["want"]:
            problems.append(f"{where}: exit {result['status']}, want {case['want']}; {stderr!r}")
        elif result["status"] != 0 and len(lines) != 1:
            problems.append(f"{where}: {len(lines)} lines on stderr: {stderr!r}")
    assert not problems, "\n".join(problems)


def test_the_probe_sees_a_traceback(tmp_path: Path) -> None:
    """The harness itself: an exception escaping main() is reported, not swallowed."""
    batch = [{"argv": 5}, {"argv": ["--version"]}]
    results = _probe(batch, tmp_path)
    assert results[0]["escaped"] and "TypeError" in results[0]["escaped"]
    assert results[1]["status"] == 0 and results[1]["escaped"] is None


HEAVY = (
    "numpy",
    "PIL",
    "flask",
    "werkzeug",
    "tuf",
    "cryptography",
    "zxingcpp",
    "pyzbar",
    "segno",
    "sqlite_utils",
)
CHILD = """
import sys
from appliance.cli import main
status = main(sys.argv[1:])
print(status, " ".join(sorted({m.split('.')[0] for m in sys.modules})))
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    """Top-level packages a child process holds after running ``appliance ARGV``."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=60, check=True
    )
    status, _, names = proc.stdout.strip().rpartition("\n")[2].partition(" ")
    return int(status), set(names.split())


def test_version_loads_nothing_heavy() -> None:
    """``appliance --version`` builds the whole parser: every command registers, lightly."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom appliance.cli import "
            "build_parser\nbuild_parser().parse_args(['decode', 'x.png'])\n"
            "print(' '.join(sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = {m.split(".")[0] for m in proc.stdout.split()}
    assert "appliance" in loaded
    assert loaded.isdisjoint(HEAVY), loaded & set(HEAVY)


def test_verify_of_a_text_loads_no_numpy_pil_or_flask(tmp_path: Path) -> None:
    """The verify TEXT path: the core verifier and cryptography, nothing for images or web."""
    from support import World

    w = World()
    w.editor.save(tmp_path / "trust.json")
    status, loaded = _loaded(
        "verify",
        "--trust-source",
        str(tmp_path / "trust.json"),
        "--at",
        "2027-01-15T08:00:00Z",
        w.issue(),
    )
    assert status == 0
    assert "cryptography" in loaded  # the child really verified a signature
    assert loaded.isdisjoint(
        {"numpy", "PIL", "flask", "werkzeug", "tuf", "zxingcpp", "pyzbar", "segno"}
    ), loaded
