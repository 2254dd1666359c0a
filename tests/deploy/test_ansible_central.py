"""central.yml: syntax, and a real converge on a debootstrapped Bookworm root, twice.

The converge (hub, repository and publisher on one host, like a small agency) proves what
a chroot can: PostgreSQL, nginx and the central virtual environment installed (the hub
extra from wheels built here, offline), nginx's configuration accepted by `nginx -t`,
TLS key, tokens and the online timestamp key root-only, the offline keys absent, units
installed, enabled and silent under `systemd-analyze verify`, and a second run that
changes nothing. Starting services, creating the database role and the timer firing need
a booted system: `central_booted: false` switches those off. Packages never start in the
chroot (policy-rc.d) and Debian's first PostgreSQL cluster is not made there.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_ansible import (
    _bookworm_tarball,
    _env,
    _mirror_reachable,
    _recap,
    _tool,
    _wheelhouse,
)

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VAULT_PASSWORD = "central-converge-test-only"
AUDITOR_TOKEN = "auditor-" + "a1" * 20
ADMIN_TOKEN = "admin-" + "b2" * 20


def test_central_playbook_syntax_check():
    playbook = _tool("ansible-playbook")
    result = subprocess.run(
        [playbook, "--syntax-check", "-i", "inventory/central.example.yml", "central.yml"],
        cwd=ANSIBLE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _central_wheelhouse(dest: Path) -> Path:
    """The appliance wheel plus its dependencies and the hub extra (cached download)."""
    return _wheelhouse(dest, extras=("hub",), cache="wheels-central")


def _tls_pair(work: Path) -> tuple[Path, str]:
    """A self-signed certificate file and its private key PEM (the vault's value)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub.converge.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = work / "central-fullchain.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return path, pem


def _timestamp_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.strip().splitlines())


class Converged:
    def __init__(self, root: Path, runs: list[subprocess.CompletedProcess[str]]):
        self.root = root
        self.runs = runs

    def chroot(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["chroot", str(self.root), *argv], capture_output=True, text=True)


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> Converged:
    if os.geteuid() != 0:
        pytest.skip("the converge needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    playbook = _tool("ansible-playbook")
    vault = _tool("ansible-vault")
    reason = _mirror_reachable()
    if reason:
        pytest.skip(reason)

    work = tmp_path_factory.mktemp("converge-central")
    root = work / "root"
    root.mkdir()
    with tarfile.open(_bookworm_tarball()) as tar:
        tar.extractall(root, filter="fully_trusted")
    shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # Nothing a package installs may start inside the chroot (it would bind the host's ports).
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # initdb needs /dev/shm; a booted host makes Debian's first cluster as usual.
    (root / "etc/postgresql-common").mkdir(parents=True, exist_ok=True)
    (root / "etc/postgresql-common/createcluster.conf").write_text("create_main_cluster = false\n")

    cert_file, tls_key = _tls_pair(work)
    enrolled = work / "enrolled"
    enrolled.mkdir()
    (enrolled / "kiosk-01.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nconverge\n-----END PUBLIC KEY-----\n"
    )
    password_file = work / "vault-password"
    password_file.write_text(VAULT_PASSWORD)
    secrets = work / "vault.yml"
    secrets.write_text(
        f"vault_central_hub_auditor_token: {AUDITOR_TOKEN}\n"
        f"vault_central_hub_admin_token: {ADMIN_TOKEN}\n"
        f"vault_central_tls_private_key: |\n{_indent(tls_key)}"
        f"vault_central_timestamp_key: |\n{_indent(_timestamp_key())}"
    )
    subprocess.run(
        [vault, "encrypt", "--vault-password-file", str(password_file), str(secrets)],
        check=True,
        capture_output=True,
        env=_env(),
    )

    inventory = work / "inventory.yml"
    host = (
        "        converge:\n"
        f"          ansible_host: {root}\n"
        "          ansible_connection: community.general.chroot\n"
        "          ansible_python_interpreter: /usr/bin/python3\n"
        "          ansible_become: false\n"
        "          ansible_user: root\n"
        # Host variables: the playbook's group_vars/central would beat inventory group vars.
        "          central_booted: false\n"
        "          central_pip_offline: true\n"
        f"          central_wheelhouse: {_central_wheelhouse(work / 'wheelhouse')}\n"
        f"          central_tls_certificate_file: {cert_file}\n"
        f"          hub_app_enrolled_dir: {enrolled}\n"
    )
    inventory.write_text(
        "central:\n"
        "  children:\n"
        "    hub:\n      hosts:\n" + host + "    repository:\n      hosts:\n        converge:\n"
        "    publisher:\n      hosts:\n        converge:\n"
    )
    command = [
        playbook,
        "-i",
        str(inventory),
        "-e",
        f"@{secrets}",
        "--vault-password-file",
        str(password_file),
        str(ANSIBLE_DIR / "central.yml"),
    ]
    runs = []
    start = time.monotonic()
    for _ in range(2):
        run = subprocess.run(
            command, cwd=ANSIBLE_DIR, env=_env(), capture_output=True, text=True, timeout=3600
        )
        runs.append(run)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    print(f"central converge: two runs took {time.monotonic() - start:.0f} s")
    return Converged(root, runs)


@pytest.mark.slow
def test_converge_changes_then_changes_nothing(converged: Converged):
    first, second = (_recap(run.stdout) for run in converged.runs)
    assert first["failed"] == 0 and first["unreachable"] == 0 and first["changed"] > 0
    assert second["changed"] == 0, converged.runs[1].stdout[-6000:]


@pytest.mark.slow
def test_packages_and_the_hub_environment(converged: Converged):
    packages = ["postgresql", "nginx", "python3-venv"]
    result = converged.chroot("dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages)
    assert sorted(result.stdout.splitlines()) == sorted(f"{p} installed" for p in packages)
    result = converged.chroot(
        "/opt/appliance/venv/bin/python",
        "-c",
        "import appliance, appliance_sync, gunicorn, psycopg",
    )
    assert result.returncode == 0, result.stderr
    assert (converged.root / "opt/appliance/venv/bin/gunicorn").exists()


@pytest.mark.slow
def test_nginx_accepts_both_sites(converged: Converged):
    enabled = converged.root / "etc/nginx/sites-enabled"
    assert sorted(p.name for p in enabled.iterdir()) == [
        "appliance-hub.conf",
        "appliance-trust.conf",
    ]
    result = converged.chroot("/usr/sbin/nginx", "-t")
    assert result.returncode == 0, result.stderr
    key = converged.root / "etc/nginx/tls/central.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_uid == 0


@pytest.mark.slow
def test_secrets_root_only_and_offline_keys_absent(converged: Converged):
    root = converged.root
    secrets = root / "etc/appliance-hub/secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert (secrets / "auditor_token").read_text() == AUDITOR_TOKEN
    assert (secrets / "admin_token").read_text() == ADMIN_TOKEN
    # No accounts in this vault: the credential the unit loads exists, empty (no login).
    users = secrets / "hub_users"
    assert users.read_text() == "" and stat.S_IMODE(users.stat().st_mode) == 0o600
    env = (root / "etc/appliance-hub/hub.env").read_text()
    assert "APPLIANCE_HUB_TRUSTED_PROXIES=1" in env
    assert "APPLIANCE_HUB_DB=postgresql://appliance-hub@/appliance_hub?host=/run/postgresql" in env
    assert AUDITOR_TOKEN not in env and ADMIN_TOKEN not in env
    keys = root / "etc/appliance-publisher/online-keys"
    assert sorted(p.name for p in keys.iterdir()) == ["timestamp.pem"]
    assert stat.S_IMODE((keys / "timestamp.pem").stat().st_mode) == 0o600
    found = subprocess.run(
        ["find", str(root), "-xdev", "(", "-name", "root.pem", "-o", "-name", "targets.pem", ")"],
        capture_output=True,
        text=True,
    )
    assert found.stdout == "", "offline keys must never reach a central host"
    assert (root / "var/lib/appliance-hub/devices/kiosk-01.pem").exists()
    publisher_uid = int(converged.chroot("id", "-u", "appliance-publisher").stdout)
    assert (root / "srv/appliance-trust/lc1/metadata").stat().st_uid == publisher_uid


@pytest.mark.slow
def test_units_installed_enabled_and_verified(converged: Converged):
    etc = converged.root / "etc/systemd/system"
    assert (etc / "multi-user.target.wants/appliance-hub.service").is_symlink()
    assert (etc / "timers.target.wants/appliance-publish-timestamp.timer").is_symlink()
    units = [
        "appliance-hub.service",
        "appliance-publish-timestamp.service",
        "appliance-publish-timestamp.timer",
    ]
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={converged.root}", *units],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )
