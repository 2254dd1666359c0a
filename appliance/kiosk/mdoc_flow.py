"""One mdoc session, from the QR text to the verdict (spec mdl-reader s.3), as one coroutine.

engagement -> choose BLE mode -> transport.connect -> SessionEstablishment -> SessionData
-> termination and disconnect -> the core's verdict. The kiosk's worker and
``appliance mdoc read`` run this same code; the transport and the judge (the core verifier
with the trust snapshot and the clock) are passed in. Every step runs under its deadline and
the whole session under ``session_s``; any failure is a verdict with its reason, never an
exception, and the link is always closed (the appliance keeps no connection after a verdict).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.core.credential.mdoc.engagement import choose_ble, parse_engagement
from appliance.core.credential.mdoc.request import ReaderAuthKey, RequestProfile
from appliance.core.credential.mdoc.session import ReaderSession
from appliance.core.credential.mdoc.verify import PROFILE, MdocFacts, MdocResult
from appliance.core.errors import (
    MessageTooLarge,
    Rejection,
    TransportFailed,
    TransportTimeout,
    TransportUnavailable,
)
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Verdict
from appliance.devices.mdoc_transport import Deadlines, MdocTransport

log = logging.getLogger(__name__)

# Step-0 reasons that are evidence against what arrived (FAIL); the others mean nothing
# trustworthy arrived (UNVERIFIABLE: a radio hiccup never lights red, s.4.1).
FAIL_REASONS = frozenset(
    {
        Reason.UNKNOWN_FORMAT,
        Reason.TOO_LARGE,
        Reason.MDOC_ENGAGEMENT_INVALID,
        Reason.MDOC_SESSION_DECRYPT_FAILED,
    }
)
# The screen events of a session, in order (the verdict follows them).
CONNECTING, APPROVE = "connecting", "approve"

# (DeviceResponse, the session it came in) -> the core's verdict and facts.
Judge = Callable[[bytes, ReaderSession], MdocResult]


@dataclass(frozen=True)
class SessionSettings:
    """The ``[mdoc]`` configuration a session needs, with the device's reader key."""

    profile: RequestProfile = "checkpoint"
    age_threshold: int = 20
    central_client_mode: bool = True
    max_response_bytes: int = 262_144
    reader_auth: ReaderAuthKey | None = None
    deadlines: Deadlines = field(default_factory=Deadlines)


def step0(reason: Reason) -> MdocResult:
    """A session-layer verdict (s.4 step 0): no credential was examined."""
    outcome = Outcome.FAIL if reason in FAIL_REASONS else Outcome.UNVERIFIABLE
    return MdocResult(Verdict(outcome, reason, PROFILE, live=True), MdocFacts())


async def read_mdoc(
    text: str,
    transport: MdocTransport | Callable[[], MdocTransport],
    settings: SessionSettings,
    judge: Judge,
    on_event: Callable[[str], None] = lambda _: None,
) -> MdocResult:
    """The verdict of one session with the phone that showed ``text``. Never raises
    (except cancellation); ``transport`` may be a factory, called once the QR parsed."""
    try:
        engagement = parse_engagement(text)
        option = choose_ble(engagement, central_client_mode=settings.central_client_mode)
        session = ReaderSession.start(
            engagement,
            settings.profile,
            age_threshold=settings.age_threshold,
            reader_auth=settings.reader_auth,
            max_response_bytes=settings.max_response_bytes,
        )
    except Rejection as r:
        return step0(r.reason)
    on_event(CONNECTING)
    try:
        link = transport() if callable(transport) else transport
    except TransportUnavailable as e:
        log.warning("mdoc: %s", e)
        return step0(Reason.MDOC_NO_SUPPORTED_TRANSPORT)
    except Exception as e:  # noqa: BLE001 - a radio that cannot even be set up costs this session only
        log.warning("mdoc: transport not opened (%s)", type(e).__name__)
        return step0(Reason.MDOC_TRANSPORT_FAILED)
    connected = False
    try:

        async def exchange() -> bytes:
            nonlocal connected
            await link.connect(engagement, option)
            connected = True
            await link.send(session.establishment())
            on_event(APPROVE)
            return await link.receive(settings.max_response_bytes)

        try:
            message = await asyncio.wait_for(exchange(), settings.deadlines.session_s)
        except TransportTimeout as e:
            log.info("mdoc session: timeout: %s", e)
            return step0(Reason.MDOC_TIMEOUT)
        except TimeoutError:
            log.info("mdoc session: timeout: whole session over %s s", settings.deadlines.session_s)
            return step0(Reason.MDOC_TIMEOUT)
        except TransportFailed as e:
            log.info("mdoc session: transport failed (%s)", e)
            return step0(Reason.MDOC_TRANSPORT_FAILED)
        except TransportUnavailable as e:  # the radio service found no usable controller
            log.warning("mdoc: %s", e)
            return step0(Reason.MDOC_NO_SUPPORTED_TRANSPORT)
        except MessageTooLarge:
            return step0(Reason.TOO_LARGE)
        except Exception as e:  # noqa: BLE001 - a stack fault costs this session, not the kiosk
            log.warning("mdoc session: BLE stack error %s", type(e).__name__)
            return step0(Reason.MDOC_TRANSPORT_FAILED)
        reply = session.receive(message)
        # The answer is in: end the session on the link before judging (s.3.2), so the
        # phone is released at once; a holder that already terminated gets no status 20.
        await link.close(None if reply.terminated else session.termination())
        connected = False
        if reply.response is None:
            assert reply.reason is not None
            return step0(reply.reason)
        return judge(reply.response, session)
    finally:
        if connected:
            await link.close(session.termination())
        else:
            await link.close(None)
        session.close()
