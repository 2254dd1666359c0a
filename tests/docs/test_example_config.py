"""docs/examples/appliance.toml names every configuration key with its true default.

The example is read by the real loader (so it stays valid) and compared, key by key, with
the dataclasses in appliance/config.py (so a new, renamed or re-defaulted key fails here).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from appliance.config import Config, config_from_mapping, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "appliance.toml"
SECTION = re.compile(r"^\[(\w+)\]\s*$")
KEY = re.compile(r"^(#\s*)?(\w+)\s*=\s*\S")


def _toml(value: Any) -> str:
    """How the example writes a default."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return repr(value)


def _documented_keys() -> dict[str, tuple[bool, str]]:
    """dotted key -> (written active, the comment block above it)."""
    keys: dict[str, tuple[bool, str]] = {}
    section, comments = "", []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if m := SECTION.match(line):
            section, comments = m.group(1), []
        elif (m := KEY.match(line)) and section:
            keys[f"{section}.{m.group(2)}"] = (m.group(1) is None, " ".join(comments))
            comments = []
        elif line.startswith("#"):
            comments.append(line.lstrip("# "))
        else:
            comments = []
    return keys


def _defaults() -> dict[str, Any]:
    config = Config()
    return {
        f"{section.name}.{f.name}": getattr(getattr(config, section.name), f.name)
        for section in dataclasses.fields(Config)
        for f in dataclasses.fields(getattr(config, section.name))
    }


def test_example_loads_with_the_real_loader() -> None:
    config = load_config(EXAMPLE)
    assert config.camera.source == "picamera2"
    assert config.sync.root == Path("/etc/appliance/root.json")


def test_example_names_every_key_and_no_other() -> None:
    assert set(_documented_keys()) == set(_defaults())


def test_each_key_states_its_true_default() -> None:
    documented = _documented_keys()
    wrong = [
        f"{key}: expected 'Default: {_toml(default)}' in {documented[key][1]!r}"
        for key, default in _defaults().items()
        if f"Default: {_toml(default)}" not in documented[key][1]
    ]
    assert wrong == []


def test_keys_without_a_toml_default_are_commented_out_and_valid_when_set() -> None:
    documented = _documented_keys()
    defaults = _defaults()
    commented = {k for k, (active, _) in documented.items() if not active}
    assert commented == {k for k, v in defaults.items() if v is None} - {
        "sync.root",
        "upload.hub_key",
    }
    text = re.sub(r"^#\s*(\w+\s*=)", r"\1", EXAMPLE.read_text(encoding="utf-8"), flags=re.M)
    import tomllib

    raw = tomllib.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    config = config_from_mapping(raw, base_dir=EXAMPLE.parent)
    assert config.indicator.buzzer_pin is not None and config.camera.video_file is not None
