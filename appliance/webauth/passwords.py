"""Checking a password against a stored werkzeug hash, the same way for every login.

Only salted, slow hash methods are accepted (scrypt, pbkdf2): a file holding a plain
password or anything else is treated as "no password provisioned", never compared as text.
When there is no hash to check (an unknown user), a dummy hash is checked all the same, so
the time taken does not say which names exist.
"""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

MAX_PASSWORD_CHARS = 1024  # scrypt's cost grows with the input: bound what a form may send
ACCEPTED_METHODS = ("scrypt:", "pbkdf2:")
_DUMMY = generate_password_hash("no such user: spend the same time", method="scrypt")


def usable_hash(stored: str) -> bool:
    """True when ``stored`` looks like a werkzeug hash of an accepted method."""
    return stored.startswith(ACCEPTED_METHODS) and stored.count("$") == 2


def check(stored: str | None, password: str) -> bool:
    """True only when ``stored`` is a usable hash and ``password`` matches it."""
    password = password[:MAX_PASSWORD_CHARS]
    if stored is None or not usable_hash(stored):
        check_password_hash(_DUMMY, password)
        return False
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        return False
