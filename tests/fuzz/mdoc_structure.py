"""Structure-aware generator for the mdoc verifier (hypothesis strategies).

A hostile CBOR tree (tests/fuzz/structure.py) is put in one place of an otherwise valid
DeviceResponse from a trusted test issuer: the top level, the Document, the issuerAuth
headers, the MSO (re-signed, so the tree reaches the steps after the issuer signature), an
element value (digest and MSO re-signed: it reaches the elements after step 1.6), an item,
the device-signed part. Used by tests/mdoc/test_mdoc_properties.py (short, derandomized) and
by fuzz_mdoc.py (atheris).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cbor2
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mdoc"))

from issuer_support import checkpoint_elements
from mdoc_cases import World, reencode
from structure import cbor_trees

from appliance.core.credential.mdoc.cbor import decode
from appliance.core.credential.mdoc.items_request import MDL_NAMESPACE
from appliance.tools.issuer_mdoc import dumps

PLACES = (
    "response-entry",
    "response-status",
    "response-documents",
    "document-entry",
    "document-doctype",
    "issuer-namespaces",
    "issuer-unprotected",
    "issuer-protected",
    "mso-entry",
    "mso-validity",
    "mso-digests",
    "mso-device-key",
    "mso-status",
    "element-value",
    "item-whole",
    "device-namespaces",
    "device-auth",
    "device-mac",
    "errors",
)
MAX_RESPONSE_BYTES = 60_000


def _safe(value: Any) -> bytes | None:
    try:
        return cbor2.dumps(value)
    except (TypeError, ValueError, OverflowError, cbor2.CBOREncodeError, RecursionError):
        return None


def response_with(world: World, place: str, hostile: Any) -> bytes | None:
    """A valid response of ``world`` with ``hostile`` in ``place`` (None: not encodable)."""
    if _safe(hostile) is None:
        return None
    elements = checkpoint_elements()
    mso_changes: dict[str, Any] = {}
    if place == "element-value":
        elements[MDL_NAMESPACE]["family_name"] = hostile
    elif place.startswith("mso-"):
        field = {
            "mso-entry": "x-hostile",
            "mso-validity": "validityInfo",
            "mso-digests": "valueDigests",
            "mso-device-key": "deviceKeyInfo",
            "mso-status": "status",
        }[place]
        mso_changes[field] = hostile
    try:
        mdoc = world.issue(elements, mso_changes=mso_changes)
        response = world.response(mdoc)
    except (TypeError, ValueError, OverflowError, cbor2.CBOREncodeError, RecursionError):
        return None
    if place in ("element-value",) or place.startswith("mso-"):
        return response if len(response) <= MAX_RESPONSE_BYTES else None
    item = decode(response)
    document = item["documents"][0]
    if place == "response-entry":
        item["x-hostile"] = hostile
    elif place == "response-status":
        item["status"] = hostile
    elif place == "response-documents":
        item["documents"] = hostile
    elif place == "document-entry":
        document["x-hostile"] = hostile
    elif place == "document-doctype":
        document["docType"] = hostile
    elif place == "issuer-namespaces":
        document["issuerSigned"]["nameSpaces"] = hostile
    elif place == "issuer-unprotected":
        document["issuerSigned"]["issuerAuth"][1] = {33: hostile}
    elif place == "issuer-protected":
        protected = _safe({1: -7, 33: hostile})
        if protected is None:
            return None
        document["issuerSigned"]["issuerAuth"][0] = protected
    elif place == "item-whole":
        raw = _safe(hostile)
        assert raw is not None
        document["issuerSigned"]["nameSpaces"][MDL_NAMESPACE][0] = cbor2.CBORTag(24, raw)
    elif place == "device-namespaces":
        document["deviceSigned"]["nameSpaces"] = hostile
    elif place == "device-auth":
        document["deviceSigned"]["deviceAuth"] = hostile
    elif place == "device-mac":
        document["deviceSigned"]["deviceAuth"]["deviceMac"][1] = {hostile_key(hostile): 1}
    elif place == "errors":
        document["errors"] = hostile
    try:
        out = dumps(reencode(item))
    except (TypeError, ValueError, OverflowError, cbor2.CBOREncodeError, RecursionError):
        return None
    return out if len(out) <= MAX_RESPONSE_BYTES else None


def hostile_key(value: Any) -> Any:
    try:
        hash(value)
    except (TypeError, RuntimeError):
        return 1
    return value


def responses(world: World, places: tuple[str, ...] = PLACES) -> st.SearchStrategy[bytes]:
    """DeviceResponse bytes with a hostile tree in one place (unencodable draws skipped)."""
    return (
        st.tuples(st.sampled_from(places), cbor_trees())
        .map(lambda pv: response_with(world, *pv))
        .filter(lambda r: r is not None)
    )  # type: ignore[arg-type]
