"""The hub's login accounts: one file of ``NAME ROLE HASH`` lines, named in the settings.

ROLE is ``admin`` or ``auditor``; HASH is a werkzeug scrypt (or pbkdf2) hash, never a
password. The file is re-read when it changes, so provisioning adds or removes an auditor
without a restart; a malformed line disables only that account (logged, not shown). Make a
line with ``python -m appliance_hub.auth_users NAME ROLE`` (asks for the password twice,
or reads it from a pipe).
"""

from __future__ import annotations

import getpass
import logging
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import generate_password_hash

from appliance.webauth import passwords

log = logging.getLogger(__name__)

ROLES = ("admin", "auditor")
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Account:
    name: str
    role: str


class HubUsers:
    """The accounts of a users file (see module doc); ``None`` path: logins disabled."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._accounts: dict[str, tuple[str, str]] = {}

    def _load(self) -> dict[str, tuple[str, str]]:
        if self.path is None:
            return {}
        try:
            st = self.path.stat()
            stamp = (st.st_mtime, st.st_size)
            with self._lock:
                if stamp == self._stamp:
                    return self._accounts
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            log.error("hub users file unreadable, logins disabled: %s", type(e).__name__)
            return {}
        accounts = parse(text)
        with self._lock:
            self._stamp, self._accounts = stamp, accounts
        return accounts

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account when ``password`` matches its hash; same work for unknown names."""
        entry = self._load().get(name.strip().lower())
        stored = entry[1] if entry else None
        if passwords.check(stored, password) and entry is not None:
            return Account(name.strip().lower(), entry[0])
        return None

    def role(self, name: str) -> str | None:
        """The role a name has now (a session ends when its account is removed)."""
        entry = self._load().get(name)
        return entry[0] if entry else None


def parse(text: str) -> dict[str, tuple[str, str]]:
    """name -> (role, hash) of the well-formed lines; bad lines are logged by number."""
    accounts: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if (
            len(fields) != 3
            or not NAME.fullmatch(fields[0])
            or fields[1] not in ROLES
            or not passwords.usable_hash(fields[2])
            or fields[0] in accounts
        ):
            log.error(
                "hub users file line %d ignored: expected NAME ROLE HASH "
                "(admin|auditor, a werkzeug scrypt hash, each name once)",
                number,
            )
            continue
        accounts[fields[0]] = (fields[1], fields[2])
    return accounts


def line(name: str, role: str, password: str) -> str:
    """A users-file line for ``name`` in ``role`` with a fresh scrypt hash."""
    if not NAME.fullmatch(name) or role not in ROLES:
        raise ValueError("name: lower-case letters, digits, . _ -; role: admin or auditor")
    return f"{name} {role} {generate_password_hash(password, method='scrypt')}"


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance_hub.auth_users NAME ROLE``: print a users-file line.

    At a terminal the password is asked twice, unechoed; piped (``... < file``, a secret
    store) it is the first line of standard input. Ctrl-C (130) and Ctrl-D or an empty
    input (1) end it with one line on stderr, never a traceback, and no users-file line.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m appliance_hub.auth_users NAME admin|auditor", file=sys.stderr)
        return 64
    if not NAME.fullmatch(args[0]) or args[1] not in ROLES:  # before asking for a password
        print("name: lower-case letters, digits, . _ -; role: admin or auditor", file=sys.stderr)
        return 64
    end_prompt = "\n" if sys.stdin.isatty() else ""  # the prompt's line is still open
    try:
        password = _ask_password()
    except KeyboardInterrupt:
        print(f"{end_prompt}interrupted: no account line written", file=sys.stderr)
        return 130
    except EOFError:
        print(
            f"{end_prompt}no password given (end of input): no account line written",
            file=sys.stderr,
        )
        return 1
    if password is None:
        print("passwords differ", file=sys.stderr)
        return 1
    if len(password) < 12:
        print("password shorter than 12 characters", file=sys.stderr)
        return 1
    print(line(args[0], args[1], password))
    return 0


def _ask_password() -> str | None:
    """The password, or None when the terminal's two entries differ; ``EOFError`` when
    there is none to read."""
    if not sys.stdin.isatty():
        piped = sys.stdin.readline(4096)
        if not piped.strip():
            raise EOFError
        return piped.rstrip("\r\n")
    first = getpass.getpass("password: ")
    return first if first == getpass.getpass("again: ") else None


if __name__ == "__main__":
    raise SystemExit(main())
