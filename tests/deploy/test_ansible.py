"""The Ansible playbook: lint, syntax, and a real converge on a debootstrapped Bookworm root.

The converge proves what a chroot can: packages, the virtual environment (installed from
wheels built here, offline), the configuration (validated by the appliance's own loader),
units and timers enabled, the boot block, time zone, SSH and secrets in place, and a second
run that changes nothing. It runs twice, on copies of one debootstrapped root, with the
board detected by the play (issue 14):

- "pi": a Raspberry Pi Zero 2 W on plain Debian (a device-tree model file and a Pi OS
  config.txt in the root, no raspi.list) in the walk-up configuration without a display,
  reading mDLs: boot block and Bluetooth block, the Raspberry Pi archive's deb822 sources
  and key, no display unit, the mDL radio service and the kiosk's drop-in for it;
- "board": another board (neither file) with a display and mDL off: no boot fragment,
  camera none and a serial scanner, the kiosk's scanner drop-in, the display unit; the mDL
  units an earlier run with mDL on left behind (and the drop-in of earlier versions) are
  taken away.

It cannot prove anything that needs a booted system or a Pi (services starting, reboot,
picamera2 installed from the Raspberry Pi archive, which this chroot cannot reach): those
tasks are switched off by `appliance_booted: false` and `appliance_pi_packages_install: false`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent
MIRROR = os.environ.get("APPLIANCE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(
    os.environ.get("APPLIANCE_TEST_CACHE", Path(tempfile.gettempdir()) / "appliance-test-cache")
)
VAULT_PASSWORD = "converge-test-only"  # a throw-away vault for the test


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_HOST_KEY_CHECKING"] = "0"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env["NO_COLOR"] = "1"
    return env


def test_ansible_lint_production_profile():
    lint = _tool("ansible-lint")
    result = subprocess.run(
        [lint, "--profile", "production", "--nocolor"],
        cwd=ANSIBLE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_playbook_syntax_check():
    playbook = _tool("ansible-playbook")
    result = subprocess.run(
        [playbook, "--syntax-check", "-i", "inventory/hosts.example.yml", "site.yml"],
        cwd=ANSIBLE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_boot_fragment_opens_with_all_section():
    lines = [ln for ln in (REPO / "firmware" / "config.txt").read_text().splitlines() if ln]
    assert lines[0] == "[all]"
    assert not any(ln.startswith("[") for ln in lines[1:]), "one section only: [all]"


# --- converge -------------------------------------------------------------------------

PI_OS_CONFIG_TXT = """\
# For more options and information see http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
arm_64bit=1

[cm4]
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
"""


def _mirror_reachable() -> str | None:
    url = f"{MIRROR}/dists/bookworm/Release"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read(64)
    except OSError as e:
        return f"Debian mirror {MIRROR} unreachable ({e}); set APPLIANCE_DEBIAN_MIRROR"
    return None


def _bookworm_tarball() -> Path:
    """A minimal Bookworm root (debootstrap minbase + python3), cached as a tarball."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / "bookworm-minbase-python3.tar"
    if tarball.exists():
        return tarball
    build = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE))
    try:
        result = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3",
                "bookworm",
                str(build),
                MIRROR,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if result.returncode != 0:
            pytest.skip(f"debootstrap failed (mirror {MIRROR}): {result.stderr[-500:]}")
        partial = tarball.with_suffix(".tmp")
        with tarfile.open(partial, "w") as tar:
            tar.add(build, arcname=".")
        partial.rename(tarball)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return tarball


def _wheelhouse(dest: Path, extras: tuple[str, ...] = (), cache: str = "wheels") -> Path:
    """The appliance wheel built here plus the wheels of its dependencies and of
    ``extras`` (downloads cached in ``CACHE / cache``)."""
    deps_dir = CACHE / cache
    deps_dir.mkdir(parents=True, exist_ok=True)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = [
        *project["dependencies"],
        *(d for extra in extras for d in project["optional-dependencies"][extra]),
    ]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            str(deps_dir),
            *deps,
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    dest.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(dest),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    for wheel in deps_dir.glob("*.whl"):
        shutil.copy2(wheel, dest / wheel.name)
    return dest


def _password_hash() -> str:
    """A real werkzeug hash: the play refuses placeholders and hashes of the wrong shape."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash("converge test admin passphrase")


def _keygen_available() -> bool:
    appliance = BIN / "appliance"
    if not appliance.exists():
        return False
    result = subprocess.run([str(appliance), "device", "keygen", "--help"], capture_output=True)
    return result.returncode == 0


class Converged:
    def __init__(
        self, variant: str, root: Path, runs: list[subprocess.CompletedProcess[str]], seconds: float
    ):
        self.variant = variant
        self.is_pi = variant == "pi"
        self.root = root
        self.runs = runs
        self.seconds = seconds

    def chroot(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["chroot", str(self.root), *argv], capture_output=True, text=True)


def _recap(output: str) -> dict[str, int]:
    match = re.search(r"converge\s+:\s+(.*)", output.split("PLAY RECAP", 1)[-1])
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


PI_MODEL = "Raspberry Pi Zero 2 W Rev 1.0\0"  # as the kernel gives it, NUL-terminated
# The mDL units in /etc/systemd/system (the radio's wants link is a file here: only its
# removal is checked).
MDL_LEFTOVERS = {
    "etc/systemd/system/appliance-mdl-radio.service": "[Service]\n",
    "etc/systemd/system/multi-user.target.wants/appliance-mdl-radio.service": "[Service]\n",
    "etc/systemd/system/appliance-kiosk.service.d/mdl-radio.conf": "[Service]\n",
    "etc/systemd/system/appliance-kiosk.service.d/mdl-bluetooth.conf": "[Service]\n",
}


@pytest.fixture(scope="module")
def bookworm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One extracted root per test run; each variant converges a reflink copy of it."""
    if os.geteuid() != 0:
        pytest.skip("the converge needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    reason = _mirror_reachable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("bookworm") / "root"
    root.mkdir()
    with tarfile.open(_bookworm_tarball()) as tar:
        tar.extractall(root, filter="fully_trusted")
    shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
    return root


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _wheelhouse(tmp_path_factory.mktemp("wheels") / "wheelhouse", extras=("mdl",))


@pytest.fixture(scope="module", params=["pi", "board"])
def converged(
    request: pytest.FixtureRequest,
    bookworm_root: Path,
    wheelhouse: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Converged:
    variant: str = request.param
    playbook = _tool("ansible-playbook")
    vault = _tool("ansible-vault")

    work = tmp_path_factory.mktemp(f"converge-{variant}")
    root = work / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(bookworm_root), str(root)], check=True)
    if variant == "pi":
        model = root / "sys" / "firmware" / "devicetree" / "base" / "model"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_text(PI_MODEL)
        (root / "boot" / "firmware").mkdir(parents=True, exist_ok=True)
        (root / "boot" / "firmware" / "config.txt").write_text(PI_OS_CONFIG_TXT)
    else:  # what a run with mDL on, or an earlier version, left: mDL is off now
        for path, text in MDL_LEFTOVERS.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)

    trust_root = work / "root.json"
    trust_root.write_text('{"signed": {"_type": "root"}, "signatures": []}\n')
    password_file = work / "vault-password"
    password_file.write_text(VAULT_PASSWORD)
    secrets = work / "vault.yml"
    secrets.write_text(
        "vault_appliance_audit_hmac_key: " + "ab" * 32 + "\n"
        f"vault_appliance_admin_password_hash: '{_password_hash()}'\n"
    )
    subprocess.run(
        [vault, "encrypt", "--vault-password-file", str(password_file), str(secrets)],
        check=True,
        capture_output=True,
        env=_env(),
    )
    assert secrets.read_text().startswith("$ANSIBLE_VAULT")

    # The board is not named: the play detects it from the files above.
    inventory = work / "inventory.yml"
    inventory.write_text(
        "appliances:\n"
        "  hosts:\n"
        "    converge:\n"
        f"      ansible_host: {root}\n"
        "      ansible_connection: community.general.chroot\n"
        "      ansible_python_interpreter: /usr/bin/python3\n"
        "      ansible_become: false\n"
        "      ansible_user: root\n"
        "      appliance_booted: false\n"
        "      appliance_pi_packages_install: false\n"
        f"      appliance_display: {'false' if variant == 'pi' else 'true'}\n"
        + ("      appliance_buzzer_pin: 18\n" if variant == "pi" else "")
        + f"      appliance_mdl_enabled: {'true' if variant == 'pi' else 'false'}\n"
        + "      appliance_pip_offline: true\n"
        f"      appliance_wheelhouse: {wheelhouse}\n"
        f"      appliance_trust_root_file: {trust_root}\n"
        f"      appliance_enrol_dir: {work / 'enrolled'}\n"
        f"      appliance_device_keygen: {str(_keygen_available()).lower()}\n"
        "      appliance_device_name: Converge test\n"
    )
    command = [
        playbook,
        "-i",
        str(inventory),
        "-e",
        f"@{secrets}",
        "--vault-password-file",
        str(password_file),
        str(ANSIBLE_DIR / "site.yml"),
    ]
    runs = []
    start = time.monotonic()
    for _ in range(2):
        run = subprocess.run(
            command, cwd=ANSIBLE_DIR, env=_env(), capture_output=True, text=True, timeout=3600
        )
        runs.append(run)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    seconds = time.monotonic() - start
    print(f"converge ({variant}): two runs took {seconds:.0f} s")
    return Converged(variant, root, runs, seconds)


@pytest.mark.slow
def test_converge_first_run_changes_and_succeeds(converged: Converged):
    recap = _recap(converged.runs[0].stdout)
    assert recap["failed"] == 0 and recap["unreachable"] == 0
    assert recap["changed"] > 0


@pytest.mark.slow
def test_second_run_changes_nothing(converged: Converged):
    recap = _recap(converged.runs[1].stdout)
    assert recap["changed"] == 0, converged.runs[1].stdout[-6000:]


@pytest.mark.slow
def test_system_packages_installed(converged: Converged):
    packages = [
        "libzbar0",
        "fonts-thai-tlwg",
        "python3-venv",
        "systemd-timesyncd",
        "openssh-server",
        "tzdata",
    ]
    display = ["chromium", "cage"]
    if not converged.is_pi:  # the board has a display; the Pi is the LEDs-only walk-up
        packages += display
    result = converged.chroot("dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\n")[:-1]) == sorted(f"{p} installed" for p in packages)
    if converged.is_pi:
        for name in display:
            query = converged.chroot("dpkg-query", "-W", "-f=${db:Status-Status}", name)
            assert query.stdout != "installed", f"{name} installed without a display"


@pytest.mark.slow
def test_venv_sees_system_packages_and_runs_the_appliance(converged: Converged):
    cfg = (converged.root / "opt/appliance/venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    result = converged.chroot("/opt/appliance/venv/bin/appliance", "--version")
    assert result.returncode == 0 and "appliance" in result.stdout, result.stderr
    result = converged.chroot(
        "/opt/appliance/venv/bin/python",
        "-c",
        "import appliance, appliance_sync, appliance_web, pyzbar.pyzbar",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_configuration_loads(converged: Converged):
    config = converged.root / "etc/appliance/appliance.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    result = converged.chroot(
        "/opt/appliance/venv/bin/python",
        "-c",
        "from appliance.config import load_config;"
        "c = load_config('/etc/appliance/appliance.toml');"
        "print(c.device.id, c.camera.source, c.indicator.backend, c.web.host, c.sync.root,"
        " repr(c.scanner.serial_device), c.indicator.buzzer_pin)",
    )
    assert result.returncode == 0, result.stderr
    if converged.is_pi:  # camera and pins; the Zero's buzzer beside the LEDs
        board = ["picamera2", "gpiozero"]
        scanner = ["''", "18"]
    else:  # no Pi camera, no Pi pins: the serial scanner is the input
        board = ["none", "none"]
        scanner = ["'/dev/ttyACM0'", "None"]
    assert result.stdout.split() == [
        "converge",
        *board,
        "127.0.0.1",
        "/etc/appliance/trust-root.json",
        *scanner,
    ]


@pytest.mark.slow
def test_state_secrets_and_trust_root(converged: Converged):
    root = converged.root
    secrets = root / "etc/appliance/secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("audit_hmac_key", "admin_password_hash", "inspector_password_hash"):
        path = secrets / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == 0
    assert (secrets / "audit_hmac_key").read_text() == "ab" * 32
    # No inspector hash in the vault: the file the web unit loads exists, empty (login off).
    assert (secrets / "inspector_password_hash").read_text() == ""
    assert (root / "etc/appliance/trust-root.json").read_text().startswith('{"signed"')
    if _keygen_available():
        key = secrets / "device_ed25519.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_uid == 0
        public = (root / "etc/appliance/device_public_key.pem").read_text()
        assert public.startswith("-----BEGIN PUBLIC KEY-----")
        enrolled = converged.root.parent / "enrolled" / "converge.pem"
        assert enrolled.read_text() == public, "the public key is fetched to the controller"
        assert "PRIVATE" not in public
    state = root / "var/lib/appliance"
    assert stat.S_IMODE(state.stat().st_mode) == 0o1770 and state.stat().st_uid == 0
    sync_uid = int(converged.chroot("id", "-u", "appliance-sync").stdout)
    assert (state / "trust").stat().st_uid == sync_uid
    mark = state / "trust-high-water.json"  # sync's, empty until its first install
    assert mark.stat().st_uid == sync_uid and mark.stat().st_size == 0
    assert converged.chroot("id", "-nG", "appliance-web").stdout.split() == ["appliance"]
    assert converged.chroot("id", "-nG", "appliance").stdout.split() == [
        "appliance",
        "video",
        "gpio",
    ]


@pytest.mark.slow
def test_units_installed_enabled_and_verified(converged: Converged):
    root = converged.root
    etc = root / "etc/systemd/system"
    for unit in ("appliance-kiosk.service", "appliance-web.service"):
        assert (etc / "multi-user.target.wants" / unit).is_symlink(), unit
    display = etc / "multi-user.target.wants" / "appliance-display.service"
    if converged.is_pi:  # LEDs and buzzer only: no display unit, so nothing takes tty1
        assert not display.exists() and not display.is_symlink()
        assert not (etc / "appliance-display.service").exists()
        assert not (etc / "appliance-kiosk.service.d/scanner.conf").exists()
    else:
        assert display.is_symlink()
        dropin = (etc / "appliance-kiosk.service.d/scanner.conf").read_text()
        assert "DeviceAllow=char-ttyACM rw" in dropin and "SupplementaryGroups=dialout" in dropin
    for timer in ("appliance-sync.timer", "appliance-upload.timer"):
        assert (etc / "timers.target.wants" / timer).is_symlink(), timer
    assert "OnUnitActiveSec=15min" in (etc / "appliance-sync.timer.d/interval.conf").read_text()
    # In the converged root every ExecStart= binary exists, so verify checks them for real.
    units = sorted(p.name for p in etc.glob("appliance-*.*") if p.is_file())
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units], capture_output=True, text=True
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


@pytest.mark.slow
def test_mdl_radio_set_up_follows_the_switch(converged: Converged):
    """mDL on (the Pi): the radio service, its user and the kiosk's drop-in, bluetoothd
    masked, the radio's socket in the configuration. Off (the board): all of it gone, the
    leftovers of an earlier run included; the second run changed nothing on either."""
    etc = converged.root / "etc/systemd/system"
    installed = {
        "radio unit": etc / "appliance-mdl-radio.service",
        "radio enabled": etc / "multi-user.target.wants/appliance-mdl-radio.service",
        "kiosk drop-in": etc / "appliance-kiosk.service.d/mdl-radio.conf",
    }
    config = (converged.root / "etc/appliance/appliance.toml").read_text()
    radio_socket = 'radio_socket = "/run/appliance-mdl-radio/radio.sock"'
    assert not (etc / "appliance-kiosk.service.d/mdl-bluetooth.conf").exists()
    if not converged.is_pi:
        for name, path in installed.items():
            assert not path.exists() and not path.is_symlink(), name
        assert radio_socket not in config and 'transport = "none"' in config
        assert converged.chroot("id", "appliance-radio").returncode != 0
        return
    units = REPO / "systemd"
    assert (
        installed["radio unit"].read_bytes() == (units / "appliance-mdl-radio.service").read_bytes()
    )
    assert installed["kiosk drop-in"].read_bytes() == (units / "kiosk-mdl-radio.conf").read_bytes()
    assert installed["radio enabled"].is_symlink()
    assert radio_socket in config and 'transport = "bumble:hci-socket:0"' in config
    assert converged.chroot("id", "-nG", "appliance-radio").stdout.split() == ["appliance-radio"]
    assert os.readlink(etc / "bluetooth.service") == "/dev/null"  # masked
    boot = (converged.root / "boot/firmware/config.txt").read_text()
    assert boot.count("# BEGIN appliance bluetooth (managed by Ansible)") == 1
    assert boot.rstrip().endswith("# END appliance bluetooth (managed by Ansible)")
    result = converged.chroot(
        "/opt/appliance/venv/bin/python", "-c", "import bumble.transport.hci_socket"
    )
    assert result.returncode == 0, result.stderr  # the 'mdl' extra in the venv


@pytest.mark.slow
def test_boot_block_appended_once_with_all_section(converged: Converged):
    watchdog = converged.root / "etc/systemd/system.conf.d/appliance-watchdog.conf"
    if not converged.is_pi:  # no boot fragment on another board, and no failure without one
        assert not (converged.root / "boot/firmware/config.txt").exists()
        assert not watchdog.exists()
        return
    text = (converged.root / "boot/firmware/config.txt").read_text()
    assert text.startswith(PI_OS_CONFIG_TXT), "the existing configuration is kept"
    begin = "# BEGIN appliance firmware (managed by Ansible)"
    end = "# END appliance firmware (managed by Ansible)"
    assert text.count(begin) == 1 and text.count(end) == 1  # then the Bluetooth block (mDL)
    block = text.split(begin, 1)[1].split(end, 1)[0].strip().splitlines()
    assert block[0] == "[all]"
    assert "gpio=17,27,22=op,dl" in block and "dtparam=watchdog=on" in block
    assert "RuntimeWatchdogSec=15s" in watchdog.read_text()


@pytest.mark.slow
def test_time_zone_time_sync_and_ssh(converged: Converged):
    root = converged.root
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Asia/Bangkok"
    assert (root / "etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service").exists()
    assert "th.pool.ntp.org" in (root / "etc/systemd/timesyncd.conf.d/appliance.conf").read_text()
    sshd = (root / "etc/ssh/sshd_config.d/10-appliance.conf").read_text()
    assert "PasswordAuthentication no" in sshd and "PermitRootLogin no" in sshd
    result = converged.chroot("/usr/sbin/sshd", "-T", "-C", "user=x,host=x,addr=127.0.0.1")
    if result.returncode == 0:  # needs /run/sshd; the chroot may lack it
        assert "passwordauthentication no" in result.stdout


RASPBERRY_PI_ARCHIVE_FINGERPRINT = "CF8A1AF502A2AA2D763BAE7E82B129927FA3303E"


@pytest.mark.slow
def test_raspberry_pi_archive_on_a_pi_with_plain_debian(converged: Converged, tmp_path: Path):
    sources = converged.root / "etc/apt/sources.list.d/appliance-raspberrypi.sources"
    key = converged.root / "usr/share/keyrings/appliance-raspberrypi-archive.asc"
    if not converged.is_pi:
        assert not sources.exists() and not key.exists()
        return
    fields = dict(
        line.split(": ", 1)
        for line in sources.read_text().splitlines()
        if ": " in line and not line.startswith("#")
    )
    assert fields == {
        "Types": "deb",
        "URIs": "http://archive.raspberrypi.com/debian/",
        "Suites": "bookworm",
        "Components": "main",
        "Signed-By": "/usr/share/keyrings/appliance-raspberrypi-archive.asc",
    }
    # apt in the root reads the file (offline: --print-uris fetches nothing).
    uris = converged.chroot("apt-get", "--print-uris", "update")
    assert uris.returncode == 0, uris.stderr
    assert "http://archive.raspberrypi.com/debian/dists/bookworm/InRelease" in uris.stdout
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed: the key's fingerprint is not checked")
    shown = subprocess.run(
        ["gpg", "--homedir", str(tmp_path), "--show-keys", "--with-colons", str(key)],
        capture_output=True,
        text=True,
        check=True,
    )
    fingerprints = re.findall(r"^fpr:+([0-9A-F]{40}):", shown.stdout, flags=re.M)
    assert fingerprints[0] == RASPBERRY_PI_ARCHIVE_FINGERPRINT
