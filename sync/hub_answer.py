"""What the device takes from the hub's answers: bounded JSON and a signed acknowledgement.

Python's JSON parser recurses, so a hub (or anyone on the path to it) answering a few
hundred thousand nested brackets used to kill the uploader and the heartbeat with a
``RecursionError`` (exit 70). Every answer is now checked for size, nesting depth and
container count *before* it is parsed, and a bad one is a ``SyncError`` (one line, exit 1,
like any other failed upload or heartbeat).

An answer is only believed where it is signed: records are marked uploaded only on an
acknowledgement signed by the hub key the device pins (``appliance.audit.head``), for
exactly the last record of the batch sent, with the hash the device holds there. A fake
hub, even on plain HTTP in the middle, cannot make records look uploaded (and pruned).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from appliance.audit.head import HubAck
from appliance.audit.identity import DevicePublicKey
from appliance_sync.errors import AckInvalid, HubAnswerInvalid

# Both refusals are final for this run (``HubRejected``): retrying the same hub gives the
# same answer. The classes live here, ``upload`` re-exports ``HubRejected``.


MAX_ANSWER_BYTES = 64 * 1024  # the hub's answers are a few hundred bytes
MAX_ANSWER_DEPTH = 8  # an acknowledgement is 3 deep ({"gaps": [[1, null]]})
MAX_ANSWER_CONTAINERS = 256
MAX_QUOTED = 200  # characters of a refusal repeated in an error message
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def parse_answer(data: bytes) -> Any:
    """The answer as JSON, bounded before the (recursive) parser sees it."""
    if len(data) > MAX_ANSWER_BYTES:
        raise HubAnswerInvalid(f"hub answer larger than {MAX_ANSWER_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HubAnswerInvalid("hub answer is not UTF-8") from e
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) > 2 * MAX_ANSWER_CONTAINERS:
        raise HubAnswerInvalid(
            f"hub answer has more than {MAX_ANSWER_CONTAINERS} arrays and objects"
        )
    steps = (1 if c in "[{" else -1 for c in brackets)
    if max(itertools.accumulate(steps), default=0) > MAX_ANSWER_DEPTH:
        raise HubAnswerInvalid(f"hub answer nested deeper than {MAX_ANSWER_DEPTH}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: belt and braces
        raise HubAnswerInvalid(f"hub answer is not JSON: {str(e)[:80]}") from e


def quoted(answer: Any) -> str:
    """A refusal's text for one error line, short whatever the hub sent."""
    text = answer.get("error", answer) if isinstance(answer, dict) else answer
    text = str(text)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "..."


def checked_ack(
    answer: dict[str, Any],
    hub_key: DevicePublicKey,
    device_id: str,
    log_id: str,
    last: dict[str, Any],
) -> HubAck:
    """The hub's acknowledgement of a batch ending at record ``last``, signature checked."""
    try:
        ack = HubAck.parse(answer.get("ack"))
    except ValueError as e:
        raise AckInvalid(
            f"hub answer carries no signed acknowledgement ({e}): "
            "is [upload] url the hub, and is the hub given its key?"
        ) from e
    if (ack.device_id, ack.log_id, ack.seq, ack.hash) != (
        device_id,
        log_id,
        last["seq"],
        last["hash"],
    ):
        raise AckInvalid(
            f"hub acknowledgement is for another record (seq {ack.seq}), "
            f"not seq {last['seq']} of this log"
        )
    if not ack.verify(hub_key):
        raise AckInvalid(
            f"hub acknowledgement of seq {ack.seq} is not signed by the pinned "
            "hub key ([upload] hub_key): not the hub, or a changed key"
        )
    return ack
