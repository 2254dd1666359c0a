"""Configuration choice fields (issue 15): each is a ``Literal`` type, and loading refuses a
value outside it, naming the dotted key and the choices.

Before, ``device.mode = "Inspector"`` or ``scanner.backend = "zxng"`` loaded fine and failed
late (at the first frame) or ran as some other choice (a kiosk that was meant to show
holder details to an officer, a language the screens silently replaced with English).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from appliance.config import Config, config_from_mapping, load_config
from appliance.core.errors import ConfigError

# The fields whose value picks a behaviour; any other Literal field is checked as well.
EXPECTED = ("device.mode", "camera.source", "scanner.backend", "indicator.backend", "web.language")


def _literal_fields() -> list[str]:
    """Dotted names of every Literal field, found from the types."""
    found = []
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        hints = typing.get_type_hints(cls)
        found += [
            f"{section.name}.{f.name}"
            for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is Literal
        ]
    return found


FIELDS = sorted(set(EXPECTED) | set(_literal_fields()))


def _choices(dotted: str) -> tuple[tuple[str, ...], str]:
    """The choices and the default of a field; fails where the field is not a Literal."""
    table, key = dotted.split(".")
    cls = typing.get_type_hints(Config)[table]
    hint = typing.get_type_hints(cls)[key]
    assert typing.get_origin(hint) is Literal, f"{dotted} is {hint}, not a Literal of choices"
    default = next(f.default for f in dataclasses.fields(cls) if f.name == key)
    return typing.get_args(hint), default


def _write(tmp_path: Path, table: str, key: str, value: Any) -> Path:
    path = tmp_path / "appliance.toml"
    literal = f'"{value}"' if isinstance(value, str) else str(value).lower()
    path.write_text(f"[{table}]\n{key} = {literal}\n", encoding="utf-8")
    return path


def test_device_mode_choices() -> None:
    assert set(_choices("device.mode")[0]) == {"kiosk", "inspector"}


@pytest.mark.parametrize("dotted", FIELDS)
def test_every_choice_loads_and_the_default_is_one(tmp_path: Path, dotted: str) -> None:
    choices, default = _choices(dotted)
    assert default in choices
    table, key = dotted.split(".")
    for choice in choices:
        config = load_config(_write(tmp_path, table, key, choice))
        assert getattr(getattr(config, table), key) == choice


@pytest.mark.parametrize("dotted", FIELDS)
@pytest.mark.parametrize("bad", ["misspelt", "", "UPPER", " padded ", 1, True])
def test_a_value_outside_the_choices_is_refused_with_the_key_named(
    tmp_path: Path,
    dotted: str,
    bad: Any,
) -> None:
    choices, default = _choices(dotted)
    if bad == "UPPER":
        bad = default.upper()  # "Inspector"-style: close, but not the same choice
    elif bad == " padded ":
        bad = f" {default} "
    elif bad == "misspelt":
        bad = default[:-1] + "x"
    assert bad not in choices
    table, key = dotted.split(".")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, table, key, bad))
    message = str(caught.value)
    assert f"'{dotted}'" in message
    assert all(repr(c) in message for c in choices)


def test_inspector_mode_typo_is_refused_not_run_as_a_kiosk() -> None:
    """The reported case: a misspelt inspector device used to start as a walk-up kiosk."""
    with pytest.raises(ConfigError, match=r"device\.mode"):
        config_from_mapping({"device": {"mode": "inspecter"}})
    assert config_from_mapping({"device": {"mode": "inspector"}}).device.mode == "inspector"


def test_other_fields_still_accept_free_text() -> None:
    """Only the choice fields are closed: ids, names and paths stay free text."""
    config = config_from_mapping({"device": {"id": "ด่าน-7", "name": "anything at all"}})
    assert (config.device.id, config.device.name) == ("ด่าน-7", "anything at all")
