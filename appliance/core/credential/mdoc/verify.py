"""``verify_mdoc_response(...) -> Verdict``: one DeviceResponse, one verdict (spec mdl-reader s.4).

Pure and total like ``appliance.core.verifier.verify``: bytes, keys, the trust snapshot and
``now`` in, one verdict with one reason out, decided in the order of s.4 (step 0 session,
step 1 bytes and signatures, 2 clock, 3 time, 4 status list, 5 staleness, 6 checkpoint
acceptance and the request profile, 7 unknown status, 8 OK). No IO, no clock of its own;
stages raise the core's private ``Rejection``, caught here; anything else is a bug that costs
this input (FAIL ``MDOC_MALFORMED``, logged with its type and place, never the bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import traceback
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.cose_key import (
    ecdsa_alg_fits,
    public_key_from_cose,
    verify_ecdsa,
)
from appliance.core.credential.mdoc.device_auth import (
    device_auth_kind,
    device_auth_ok,
    sig1_structure,
)
from appliance.core.credential.mdoc.ds_cert import (
    DsCertificate,
    ds_profile_ok,
    find_iaca,
    load_ds_certificate,
)
from appliance.core.credential.mdoc.elements import Disclosed, decide_profile, disclosed
from appliance.core.credential.mdoc.items_request import (
    DEFAULT_AGE_THRESHOLD,
    Request,
    profile_request,
)
from appliance.core.credential.mdoc.mso import DIGEST_ALGORITHMS, Mso, parse_mso
from appliance.core.credential.mdoc.response import (
    HOLDER_ERROR_STATUSES,
    STATUS_OK,
    Document,
    document_doc_type,
    parse_device_response,
    parse_document,
)
from appliance.core.credential.model import Credential
from appliance.core.errors import (
    CoseKeyError,
    MdocStop,
    Rejection,
    SessionDataTooLarge,
    SessionDecryptError,
    UnsupportedCurve,
)
from appliance.core.key_ring import IssuerKey
from appliance.core.reasons import Outcome, Reason
from appliance.core.remote_policy import out_of_service
from appliance.core.snapshot import REVOKED, SUSPENDED, VALID, TrustSnapshot
from appliance.core.staleness import trust_stale
from appliance.core.verifier import DEFAULT_CHECKPOINT, Checkpoint, Verdict

PROFILE = "MDOC"
KEY_FORMAT = "MDOC"  # the trust data's key set for mdoc roots (``iaca`` keys)
_log = logging.getLogger(__name__)


class MdocFacts(NamedTuple):
    """What the verification established, for the command line and the screens. Each field
    is set only once the step that vouches for it has passed (None/empty otherwise)."""

    doc_type: str | None = None  # after the issuer signature verified
    valid_until: float | None = None
    device_auth: str | None = None  # "mac" | "signature", after it verified
    disclosed: Disclosed | None = None  # asked-for elements whose digests verified
    age_over: tuple[tuple[int, bool], ...] = ()

    @property
    def document_number(self) -> str | None:
        return None if self.disclosed is None else self.disclosed.document_number

    @property
    def elements(self) -> tuple[str, ...]:
        return () if self.disclosed is None else self.disclosed.identifiers


class MdocResult(NamedTuple):
    verdict: Verdict
    facts: MdocFacts


def verify_mdoc_response(response: bytes, **kwargs: Any) -> Verdict:
    """The verdict of ``verify_mdoc`` alone (same keyword arguments)."""
    return verify_mdoc(response, **kwargs).verdict


def verify_mdoc(
    response: bytes,
    *,
    session_transcript_bytes: bytes,
    e_reader_key: ec.EllipticCurvePrivateKey | None,
    trust: TrustSnapshot,
    now: float,
    request: Request | None = None,
    profile: str = "checkpoint",
    age_threshold: int = DEFAULT_AGE_THRESHOLD,
    clock_trusted: bool = True,
    checkpoint: Checkpoint = DEFAULT_CHECKPOINT,
    max_response_bytes: int = sc.DEFAULT_MAX_SESSION_DATA,
    utc_offset_s: int = 0,
) -> MdocResult:
    """Decide one DeviceResponse. Never raises.

    ``request`` is what was asked (default: the profile's own request); ``profile`` is the
    decision rule of step 6 (``checkpoint`` or ``age`` with ``age_threshold``);
    ``utc_offset_s`` gives the device's local date for ``expiry_date`` (step 3, [D6]).
    """
    run = _Run(trust, now, checkpoint)
    try:
        stopped = out_of_service(trust.policy, checkpoint.device_id, checkpoint.software_version)
        if stopped is not None:
            raise MdocStop(Outcome.UNVERIFIABLE, stopped)
        asked = request if request is not None else profile_request(profile, age_threshold)
        run.steps(
            response,
            session_transcript_bytes,
            e_reader_key,
            asked,
            profile,
            age_threshold,
            clock_trusted,
            max_response_bytes,
            utc_offset_s,
        )
    except MdocStop as stop:
        return run.result(stop.outcome, stop.reason)
    except Rejection as r:
        return run.result(Outcome.FAIL, r.reason)
    except Exception as e:  # noqa: BLE001 - a bug some input reaches: it costs this input only
        _log_fault(e)
        return run.result(Outcome.FAIL, Reason.MDOC_MALFORMED)
    return run.result(Outcome.PASS, Reason.OK)


def verify_mdoc_session_data(
    message: bytes,
    *,
    e_device_key: ec.EllipticCurvePublicKey,
    session_transcript_bytes: bytes,
    e_reader_key: ec.EllipticCurvePrivateKey,
    counter: int = 1,
    max_response_bytes: int = sc.DEFAULT_MAX_SESSION_DATA,
    **kwargs: Any,
) -> MdocResult:
    """A SessionData message from the holder: decrypted (SKDevice, ``counter``), then
    ``verify_mdoc``; the step-0 failures of the session layer are verdicts too, after the
    remote policy (which comes before step 0, as for every profile)."""
    checkpoint = kwargs.get("checkpoint", DEFAULT_CHECKPOINT)
    run = _Run(kwargs.get("trust"), 0.0, checkpoint)
    try:
        stopped = out_of_service(
            kwargs["trust"].policy, checkpoint.device_id, checkpoint.software_version
        )
        if stopped is not None:
            return run.result(Outcome.UNVERIFIABLE, stopped)
        try:
            session_data = sc.parse_session_data(message, max_response_bytes)
        except SessionDataTooLarge:
            return run.result(Outcome.FAIL, Reason.TOO_LARGE)
        except ValueError:
            return run.result(Outcome.FAIL, Reason.MDOC_SESSION_DECRYPT_FAILED)
        if session_data.data is None:
            status = session_data.status
            if status == sc.STATUS_TERMINATED:
                return run.result(Outcome.UNVERIFIABLE, Reason.MDOC_DECLINED)
            return run.result(Outcome.UNVERIFIABLE, Reason.MDOC_HOLDER_ERROR)
        keys = sc.session_keys(e_reader_key, e_device_key, session_transcript_bytes)
        plain = sc.decrypt(keys.sk_device, sc.DEVICE, counter, session_data.data)
    except (SessionDecryptError, ValueError):
        return run.result(Outcome.FAIL, Reason.MDOC_SESSION_DECRYPT_FAILED)
    except Exception as e:  # noqa: BLE001 - a bug some input reaches: it costs this input only
        _log_fault(e)
        return run.result(Outcome.FAIL, Reason.MDOC_SESSION_DECRYPT_FAILED)
    return verify_mdoc(
        plain,
        session_transcript_bytes=session_transcript_bytes,
        e_reader_key=e_reader_key,
        max_response_bytes=max_response_bytes,
        **kwargs,
    )


class _Run:
    """One verification's state: what is known so far goes into the verdict and facts."""

    def __init__(self, trust: Any, now: float, checkpoint: Checkpoint) -> None:
        self.trust, self.now, self.checkpoint = trust, now, checkpoint
        self.key: IssuerKey | None = None
        self.profile = "checkpoint"
        self.mso: Mso | None = None  # once the issuer signature verified
        self.shown: Disclosed | None = None  # once the digests verified
        self.device_auth: str | None = None  # once device authentication verified

    @property
    def facts(self) -> MdocFacts:
        mso, shown = self.mso, self.shown
        return MdocFacts(
            mso.doc_type if mso is not None else None,
            mso.valid_until if mso is not None else None,
            self.device_auth,
            shown,
            shown.age_over if shown is not None else (),
        )

    def result(self, outcome: Outcome, reason: Reason) -> MdocResult:
        """The verdict with what is known: the credential once the issuer signature
        verified (its docType for the audit), its elements once their digests did."""
        kid = self.key.kid if self.key is not None else None
        credential = (
            None
            if self.mso is None
            else _credential(self.key, self.mso, self.shown or _NOTHING_SHOWN, self.profile)
        )
        verdict = Verdict(outcome, reason, PROFILE, kid, self.key, credential, True)
        return MdocResult(verdict, self.facts)

    def steps(
        self,
        response: bytes,
        transcript: bytes,
        e_reader_key: Any,
        request: Request,
        profile: str,
        age_threshold: int,
        clock_trusted: bool,
        max_bytes: int,
        utc_offset_s: int,
    ) -> None:
        self.profile = profile
        document = self.session(response, max_bytes, request.doc_type)
        mso, ds, device_key = self.structure(document)
        self.issuer(ds, document, mso, request)
        shown = self.digests(document, mso, request)
        self.device(document, device_key, transcript, e_reader_key)
        if not ds.not_before <= mso.signed <= ds.not_after:
            raise Rejection(Reason.MDOC_SIGNED_OUTSIDE_DS_VALIDITY)
        # Step 2: the clock.
        if not clock_trusted:
            raise MdocStop(Outcome.UNVERIFIABLE, Reason.CLOCK_UNTRUSTED)
        # Step 3: time (MSO window first, then the DS certificate, the IACA, the licence).
        skew, now = self.trust.policy.clock_skew_s, self.now
        if now < mso.valid_from - skew:
            raise Rejection(Reason.NOT_YET_VALID)
        if now > mso.valid_until + skew:
            raise Rejection(Reason.EXPIRED)
        if not ds.not_before <= now <= ds.not_after:
            raise Rejection(Reason.MDOC_DS_EXPIRED)
        key = self.key
        assert key is not None
        if not key.not_before <= now <= key.not_after:
            raise Rejection(Reason.ISSUER_KEY_EXPIRED)
        if profile == "checkpoint" and shown.expired_on(now + utc_offset_s):
            raise Rejection(Reason.MDOC_LICENCE_EXPIRED)
        # Step 4: the MSO status list (unknown is decided at step 7).
        status = self.status(mso)
        if status is not None and status is not Reason.STATUS_UNKNOWN:
            raise Rejection(status)
        # Step 5: stale trust data.
        if self.checkpoint.check_staleness and trust_stale(self.trust, now) is not False:
            raise MdocStop(Outcome.UNVERIFIABLE, Reason.TRUST_DATA_STALE)
        # Step 6: this checkpoint's acceptance, then what the profile's decision needs.
        accepted = self.checkpoint.accepted_types
        if accepted and mso.doc_type not in accepted:
            raise Rejection(Reason.TYPE_NOT_ACCEPTED)
        decision = decide_profile(shown, document.errors, profile, age_threshold)
        if decision is not None:
            outcome = Outcome.FAIL if decision is Reason.MDOC_AGE_NOT_MET else Outcome.UNVERIFIABLE
            raise MdocStop(outcome, decision)
        # Step 7: unknown status, as the policy says.
        if status is Reason.STATUS_UNKNOWN:
            raise MdocStop(Outcome(self.trust.policy.unknown_status.upper()), status)

    def session(self, response: bytes, max_bytes: int, doc_type: str) -> Document:
        """Step 0: size, the top level, the holder's status, the Document asked for."""
        if len(response) > max_bytes:
            raise Rejection(Reason.TOO_LARGE)
        parsed = parse_device_response(response)
        if parsed.status in HOLDER_ERROR_STATUSES:
            raise MdocStop(Outcome.UNVERIFIABLE, Reason.MDOC_HOLDER_ERROR)
        if parsed.status != STATUS_OK:
            raise Rejection(Reason.MDOC_MALFORMED)
        matching = [d for d in parsed.documents if document_doc_type(d) == doc_type]
        if len(matching) > 1:
            raise Rejection(Reason.MDOC_MALFORMED)
        if not matching and len(parsed.documents) == 1:
            matching = parsed.documents  # judged at step 1.5: MDOC_DOCTYPE_MISMATCH
        if not matching:
            raise MdocStop(Outcome.UNVERIFIABLE, Reason.MDOC_NOT_RETURNED)
        return parse_document(matching[0])

    def structure(self, document: Document) -> tuple[Mso, DsCertificate, Any]:
        """Step 1.1: the MSO's shape, then the algorithms and curves the appliance does.
        Returns the MSO, the DS certificate and the device key."""
        assert document.issuer_auth.payload is not None
        mso = parse_mso(document.issuer_auth.payload)
        ds = load_ds_certificate(document.ds_certificate)
        unsupported = (
            not ecdsa_alg_fits(document.issuer_auth.alg, ds.public_key)
            or mso.digest_algorithm not in DIGEST_ALGORITHMS
        )
        device_key = None
        try:
            device_key = public_key_from_cose(mso.device_key)
        except UnsupportedCurve:
            unsupported = True
        except CoseKeyError as e:
            raise Rejection(Reason.MDOC_MALFORMED) from e
        if unsupported:
            raise MdocStop(Outcome.UNVERIFIABLE, Reason.MDOC_UNSUPPORTED_ALGORITHM)
        return mso, ds, device_key

    def issuer(self, ds: DsCertificate, document: Document, mso: Mso, request: Request) -> None:
        """Steps 1.2-1.5: the IACA, the DS profile and list, the signature, the docTypes."""
        root = find_iaca(ds, self.trust.keys.by_format.get(KEY_FORMAT, _NO_ROOTS))
        if root is None:
            raise Rejection(Reason.MDOC_ISSUER_UNKNOWN)
        self.key = key = root.key
        if key.revoked:
            raise Rejection(Reason.ISSUER_KEY_REVOKED)
        if not ds_profile_ok(ds, root):
            raise Rejection(Reason.MDOC_DS_CERT_INVALID)
        if ds.fingerprint in self.trust.revoked_mdoc_ds:
            raise Rejection(Reason.MDOC_DS_REVOKED)
        auth = document.issuer_auth
        assert auth.payload is not None
        if not verify_ecdsa(
            auth.alg, ds.public_key, sig1_structure(auth.protected, auth.payload), auth.tag
        ):
            raise Rejection(Reason.MDOC_BAD_ISSUER_SIGNATURE)
        self.mso = mso
        if not mso.doc_type == document.doc_type == request.doc_type:
            raise Rejection(Reason.MDOC_DOCTYPE_MISMATCH)
        if mso.doc_type not in key.types:
            raise Rejection(Reason.TYPE_NOT_ALLOWED_FOR_KEY)

    def digests(self, document: Document, mso: Mso, request: Request) -> Disclosed:
        """Step 1.6: every disclosed item's digest over its bytes as received; then the
        items that were not asked for are dropped."""
        hash_of = DIGEST_ALGORITHMS[mso.digest_algorithm]
        for namespace, items in document.name_spaces.items():
            expected = mso.value_digests.get(namespace)
            if expected is None:
                raise Rejection(Reason.MDOC_DIGEST_MISMATCH)
            seen: set[int] = set()
            for item in items:
                digest = expected.get(item.digest_id)
                if (
                    item.digest_id in seen
                    or digest is None
                    or len(item.random) < 16
                    or not hmac.compare_digest(hash_of(item.raw).digest(), digest)
                ):
                    raise Rejection(Reason.MDOC_DIGEST_MISMATCH)
                seen.add(item.digest_id)
        shown = disclosed(document.name_spaces, request)
        self.shown = shown
        return shown

    def device(
        self, document: Document, device_key: Any, transcript: bytes, e_reader_key: Any
    ) -> None:
        """Step 1.7: deviceMac or deviceSignature with the MSO's device key."""
        if not device_auth_ok(document, device_key, transcript, e_reader_key):
            raise Rejection(Reason.MDOC_BAD_DEVICE_AUTH)
        self.device_auth = device_auth_kind(document)

    def status(self, mso: Mso) -> Reason | None:
        if mso.status_uri is None:
            return None
        status_list = self.trust.status_lists.get(mso.status_uri)
        value = None if status_list is None else status_list.status(mso.status_idx or 0)
        if value is None:
            return Reason.STATUS_UNKNOWN
        if value == VALID:
            return None
        return {REVOKED: Reason.REVOKED, SUSPENDED: Reason.SUSPENDED}.get(
            value, Reason.STATUS_OTHER
        )


_NOTHING_SHOWN = Disclosed({}, ())
_NO_ROOTS: dict[bytes, IssuerKey] = {}


def _credential(key: IssuerKey | None, mso: Mso, shown: Disclosed, profile: str) -> Credential:
    """The verified facts in the shape every profile shares (audit, screens). ``cti`` is the
    MSO digest, kept only in the ``checkpoint`` profile (no linkable pseudonym in ``age``,
    spec s.6 [D9]); ``no`` is empty unless ``document_number`` was disclosed."""
    cti = hashlib.sha256(mso.payload).digest() if profile == "checkpoint" else None
    return Credential(
        profile=PROFILE,
        iss=key.iss if key is not None else None,
        exp=mso.valid_until,
        iat=mso.signed,
        nbf=mso.valid_from,
        cti=cti,
        typ=mso.doc_type,
        no=shown.document_number or "",
        nm=shown.name,
        dob=shown.text("birth_date"),
        cls=shown.vehicle_categories,
        vf=shown.text("issue_date"),
        vu=shown.text("expiry_date"),
        ph=shown.portrait,
        status_uri=mso.status_uri,
        status_idx=mso.status_idx,
    )


def _log_fault(error: Exception) -> None:
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    _log.error(
        "MDOC verification raised %s at %s (a verifier bug); verdict FAIL MDOC_MALFORMED",
        type(error).__name__,
        where,
    )
