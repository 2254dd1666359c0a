"""Jinja2 as Ansible renders the project's templates, for tests that render one offline.

Only the filters the templates use: ``to_json`` and ``bool`` (Ansible's truthy strings).
"""

from __future__ import annotations

import json
from typing import Any

import jinja2


def ansible_bool(value: Any) -> bool:
    """Ansible's ``| bool``: a bool as is, else the truthy strings "true", "yes", "1", "on"."""
    return (
        value
        if isinstance(value, bool)
        else str(value).strip().lower() in {"true", "yes", "1", "on"}
    )


def ansible_env() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(to_json=json.dumps, bool=ansible_bool)
    return env


def resolve(values: dict[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Variables that name other variables (``"{{ ... }}"`` defaults) rendered as Ansible
    would, a few rounds deep; ``keep`` are given values, never re-rendered."""
    env = ansible_env()
    values = dict(values)
    for _ in range(4):
        for key, value in list(values.items()):
            if isinstance(value, str) and "{{" in value and key not in keep:
                try:
                    values[key] = env.from_string(value).render(values)
                except jinja2.UndefinedError:
                    continue
    return values
