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


# One line per profile module; each exposes ``PROFILE``.
PROFILE_MODULES: tuple[str, ...] = (
    "appliance.core.credential.lc1",
    "appliance.core.credential.lp1",
    "appliance.core.credential.hc1",
    "appliance.core.credential.shc",
)


@cache
def profiles() -> tuple[Profile, ...]:
    return tuple(importlib.import_module(name).PROFILE for name in PROFILE_MODULES)


def find_profile(text: str) -> Profile | None:
    for profile in profiles():
        if text.startswith(profile.prefix):
            return profile
    return None
