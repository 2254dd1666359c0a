"""appliance: verify licence QR codes offline, and run, sync and audit the kiosk.

Exit statuses follow spec LC1 s.7: usage errors and unreadable trust data exit 64
(argparse's default of 2 would collide with UNVERIFIABLE). Every failure is one line on
standard error; an unexpected exception (a bug) is one line too, with exit 70 (EX_SOFTWARE),
and ``-v`` adds its traceback. Command modules import their heavy dependencies inside
their run functions, so ``--version`` and ``verify TEXT`` load neither numpy, PIL nor Flask;
a command line that names its command builds (and imports) that command's parser alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from appliance import __version__
from appliance.commands import COMMAND_MODULES
from appliance.core.errors import ApplianceError, UsageError

EXIT_USAGE = 64
EXIT_SOFTWARE = 70  # an exception no command expected: a bug, reported in one line
# Commands that run as services log their progress; one-shot commands only warnings.
DAEMON_COMMANDS = frozenset({"run", "web", "hub", "demo", "sync", "upload", "mdl-radio"})


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises instead of exiting 2 on bad usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only`` (a command module), that command's alone."""
    parser = _Parser(
        prog="appliance",
        description=__doc__.splitlines()[0],
        epilog="example: appliance verify --trust-source trust.json LC1:...; "
        "'appliance COMMAND --help' documents each command.",
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES if only is None else (only,):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # command not built yet on this branch
                continue
            raise
        module.register(subparsers)
    return parser


def _command_module(argv: Sequence[str]) -> str | None:
    """The module of the command ``argv`` names, when it names one (issue 13: a one-text
    ``verify`` need not import sixteen other commands); None means the whole parser, for
    ``--help``, ``--version`` and usage errors that list every command."""
    for arg in argv:
        if arg in ("-v", "--verbose"):
            continue
        if arg.startswith("-"):
            return None
        module = f"appliance.commands.{arg.replace('-', '_')}"
        return module if "_" not in arg and module in COMMAND_MODULES else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        args = build_parser(_command_module(argv)).parse_args(argv)
    except UsageError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    long_running = args.command in DAEMON_COMMANDS
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if long_running else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"appliance {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ApplianceError as e:
        print(f"appliance {args.command}: {e}", file=sys.stderr)
        return getattr(e, "exit_status", 1)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # the contract: one line, never a traceback
        logging.getLogger(__name__).debug("unexpected failure", exc_info=True)
        print(
            f"appliance {args.command}: internal error ({type(e).__name__}: {e}); "
            "this is a bug, -v shows where",
            file=sys.stderr,
        )
        return EXIT_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
