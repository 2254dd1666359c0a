"""The kiosk bridge's wire format, shared by the kiosk's server and the web's client.

JSON lines, UTF-8, one message per line, at most ``max_message_bytes`` a line either way
(a bigger one is refused, not read) and ``MAX_DEPTH`` levels of nesting (a deeper line is
refused before it is parsed). The protocol itself is described in
``appliance.kiosk.bridge``; this module holds only what both ends need.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from appliance.port.errors import BridgeError, MessageTooLarge

DEFAULT_SOCKET = "/run/appliance/kiosk.sock"
PROTOCOL = 1
HEARTBEAT_S = 2.0
DEFAULT_MAX_MESSAGE_BYTES = 16 * 2**20
# Requests nest three levels ({"args": {"types": [...]}}); anything deeper is an attack.
MAX_DEPTH = 8
# Possessive, so the engine keeps no backtracking state: the alternation form
# (?:[^"\\]|\\.)* kept a mark per character, ~110 bytes each: 85 MiB for one 750 KB
# upload line, which alone got the kiosk killed in its 128 MiB unit (issue 21); a line of
# escapes cost 57 bytes per byte even unrolled.
_STRINGS = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')
_INNERMOST = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")


# -- framing ---------------------------------------------------------------------------------


def encode(message: dict[str, Any], max_bytes: int) -> bytes:
    """One JSON line; ``MessageTooLarge`` when it would exceed ``max_bytes``."""
    data = (
        json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        + b"\n"
    )
    if len(data) > max_bytes:
        raise MessageTooLarge(
            f"message of {len(data)} bytes exceeds the bridge limit of {max_bytes} bytes"
        )
    return data


class LineReader:
    """Reads JSON-line messages from a socket, never buffering more than the cap."""

    def __init__(self, sock: socket.socket, max_bytes: int) -> None:
        self._sock = sock
        self._max = max_bytes
        self._buf = bytearray()

    def read(self) -> dict[str, Any] | None:
        """The next message, or None at a clean end of stream. Socket timeouts propagate
        (``TimeoutError``); ``MessageTooLarge`` / ``BridgeError`` for bad input."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                with memoryview(self._buf) as view:  # one copy: a slice would make two
                    line = bytes(view[:end])
                del self._buf[: end + 1]
                if len(line) + 1 > self._max:
                    raise MessageTooLarge(f"message exceeds the bridge limit of {self._max} bytes")
                return _decode(line)
            if len(self._buf) >= self._max:
                raise MessageTooLarge(f"message exceeds the bridge limit of {self._max} bytes")
            chunk = self._sock.recv(min(1 << 16, self._max + 1 - len(self._buf)))
            if not chunk:
                if self._buf:
                    raise BridgeError("the connection ended inside a message")
                return None
            self._buf += chunk

    def read_exact(self, n: int) -> bytearray:
        """The ``n`` raw bytes that follow a request line (an uploaded picture), received
        into one buffer: held once, never as base64 or JSON text (issue 21: a 10 MB picture
        cost the kiosk 41 MiB that way). ``MessageTooLarge`` above the cap (nothing read);
        ``BridgeError`` if the stream ends first."""
        if n > self._max:
            raise MessageTooLarge(f"payload exceeds the bridge limit of {self._max} bytes")
        out = bytearray(n)
        got = min(n, len(self._buf))
        out[:got] = self._buf[:got]
        del self._buf[:got]
        with memoryview(out) as view:
            while got < n:
                size = self._sock.recv_into(view[got:], n - got)
                if not size:
                    raise BridgeError("the connection ended inside a payload")
                got += size
        return out


def too_deep(line: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``line`` nests arrays/objects deeper than ``max_depth`` (or unbalanced).

    Strings are cut out, then innermost pairs removed one level per pass: at most
    ``max_depth`` passes at C speed, so a 16 MiB line of brackets costs milliseconds, not
    a ``RecursionError`` in the parser.
    """
    rest = _STRINGS.sub(b"", line)
    for _ in range(max_depth):
        if not any(c in rest for c in (b"[", b"{")):
            return False
        rest = _INNERMOST.sub(b"", rest)
    return any(c in rest for c in (b"[", b"{", b"]", b"}"))


def _decode(line: bytes) -> dict[str, Any]:
    if too_deep(line):
        raise BridgeError(f"message nested deeper than {MAX_DEPTH} levels")
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BridgeError("malformed message on the kiosk bridge") from e
    if not isinstance(message, dict):
        raise BridgeError("malformed message on the kiosk bridge (not an object)")
    return message
