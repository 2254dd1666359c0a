"""Helpers for the sync tests: an authority that publishes, a real HTTP server with hooks
to misbehave, and a device-side client with short timeouts."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from appliance.tools.issuer import Claims, LicenceData, SigningKey, generate_key, issue
from appliance.trust.editor import TrustSourceEditor
from appliance_sync.client import SyncClient
from appliance_sync.publisher import init_repository, update_repository
from appliance_sync.trust_parts import parts_from_document

ISS = "TH-DLT"
Hook = Callable[[SimpleHTTPRequestHandler, Path], None]


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server: RepoServer = self.server.owner  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        server.requests.append(path)
        for pattern, hook in list(server.hooks.items()):
            if re.search(pattern, path):
                hook(self, Path(self.translate_path(self.path)))
                return
        super().do_GET()


class RepoServer:
    """Serves a repository directory on loopback; ``hooks`` map URL regexes to misbehaviour."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hooks: dict[str, Hook] = {}
        self.requests: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# -- misbehaviours --------------------------------------------------------------------------


def status(code: int) -> Hook:
    def hook(h: SimpleHTTPRequestHandler, _: Path) -> None:
        h.send_response(code)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return hook


def body(data: bytes) -> Hook:
    def hook(h: SimpleHTTPRequestHandler, _: Path) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return hook


def endless(announce: bool = False) -> Hook:
    def hook(h: SimpleHTTPRequestHandler, _: Path) -> None:
        h.send_response(200)
        if announce:
            h.send_header("Content-Length", str(1 << 40))
        h.end_headers()
        try:
            for _ in range(100_000):
                h.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    return hook


def slow(delay_s: float) -> Hook:
    """The real file, one byte every ``delay_s`` (within the gap limit, beyond the deadline)."""

    def hook(h: SimpleHTTPRequestHandler, path: Path) -> None:
        data = path.read_bytes()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            for i in range(len(data)):
                h.wfile.write(data[i : i + 1])
                h.wfile.flush()
                time.sleep(delay_s)
        except OSError:
            pass

    return hook


def truncated(keep: float = 0.5) -> Hook:
    def hook(h: SimpleHTTPRequestHandler, path: Path) -> None:
        data = path.read_bytes()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: int(len(data) * keep)])
        h.close_connection = True

    return hook


def cut() -> Hook:
    def hook(h: SimpleHTTPRequestHandler, _: Path) -> None:
        h.close_connection = True
        h.connection.close()

    return hook


def times(n: int, hook: Hook, server: RepoServer, pattern: str) -> Hook:
    """Misbehave ``n`` times, then serve normally."""
    left = [n]

    def wrapped(h: SimpleHTTPRequestHandler, path: Path) -> None:
        left[0] -= 1
        if left[0] <= 0:
            server.hooks.pop(pattern, None)
        hook(h, path)

    return wrapped


# -- the authority and the device -----------------------------------------------------------


@dataclass
class Authority:
    repo: Path
    keys: Path
    root_file: Path
    issuer: SigningKey
    editor: TrustSourceEditor = field(default_factory=TrustSourceEditor)

    @classmethod
    def create(cls, base: Path, now: datetime | None = None) -> Authority:
        a = cls(base / "repo", base / "keys", base / "root.json", generate_key("ES256"))
        init_repository(a.repo, a.keys, a.root_file, now=now)
        a.editor.add_key(ISS, a.issuer.trust_entry(), "Department of Land Transport")
        a.editor.set_policy(max_age_hours=72)
        return a

    def publish(self, now: datetime | None = None, expires_hours: float = 72.0) -> int:
        return update_repository(
            self.repo,
            self.keys,
            parts_from_document(self.editor.doc),
            now=now,
            expires_hours=expires_hours,
        )

    def credential(
        self,
        no: str = "DL-0001",
        cti: bytes | None = None,
        status_uri: str | None = None,
        status_idx: int | None = None,
    ) -> str:
        now = int(time.time())
        claims = Claims(
            iss=ISS,
            licence=LicenceData(typ="DL", no=no, nm="Somchai Jaidee"),
            iat=now - 86400,
            exp=now + 365 * 86400,
            status_uri=status_uri,
            status_idx=status_idx,
        )
        if cti is not None:
            claims.cti = cti
        return issue(self.issuer, claims)


def device(state_dir: Path, url: str, root: Path, **kw: object) -> SyncClient:
    args: dict[str, object] = {
        "gap_timeout_s": 1.0,
        "deadline_s": 2.0,
        "retries": 2,
        "backoff_s": 0.01,
        "clock_synchronised": lambda: False,
    }
    args.update(kw)
    return SyncClient(state_dir=state_dir, url=url, root=root, **args)  # type: ignore[arg-type]


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
