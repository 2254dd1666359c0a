"""HTTP downloads for the sync client: a total deadline, a size cap, retries with jitter.

python-tuf's own fetcher bounds only the gap between bytes, so a server dripping one
byte a second holds a download open forever (slow retrieval). ``DeadlineFetcher`` bounds
each download as a whole: before every read the socket timeout is set to the smaller of
the gap limit and the time left, and ``read1`` returns after at most one receive. Sizes
are capped by the caller's limit (from signed metadata) and by a Content-Length check.

Transient faults (refused or cut connection, truncated body, HTTP 5xx, 408, 429) are
retried with exponential backoff and jitter; a timeout is not retried, since waiting
longer is exactly what a slow-retrieval attacker wants. A local write fault (a full disk)
is not a network fault: it is raised as the ``OSError`` it is, never retried.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import random
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO
from urllib.parse import urlsplit

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from appliance.platform.backoff import backoff_delay
from appliance_sync.errors import TransientFetchError

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
USER_AGENT = "th-licence-appliance-sync"
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class DeadlineFetcher(FetcherInterface):
    def __init__(
        self,
        *,
        gap_timeout_s: float = 30.0,
        deadline_s: float = 300.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        tmp_dir: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.gap_timeout_s = gap_timeout_s
        self.deadline_s = deadline_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.tmp_dir = tmp_dir
        self._sleep = sleep
        self._rng = rng
        self.bytes_fetched = 0

    def _fetch(self, url: str) -> Iterator[bytes]:  # pragma: no cover - not used
        with tempfile.TemporaryFile(dir=self.tmp_dir) as f:
            self.fetch_to(url, 1 << 62, f)
            f.seek(0)
            while chunk := f.read(CHUNK):
                yield chunk

    @contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO]:
        with tempfile.TemporaryFile(dir=self.tmp_dir) as f:
            self.fetch_to(url, max_length, f)
            f.seek(0)
            yield f

    def fetch_to(self, url: str, max_length: int, out: IO[bytes]) -> tuple[int, str]:
        """Download ``url`` into ``out`` (rewound per attempt); returns (length, sha256 hex)."""
        attempt = 0
        while True:
            out.seek(0)
            out.truncate()
            try:
                return self._attempt(url, max_length, out)
            except TransientFetchError as e:
                if attempt >= self.retries:
                    raise exceptions.DownloadError(f"{url}: {e} (after {attempt + 1} tries)") from e
                delay = backoff_delay(attempt + 1, self.backoff_s, rng=self._rng)

                log.info("download of %s failed (%s); retrying in %.1f s", url, e, delay)
                self._sleep(delay)
                attempt += 1

    def _attempt(self, url: str, max_length: int, out: IO[bytes]) -> tuple[int, str]:
        deadline = time.monotonic() + self.deadline_s
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise exceptions.DownloadError(f"unsupported URL {url!r}")
        timeout = min(self.gap_timeout_s, self.deadline_s)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            try:
                conn.request(
                    "GET", path, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
                )
                sock = conn.sock
                resp = conn.getresponse()
            except TimeoutError as e:
                raise exceptions.SlowRetrievalError(f"{url}: no response in time") from e
            except (OSError, http.client.HTTPException) as e:
                raise TransientFetchError(f"connection failed: {e}") from e
            if resp.status != 200:
                resp.close()
                if resp.status in _RETRY_STATUS:
                    raise TransientFetchError(f"HTTP {resp.status}")
                raise exceptions.DownloadHTTPError(f"{url}: HTTP {resp.status}", resp.status)
            declared = resp.getheader("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_length:
                raise exceptions.DownloadLengthMismatchError(
                    f"{url}: {declared} bytes announced, at most {max_length} allowed"
                )
            return self._read_body(url, resp, sock, deadline, max_length, out)
        finally:
            conn.close()

    def _read_body(
        self,
        url: str,
        resp: http.client.HTTPResponse,
        sock: socket.socket | None,
        deadline: float,
        max_length: int,
        out: IO[bytes],
    ) -> tuple[int, str]:
        digest = hashlib.sha256()
        received = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise exceptions.SlowRetrievalError(
                    f"{url}: not complete within {self.deadline_s:g} s"
                )
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(min(self.gap_timeout_s, left))
            try:
                chunk = resp.read1(CHUNK)
            except TimeoutError as e:
                raise exceptions.SlowRetrievalError(
                    f"{url}: stalled for {self.gap_timeout_s:g} s"
                ) from e
            except (OSError, http.client.HTTPException) as e:
                raise TransientFetchError(f"connection cut after {received} bytes: {e}") from e
            if not chunk:
                break
            received += len(chunk)
            self.bytes_fetched += len(chunk)
            if received > max_length:
                raise exceptions.DownloadLengthMismatchError(f"{url}: more than {max_length} bytes")
            digest.update(chunk)
            out.write(chunk)  # OSError here is local storage (a full disk): not retried
        declared = resp.getheader("Content-Length")
        if declared is not None and declared.isdigit() and received != int(declared):
            raise TransientFetchError(f"truncated: {received} of {declared} bytes")
        out.flush()  # a local OSError propagates as it is
        return received, digest.hexdigest()
