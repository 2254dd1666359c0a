"""An mdoc verdict as ``appliance mdoc verify`` and ``mdoc read`` print it (spec mdl-reader
s.5.1): one tab-separated line, or one JSON object with ``--json``.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.commands.mdoc_inputs import Inputs
    from appliance.core.credential.mdoc.verify import MdocResult


def print_result(result: MdocResult, as_json: bool, inputs: Inputs | None = None) -> None:
    """One line (or JSON object) per response, spec s.5.1."""
    print(
        json.dumps(result_json(result, inputs), ensure_ascii=False)
        if as_json
        else result_line(result)
    )


def result_line(result: MdocResult) -> str:
    verdict, facts = result
    fields = [
        str(verdict.outcome),
        str(verdict.reason),
        "MDOC",
        verdict.iss or "-",
        facts.doc_type or "-",
        facts.document_number or "-",
    ]
    return "\t".join(_one_line(f) for f in fields)


def result_json(result: MdocResult, inputs: Inputs | None = None) -> dict[str, Any]:
    from appliance.core.credential.mdoc.elements import age_met
    from appliance.core.isotime import format_utc

    verdict, facts = result
    out: dict[str, Any] = {
        "verdict": str(verdict.outcome),
        "reason": str(verdict.reason),
        "profile": "MDOC",
    }
    if verdict.iss is not None:
        out["iss"] = verdict.iss
    if verdict.kid is not None:
        out["kid"] = verdict.kid.hex()
    if facts.doc_type is not None:
        out["doctype"] = facts.doc_type
    if facts.document_number is not None:
        out["no"] = facts.document_number
    if facts.valid_until is not None:
        with contextlib.suppress(ValueError):  # a date out of datetime's range: left out
            out["valid_until"] = format_utc(facts.valid_until)
    if facts.device_auth is not None:
        out["device_auth"] = facts.device_auth
    if facts.disclosed is not None:
        out["elements"] = list(facts.elements)
    if inputs is not None and inputs.profile == "age" and facts.age_over:
        met = age_met(facts.age_over, inputs.age)
        if met is not None:
            out["age_over"] = {str(inputs.age): met}
    return out


def _one_line(text: str) -> str:
    """Credential text in a tab-separated line: no tabs, newlines or other controls."""
    return "".join(c if c.isprintable() else "?" for c in text) or "-"
