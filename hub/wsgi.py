"""The hub as a WSGI application for gunicorn: ``gunicorn 'appliance_hub.wsgi:create()'``.

Settings come from the environment the unit loads (/etc/appliance-hub/hub.env) and the
bearer tokens from systemd credentials, so no secret is in the environment or argv:

- ``APPLIANCE_HUB_DB``: SQLite path or ``postgresql://...`` (peer authentication).
- ``APPLIANCE_HUB_DEVICES``: folder of enrolled device keys (``DEVICE_ID.pem``).
- ``APPLIANCE_HUB_POLICY`` (optional): a JSON file with the published ``policy`` (the trust
  source or ``manifest.json``); uploads from its ``disabled_devices`` are refused (403).
- ``$CREDENTIALS_DIRECTORY/auditor_token`` and ``admin_token`` (either may be absent).
- ``$CREDENTIALS_DIRECTORY/hub_ack_key``: the hub's signing key (``appliance hub keygen``);
  it signs every acknowledgement, and devices pinning its public half (``[upload]
  hub_key``) mark nothing uploaded without it. Absent: acknowledgements are unsigned.
- ``$CREDENTIALS_DIRECTORY/hub_users`` (or the file ``APPLIANCE_HUB_USERS`` names): the
  screens' accounts, ``NAME ROLE HASH`` lines (``appliance_hub.auth_users``); without it
  the login pages answer but no one can log in.
- ``APPLIANCE_HUB_TRUSTED_PROXIES`` (default 0; 1 behind nginx): proxies whose
  X-Forwarded-For names the client, so a failing client's login delay is its own.

Each gunicorn worker calls ``create()`` and opens its own store; the schema migrates once
(an advisory lock on PostgreSQL). Importing this module does nothing by itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from appliance.audit.head import HubSigner
from appliance.core.errors import ApplianceError
from appliance_hub.auth import HubLogins
from appliance_hub.auth_users import HubUsers
from appliance_hub.policy import DisabledDevices
from appliance_hub.server import create_app
from appliance_hub.store import HubStore


def _token(credentials: str | None, name: str) -> str | None:
    if not credentials:
        return None
    try:
        token = (Path(credentials) / name).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ApplianceError(f"cannot read credential {name}: {e.strerror or e}") from e
    return token or None


def app_from_environment(env: Mapping[str, str]) -> Flask:
    """The hub configured by ``env`` (os.environ under gunicorn)."""
    missing = [k for k in ("APPLIANCE_HUB_DB", "APPLIANCE_HUB_DEVICES") if not env.get(k)]
    if missing:
        raise ApplianceError(f"set {' and '.join(missing)} (see /etc/appliance-hub/hub.env)")
    credentials = env.get("CREDENTIALS_DIRECTORY")
    policy = env.get("APPLIANCE_HUB_POLICY")
    return create_app(
        HubStore(env["APPLIANCE_HUB_DB"]),
        Path(env["APPLIANCE_HUB_DEVICES"]),
        _token(credentials, "auditor_token"),
        admin_token=_token(credentials, "admin_token"),
        disabled_devices=DisabledDevices(Path(policy)) if policy else frozenset,
        logins=hub_logins(env),
        trusted_proxies=_proxies(env),
        ack_key=_ack_key(credentials),
    )


def _ack_key(credentials: str | None) -> HubSigner | None:
    """The hub's signing key from its systemd credential, None (with a warning) when absent."""
    path = Path(credentials) / "hub_ack_key" if credentials else None
    if path is None or not path.exists():
        logging.getLogger(__name__).warning(
            "no hub_ack_key credential: acknowledgements are unsigned and devices that pin "
            "the hub key mark nothing uploaded"
        )
        return None
    return HubSigner.load(path)


def hub_logins(env: Mapping[str, str]) -> HubLogins:
    """The screens' accounts: ``APPLIANCE_HUB_USERS``, else the ``hub_users`` credential."""
    named = env.get("APPLIANCE_HUB_USERS")
    credentials = env.get("CREDENTIALS_DIRECTORY")
    path = Path(named) if named else Path(credentials) / "hub_users" if credentials else None
    return HubLogins(HubUsers(path), time.time)


def _proxies(env: Mapping[str, str]) -> int:
    text = env.get("APPLIANCE_HUB_TRUSTED_PROXIES", "0").strip() or "0"
    if not text.isdigit() or int(text) > 4:
        raise ApplianceError("APPLIANCE_HUB_TRUSTED_PROXIES must be a number from 0 to 4")
    return int(text)


def create() -> Flask:
    """gunicorn's application factory (``appliance_hub.wsgi:create()``)."""
    return app_from_environment(os.environ)
