"""The disabled devices the hub refuses uploads from, read from published policy.

The hub learns ``policy.disabled_devices`` (spec LC1 s.4) from a JSON file holding a
top-level ``policy`` object: the trust source the publisher publishes, or the published
``manifest.json``. The file is re-read when it changes, so disabling a device takes effect
without a restart; a file that becomes unreadable or invalid keeps the last good list
(and says so in the log) rather than re-enabling every device.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from appliance.core.errors import TrustDataError
from appliance.trust.policy import parse_disabled_devices

log = logging.getLogger(__name__)

MAX_POLICY_FILE_BYTES = 64 * 1024 * 1024


class DisabledDevices:
    """``create_app(disabled_devices=DisabledDevices(path))``: a callable set of ids."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._ids: frozenset[str] = frozenset()
        self._ids = self._load()  # refuse to start on a bad file (TrustDataError)

    def __call__(self) -> frozenset[str]:
        try:
            st = self.path.stat()
        except OSError as e:
            log.error("policy file %s unreadable, keeping the last list: %s", self.path, e)
            return self._ids
        if (st.st_mtime_ns, st.st_size) != self._stamp:
            with self._lock:
                try:
                    self._ids = self._load()
                except TrustDataError as e:
                    log.error("policy file %s refused, keeping the last list: %s", self.path, e)
        return self._ids

    def _load(self) -> frozenset[str]:
        try:
            st = self.path.stat()
            with self.path.open("rb") as f:
                raw = f.read(MAX_POLICY_FILE_BYTES + 1)
        except OSError as e:
            raise TrustDataError(f"cannot read policy file {self.path}: {e.strerror or e}") from e
        self._stamp = (st.st_mtime_ns, st.st_size)
        if len(raw) > MAX_POLICY_FILE_BYTES:
            raise TrustDataError(f"policy file {self.path} is over {MAX_POLICY_FILE_BYTES} bytes")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise TrustDataError(f"policy file {self.path} is not valid JSON: {e}") from e
        policy = doc.get("policy", {}) if isinstance(doc, dict) else None
        if not isinstance(policy, dict):
            raise TrustDataError(f"policy file {self.path}: policy must be an object")
        return parse_disabled_devices(policy.get("disabled_devices", []))
