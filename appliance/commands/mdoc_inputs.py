"""What ``appliance mdoc verify`` judges each response with, read from its command line.

The transcript (given, or built from ``--engagement`` and ``--reader-key``), the request
(a DeviceRequest file or a profile's), the EDeviceKey for ``--session-data`` and the size
limit: every input file is read under a size limit, as CBOR bytes or the hex text of them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.core.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from appliance.core.credential.mdoc.engagement import Engagement
    from appliance.core.credential.mdoc.items_request import Request
    from appliance.core.credential.mdoc.verify import MdocResult

MAX_FILE_BYTES = 4 * 1024 * 1024  # a hex file of a response at the largest configurable size
_HEX = re.compile(rb"[0-9a-fA-F\s]+")


def read_bytes(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, or the bytes its hex text spells (only hex digits and whitespace)."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from e
    if len(raw) > limit:
        raise UsageError(f"{what} {path} is larger than {limit} bytes")
    if raw and _HEX.fullmatch(raw):
        digits = b"".join(raw.split())
        if len(digits) % 2 == 0:
            return bytes.fromhex(digits.decode())
    return raw


def load_reader_key(path: Path) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = read_bytes(path, "reader key", 64 * 1024)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--reader-key {path} is not an unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"--reader-key {path} is not an EC private key")
    return key


def parse_engagement_arg(text: str) -> Engagement:
    """``--engagement``: an ``mdoc:`` text, or the DeviceEngagement as hex, read by the
    live reader's own parser (spec s.1); a refusal is a usage error naming its reason."""
    import base64

    from appliance.core.credential.mdoc.engagement import is_engagement, parse_engagement
    from appliance.core.errors import Rejection

    text = text.strip()
    if not is_engagement(text):
        try:
            raw = bytes.fromhex("".join(text.split()))
        except ValueError as e:
            raise UsageError("--engagement is neither an mdoc: text nor hex") from e
        text = "mdoc:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    try:
        return parse_engagement(text)
    except Rejection as e:
        raise UsageError(f"--engagement is refused: {e.reason}") from e


class Inputs:
    """What every response of one command line is judged with."""

    def __init__(
        self, args: argparse.Namespace, default_profile: str, default_age: int, max_bytes: int
    ) -> None:
        from appliance.core.credential.mdoc import session_crypto as sc
        from appliance.core.credential.mdoc.cose_key import cose_key_bytes
        from appliance.core.errors import CoseKeyError, MdocCborError, UnsupportedCurve

        self.reader_key = load_reader_key(args.reader_key) if args.reader_key else None
        self.profile = args.request_profile or default_profile
        self.age = args.age if args.age is not None else default_age
        if not 0 <= self.age <= 99:
            raise UsageError("--age must be 0 to 99")
        self.max_bytes = max_bytes
        engagement: Engagement | None = None
        if args.session_transcript is not None:
            self.transcript = read_bytes(args.session_transcript, "session transcript")
        elif args.engagement is not None:
            if self.reader_key is None:
                raise UsageError(
                    "--engagement needs --reader-key (its public key is in the transcript)"
                )
            engagement = parse_engagement_arg(args.engagement)
            self.transcript = sc.session_transcript_bytes(
                engagement.device_engagement_bytes(),
                sc.embed(cose_key_bytes(self.reader_key.public_key())),
            )
        else:
            raise UsageError("give --session-transcript FILE or --engagement TEXT")
        try:
            parts = sc.transcript_parts(self.transcript)
        except MdocCborError as e:
            raise UsageError(f"the session transcript is not SessionTranscriptBytes: {e}") from e
        self.e_device_key: Any = None
        if args.session_data:
            if self.reader_key is None:
                raise UsageError("--session-data needs --reader-key")
            if engagement is not None:
                self.e_device_key = engagement.e_device_key
            else:
                try:
                    self.e_device_key = sc.e_device_key_from_engagement(
                        parts.device_engagement.data
                    )
                except (MdocCborError, CoseKeyError, UnsupportedCurve) as e:
                    raise UsageError(f"no usable EDeviceKey in the engagement: {e}") from e
        self.request = self._request(args.request)

    def _request(self, path: Path | None) -> Request:
        from appliance.core.credential.mdoc.items_request import (
            device_request_from_bytes,
            profile_request,
        )
        from appliance.core.errors import Rejection

        if path is None:
            return profile_request(self.profile, self.age)
        try:
            return device_request_from_bytes(read_bytes(path, "request"))
        except Rejection as e:
            raise UsageError(f"--request {path} is not a DeviceRequest: {e}") from e

    def check_device_auth(self, response: bytes, path: Path) -> None:
        """Exit 64 when a response authenticates by MAC and there is no reader key."""
        if self.reader_key is not None:
            return
        from appliance.core.credential.mdoc.cbor import decode
        from appliance.core.errors import MdocCborError

        try:
            item = decode(response)
        except MdocCborError:
            return  # the verdict will say MDOC_MALFORMED
        documents = item.get("documents") if isinstance(item, dict) else None
        for document in documents if isinstance(documents, list) else ():
            device_signed = document.get("deviceSigned") if isinstance(document, dict) else None
            auth = device_signed.get("deviceAuth") if isinstance(device_signed, dict) else None
            if isinstance(auth, dict) and "deviceMac" in auth:
                raise UsageError(f"{path} authenticates with deviceMac: give --reader-key")

    def judge(
        self, data: bytes, trust: Any, now: float, clock_trusted: bool, checkpoint: Any
    ) -> MdocResult:
        from appliance.core.credential.mdoc.verify import verify_mdoc, verify_mdoc_session_data
        from appliance.trust.clock import local_utc_offset

        common: dict[str, Any] = {
            "trust": trust,
            "now": now,
            "request": self.request,
            "profile": self.profile,
            "age_threshold": self.age,
            "clock_trusted": clock_trusted,
            "checkpoint": checkpoint,
            "utc_offset_s": local_utc_offset(now),
        }
        if self.e_device_key is not None:
            assert self.reader_key is not None
            return verify_mdoc_session_data(
                data,
                e_device_key=self.e_device_key,
                session_transcript_bytes=self.transcript,
                e_reader_key=self.reader_key,
                max_response_bytes=self.max_bytes,
                **common,
            )
        return verify_mdoc(
            data,
            session_transcript_bytes=self.transcript,
            e_reader_key=self.reader_key,
            max_response_bytes=self.max_bytes,
            **common,
        )
