"""The device role's simulated camera (issue 24): ``appliance_camera_images_dir`` reaches
``[camera] images_dir`` of appliance.toml, so an image with the "images" camera is a pure
converge (without it the kiosk looked for ``demo/frames`` in its working directory).

The template is rendered with Jinja2 and the role's own defaults, the result loaded with
the appliance's loader, as the play's ``validate:`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_templates import ansible_env, resolve

from appliance.config import load_config

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "ansible/group_vars/all/appliance.yml"
TEMPLATE = REPO / "ansible/roles/config/templates/appliance.toml.j2"


def _render(tmp_path: Path, **overrides: Any) -> Path:
    env = ansible_env()
    values: dict[str, Any] = yaml.safe_load(DEFAULTS.read_text())
    values.update(
        ansible_managed="test",
        inventory_hostname="kiosk-01",
        appliance_device_id="kiosk-01",
        appliance_device_name="Kiosk 01",
        appliance_camera_source="images",
        appliance_indicator_backend="none",
        appliance_scanner_serial_device="",
    )
    values.update(overrides)
    values = resolve(values, keep=frozenset(overrides))
    path = tmp_path / "appliance.toml"
    path.write_text(env.from_string(TEMPLATE.read_text()).render(**values))
    return path


@pytest.mark.parametrize("folder", ["/opt/appliance/camera-images", "/srv/frames"])
def test_images_dir_reaches_the_configuration(tmp_path: Path, folder: str):
    config = load_config(_render(tmp_path, appliance_camera_images_dir=folder))
    assert config.camera.source == "images"
    assert config.camera.images_dir == Path(folder)


def test_without_the_variable_the_loader_default_stays(tmp_path: Path):
    assert yaml.safe_load(DEFAULTS.read_text())["appliance_camera_images_dir"] == ""
    text = _render(tmp_path).read_text()
    assert "images_dir" not in text
    assert load_config(tmp_path / "appliance.toml").camera.images_dir == Path("demo/frames")


def test_pictures_copied_only_with_a_source_and_a_folder():
    tasks = yaml.safe_load((REPO / "ansible/roles/config/tasks/main.yml").read_text())
    copy = next(t for t in tasks if "ansible.builtin.copy" in t)
    assert copy["ansible.builtin.copy"]["dest"] == "{{ appliance_camera_images_dir }}/"
    assert "appliance_camera_images_src | length > 0" in copy["when"]
