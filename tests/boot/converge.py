"""Step 2 of ``make test-boot``: converge both playbooks into one root and make it a disk.

On the cached Bookworm root: an authority's signed TUF repository and a simulated
camera's pictures made here (as ``appliance demo`` makes them), then ``ansible/site.yml``
(the device: camera ``images``, mock LEDs, sync from and upload to the centre) and
``ansible/central.yml`` (hub under gunicorn, PostgreSQL, nginx with TLS, the repository,
the online timestamp key) through Ansible's chroot connection, as tests/test_ansible.py
does. The device reaches the centre by name (``trust.boot.test``, ``hub.boot.test`` in
/etc/hosts) over TLS that it trusts through the system store.

What a chroot cannot do and the play leaves to a booted host (``central_booted: false``:
the hub's database role and database) is done here with the same names, PostgreSQL
started in the chroot for that moment. Then the in-guest check (guest_check.py) is
installed as a unit and the root becomes an ext4 image (``mkfs.ext4 -d``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from root import CACHE, REPO, Mounts, no_service_starts, run
from virtual_phone import engagement_of, new_identity, write_png

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "deploy"))
os.environ.setdefault("APPLIANCE_TEST_CACHE", str(CACHE))  # the dependencies' wheels
from test_ansible import _env, _password_hash, _tool, _wheelhouse
from test_ansible_central import _indent

from appliance.tools.holder_mdoc import engagement_text

HUB_NAME, REPO_NAME = "hub.boot.test", "trust.boot.test"
DEVICE_ID = "kiosk-boot-01"
VAULT_PASSWORD = "boot-test-only-vault"
AUDITOR_TOKEN = "auditor-" + "c3" * 20
ADMIN_TOKEN = "admin-" + "d4" * 20
IMAGES_DIR = "/opt/appliance/camera-images"
GUEST_CHECK_DIR = Path("/usr/local/lib/appliance-boot-check")
PHONE_UNIT = "appliance-boot-phone.service"  # the virtual phone (virtual_phone.py)


def authority(work: Path) -> tuple[Path, Path, Path, Path]:
    """A demo authority's published repository, its pinned root, timestamp key, pictures."""
    import numpy as np
    from PIL import Image

    from appliance.tools.demo import prepare_world, render_qr_frame
    from appliance_sync.publisher import init_repository, update_repository
    from appliance_sync.trust_parts import load_source

    world = prepare_world(work / "authority")
    repo, keys, pin = work / "repo", work / "tuf-keys", work / "root.json"
    init_repository(repo, keys, pin)
    update_repository(repo, keys, load_source(world.trust_source), expires_hours=72)
    frames = work / "frames"
    frames.mkdir()
    valid = next(s for s in world.samples() if s.expected.startswith("PASS"))
    text = valid.make(time.time())
    assert text is not None
    Image.fromarray(render_qr_frame(text)).save(frames / "1-licence.png")
    # Nothing in view between showings, longer than [scanner] repeat_after_absent_s (2 s at
    # 10 frames a picture, 10 frames/s): a code in view since before the trust data came
    # counts as gone and is verified when it comes back.
    blank = np.full((480, 640), 235, dtype=np.uint8)
    for n in range(2, 6):
        Image.fromarray(blank).save(frames / f"{n}-nothing.png")
    # The virtual phone's QR, made ahead (the camera loads its pictures when the kiosk starts).
    identity = new_identity(work / "phone.json")
    write_png(engagement_text(engagement_of(identity)), frames / "6-phone.png")
    return repo, pin, keys / "timestamp.pem", frames


def tls_pair(work: Path) -> tuple[Path, str]:
    """A self-signed certificate for both central names and its private key PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HUB_NAME)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HUB_NAME), x509.DNSName(REPO_NAME)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = work / "central.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return path, pem


def inventory(work: Path, root: Path, wheels: Path, pin: Path, frames: Path, cert: Path) -> Path:
    host = {
        "ansible_host": str(root),
        "ansible_connection": "community.general.chroot",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
        "ansible_user": "root",
        # the device (site.yml)
        "appliance_booted": False,
        "appliance_raspberry_pi": False,
        "appliance_pi_packages_install": False,
        "appliance_display": False,
        "appliance_camera_source": "images",
        "appliance_camera_images_dir": IMAGES_DIR,
        "appliance_camera_images_src": str(frames),
        "appliance_indicator_backend": "mock",
        "appliance_scanner_serial_device": "",
        "appliance_pip_offline": True,
        "appliance_wheelhouse": str(wheels),
        "appliance_trust_root_file": str(pin),
        "appliance_enrol_dir": str(work / "enrolled"),
        "appliance_device_name": "Boot test kiosk",
        "appliance_sync_url": f"https://{REPO_NAME}/lc1/",
        "appliance_upload_url": f"https://{HUB_NAME}/",
        # mDL on: the radio unit drives hci0, which the virtual phone makes (hci_vhci)
        "appliance_mdl_enabled": True,
        "appliance_mdl_hci_index": 0,
        # the centre (central.yml); host variables beat the playbook's group_vars
        "central_booted": False,
        "central_pip_offline": True,
        "central_wheelhouse": str(wheels),
        "central_tls_certificate_file": str(cert),
        "central_hub_server_name": HUB_NAME,
        "central_repo_server_name": REPO_NAME,
        "hub_app_enrolled_dir": str(work / "enrolled"),
        "hub_app_workers": 2,
    }
    text = json.dumps(
        {
            "appliances": {"hosts": {DEVICE_ID: host}},
            "central": {
                "children": {
                    "hub": {"hosts": {DEVICE_ID: None}},
                    "repository": {"hosts": {DEVICE_ID: None}},
                    "publisher": {"hosts": {DEVICE_ID: None}},
                }
            },
        },
        indent=1,
    )
    path = work / "inventory.json"
    path.write_text(text)
    return path


def vault(work: Path, tls_key: str, timestamp_key: str) -> tuple[Path, Path]:
    password = work / "vault-password"
    password.write_text(VAULT_PASSWORD)
    secrets = work / "vault.yml"
    secrets.write_text(
        "vault_appliance_audit_hmac_key: " + "ef" * 32 + "\n"
        f"vault_appliance_admin_password_hash: '{_password_hash()}'\n"
        f"vault_central_hub_auditor_token: {AUDITOR_TOKEN}\n"
        f"vault_central_hub_admin_token: {ADMIN_TOKEN}\n"
        f"vault_central_tls_private_key: |\n{_indent(tls_key)}"
        f"vault_central_timestamp_key: |\n{_indent(timestamp_key)}"
    )
    subprocess.run(
        [_tool("ansible-vault"), "encrypt", "--vault-password-file", str(password), str(secrets)],
        check=True,
        capture_output=True,
        env=_env(),
    )
    return secrets, password


def source_tree(work: Path) -> Path:
    """What is converged: the committed tree (``git archive HEAD``), so that edits in
    progress in this checkout never reach the image; BOOT_TREE=worktree takes the
    checkout as it is (trying a change before committing it)."""
    if os.environ.get("BOOT_TREE") == "worktree":
        return REPO
    found = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:  # not a git checkout (a source tarball): take it as it is
        print("not a git checkout: converging the tree as it is", flush=True)
        return REPO
    archive = found.stdout
    tree = work / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def wheelhouse(work: Path, tree: Path) -> Path:
    """The appliance wheel built from ``tree`` beside its dependencies' wheels (with the
    hub and mdl extras), downloaded once into the cache by tests/deploy/test_ansible.py's helper."""
    dest = _wheelhouse(work / "wheelhouse", extras=("hub", "mdl"), cache="wheels-central")
    if tree != REPO:
        for wheel in dest.glob("th_licence_appliance-*.whl"):
            wheel.unlink()
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
                str(tree),
            ],
            check=True,
            timeout=600,
        )
    return dest


def playbook(name: str, tree: Path, inv: Path, secrets: Path, password: Path, log: Path) -> float:
    start = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            [
                _tool("ansible-playbook"),
                "-i",
                str(inv),
                "-e",
                f"@{secrets}",
                "--vault-password-file",
                str(password),
                str(tree / "ansible" / name),
            ],
            cwd=tree / "ansible",
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
        )
    if result.returncode != 0:
        sys.exit(f"converge of {name} failed: see {log}\n" + log.read_text()[-4000:])
    return time.monotonic() - start


def centre_by_name(root: Path, cert: Path) -> None:
    """The centre's names on loopback, its certificate trusted by the system store."""
    with (root / "etc/hosts").open("a") as hosts:
        hosts.write(f"127.0.0.1 {HUB_NAME} {REPO_NAME}\n")
    shutil.copy2(cert, root / "usr/local/share/ca-certificates/boot-central.crt")
    run(["chroot", str(root), "update-ca-certificates", "--fresh"], stdout=subprocess.DEVNULL)


def publish_into(root: Path, repo: Path) -> None:
    """The authority's upload of its repository to the folder nginx serves."""
    dest = root / "srv/appliance-trust/lc1"
    owner = subprocess.run(
        ["stat", "-c", "%u:%g", str(dest)], capture_output=True, text=True, check=True
    ).stdout.strip()
    for part in ("metadata", "targets"):
        shutil.copytree(repo / part, dest / part, dirs_exist_ok=True)
    subprocess.run(["chown", "-R", owner, str(dest)], check=True)
    subprocess.run(["chmod", "-R", "u=rwX,go=rX", str(dest)], check=True)


def hub_database(root: Path) -> None:
    """What central.yml does on a booted host (central_booted): the role and database."""
    role, database = "appliance-hub", "appliance_hub"
    with Mounts(root):
        # Unix socket only: the host's own PostgreSQL may hold the TCP port.
        run(
            [
                "chroot",
                str(root),
                "pg_ctlcluster",
                "15",
                "main",
                "start",
                "--",
                "-o",
                "-c listen_addresses=",
            ]
        )
        try:
            run(
                [
                    "chroot",
                    str(root),
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    "createuser",
                    "--no-superuser",
                    "--no-createdb",
                    "--no-createrole",
                    role,
                ]
            )
            run(
                [
                    "chroot",
                    str(root),
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    "createdb",
                    "--owner",
                    role,
                    "--encoding",
                    "UTF-8",
                    database,
                ]
            )
        finally:
            run(["chroot", str(root), "pg_ctlcluster", "15", "main", "stop"])


def install_guest_check(root: Path, soak_s: float) -> None:
    dest = root / GUEST_CHECK_DIR.relative_to("/")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("guest_check.py", "guest_mdl.py"):
        shutil.copy2(Path(__file__).with_name(name), dest / name)
    (dest / "settings.json").write_text(
        json.dumps(
            {
                "soak_s": soak_s,
                "auditor_token": AUDITOR_TOKEN,
                "device_id": DEVICE_ID,
                "hub": f"https://{HUB_NAME}",
            }
        )
    )
    unit = root / "etc/systemd/system/appliance-boot-check.service"
    unit.write_text(
        "# make test-boot only (tests/boot): checks the booted image, writes the result to\n"
        "# the second serial port, powers off. Not part of the device or the centre.\n"
        "[Unit]\nDescription=Boot test: soak and check the appliance units\n"
        "[Service]\nType=simple\nStandardOutput=journal+console\n"
        f"ExecStart=/usr/bin/python3 {GUEST_CHECK_DIR}/guest_check.py\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit.name
    if not link.is_symlink():
        link.symlink_to(f"/etc/systemd/system/{unit.name}")
    # A console for anyone who watches the serial log; no login is needed by the check.
    (root / "etc/hostname").write_text(DEVICE_ID + "\n")


def install_virtual_phone(root: Path, keys: Path, identity: Path) -> None:
    """The virtual phone (virtual_phone.py), the demo authority's mDL keys and the phone's
    engagement made ahead, as a harness-only unit that the guest check starts once the
    system is up (after the kiosk and the radio, off the boot's critical path): /dev/vhci
    (hci_vhci) becomes hci0 for the radio unit, the phone answers on it."""
    dest = root / GUEST_CHECK_DIR.relative_to("/")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(__file__).with_name("virtual_phone.py"), dest / "virtual_phone.py")
    (dest / "mdl-keys").mkdir(mode=0o700, exist_ok=True)
    for path in [*keys.glob("mdl-*"), identity]:
        shutil.copy2(path, dest / "mdl-keys" / path.name)
    unit = root / "etc/systemd/system" / PHONE_UNIT
    unit.write_text(
        "# make test-boot only (tests/boot): a virtual Bluetooth controller (hci_vhci) with\n"
        "# a simulated phone on its emulated link. Not part of the device or the centre.\n"
        "[Unit]\nDescription=Boot test: a virtual phone behind a virtual controller\n"
        "After=appliance-kiosk.service appliance-mdl-radio.service\n"
        "[Service]\nType=exec\nStandardOutput=journal+console\n"
        "ExecStartPre=/usr/sbin/modprobe hci_vhci\n"
        f"ExecStart=/opt/appliance/venv/bin/python {GUEST_CHECK_DIR}/virtual_phone.py "
        f"--keys {GUEST_CHECK_DIR}/mdl-keys --identity {GUEST_CHECK_DIR}/mdl-keys/{identity.name}\n"
    )


def disk_image(root: Path, out: Path) -> tuple[Path, Path, Path]:
    """The root as an ext4 image, and the kernel and initramfs to boot it with."""
    boot = root / "boot"
    kernel = sorted(boot.glob("vmlinuz-*"))[-1]
    initrd = sorted(boot.glob("initrd.img-*"))[-1]
    shutil.copy2(kernel, out / "vmlinuz")
    shutil.copy2(initrd, out / "initrd.img")
    used = int(
        subprocess.run(
            ["du", "-sm", "--apparent-size", str(root)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    image = out / "disk.img"
    image.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "bootroot", "-d", str(root), str(image), f"{used + 1536}M"])
    return image, out / "vmlinuz", out / "initrd.img"


def converge(work: Path, tarball: Path, soak_s: float) -> dict[str, float]:
    """Everything of step 2 in ``work``; returns the seconds each part took."""
    from root import extract

    times: dict[str, float] = {}
    start = time.monotonic()
    root = extract(tarball, work / "root")
    no_service_starts(root)
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    times["extract_s"] = time.monotonic() - start
    start = time.monotonic()
    repo, pin, timestamp_key, frames = authority(work)
    cert, tls_key = tls_pair(work)
    tree = source_tree(work)
    wheels = wheelhouse(work, tree)
    secrets, password = vault(work, tls_key, timestamp_key.read_text())
    inv = inventory(work, root, wheels, pin, frames, cert)
    times["prepare_s"] = time.monotonic() - start
    # The order an administrator follows: the centre first (it makes the hub's key, which
    # the device pins), the device (its key is fetched for the hub), the centre again
    # (the hub enrols the device's key).
    times["converge_central_s"] = playbook(
        "central.yml", tree, inv, secrets, password, work / "central.log"
    )
    times["converge_device_s"] = playbook(
        "site.yml", tree, inv, secrets, password, work / "site.log"
    )
    times["converge_enrol_s"] = playbook(
        "central.yml", tree, inv, secrets, password, work / "central-enrol.log"
    )
    start = time.monotonic()
    publish_into(root, repo)
    centre_by_name(root, cert)
    hub_database(root)
    install_guest_check(root, soak_s)
    install_virtual_phone(root, work / "authority" / "keys", work / "phone.json")
    (root / "usr/sbin/policy-rc.d").unlink()
    disk_image(root, work)
    shutil.rmtree(root)
    times["image_s"] = time.monotonic() - start
    return times
