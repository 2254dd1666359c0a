"""Fixtures of the mdoc tests: the Annex D vectors through the shared-data fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from annexd import AnnexD, annexd_from


@pytest.fixture(scope="session")
def annexd(shared_data: Path) -> AnnexD:
    return annexd_from(shared_data)
