"""Profiles register by QR-text prefix, so new formats never touch the verifier."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Protocol

from appliance.core.credential.model import Opened


class Profile(Protocol):
    name: str
    prefix: str

    def open(self, text: str) -> Opened:
        """Decode the outer layers; raise ``Rejection`` with the reason on failure."""
        ...


# One line per profile: its QR-text prefix and its module, which exposes ``PROFILE`` (with
# that prefix: tests/security/test_sec_verify_speed.py checks). A text loads only the
# module of its prefix, so verifying an LC1 code imports no HC1, SHC or LP1 code.
PROFILE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("LC1:", "appliance.core.credential.lc1"),
    ("LP1:", "appliance.core.credential.lp1"),
    ("HC1:", "appliance.core.credential.hc1"),
    ("shc:/", "appliance.core.credential.shc"),
)
PROFILE_MODULES: tuple[str, ...] = tuple(module for _, module in PROFILE_PREFIXES)


@cache
def profiles() -> tuple[Profile, ...]:
    return tuple(_profile(module) for module in PROFILE_MODULES)


@cache
def _profile(module: str) -> Profile:
    return importlib.import_module(module).PROFILE  # type: ignore[no-any-return]


def find_profile(text: str) -> Profile | None:
    for prefix, module in PROFILE_PREFIXES:
        if text.startswith(prefix):
            return _profile(module)
    return None
