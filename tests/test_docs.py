"""Every command is documented: in the README's command table and with --help."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


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
