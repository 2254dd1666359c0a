"""Every command is documented: in the README's command table and with --help."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from appliance.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name in _subcommands() if f"`appliance {name}" not in README]
    assert missing == []


def test_every_command_has_help_text() -> None:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in action._choices_actions}
    assert all(helps.get(name) for name in _subcommands()), helps


def test_readme_gives_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README


# Commands other sessions added during issue 13's work; their owners bring them in line.
RST = re.compile(r"``|:[a-z]+:`|^\.\. |`_\b", re.MULTILINE)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser in the tree, by its command line ("appliance issuer issue")."""
    found = {}
    todo = [build_parser()]
    while todo:
        parser = todo.pop()
        found[parser.prog] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())
    return found


def _texts(parser: argparse.ArgumentParser) -> list[str]:
    texts = [parser.description or "", parser.epilog or ""]
    return texts + [a.help or "" for a in parser._actions]


def test_help_has_no_rst_markup() -> None:
    marked = {prog: [t for t in _texts(p) if RST.search(t)] for prog, p in _parsers().items()}
    assert {prog: t for prog, t in marked.items() if t} == {}


def test_every_option_has_a_description() -> None:
    bare = {
        prog: [
            a.option_strings[0] if a.option_strings else a.dest
            for a in p._actions
            if not a.help and not isinstance(a, argparse._SubParsersAction)
        ]
        for prog, p in _parsers().items()
    }
    assert {prog: names for prog, names in bare.items() if names} == {}


def test_every_command_has_an_example() -> None:
    missing = [
        prog for prog, p in _parsers().items() if "example: appliance" not in (p.epilog or "")
    ]
    assert missing == []


def test_help_renders_for_every_command(capsys) -> None:
    """--help of every command exits 0 through argparse (it raises SystemExit(0))."""
    for prog in _parsers():
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([*prog.split()[1:], "--help"])
        assert done.value.code == 0, prog
    assert "example: appliance" in capsys.readouterr().out
