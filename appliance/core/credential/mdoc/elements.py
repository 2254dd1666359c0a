"""The disclosed data elements after their digests verified (spec mdl-reader s.3.4, s.4).

Only elements that were asked for are kept (s.4 step 1.6: the rest are never shown, never
used), except that any ``age_over_MM`` the issuer signed counts for the age decision (a
wallet may answer with a nearby threshold). Values are hostile text: screens escape them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from appliance.core.credential.mdoc.items_request import CHECKPOINT_NEEDS, MDL_NAMESPACE, Request
from appliance.core.reasons import Reason

if TYPE_CHECKING:
    from appliance.core.credential.mdoc.response import IssuerSignedItem

_AGE_OVER = re.compile(r"age_over_(\d\d)")
MAX_TEXT = 256


class Disclosed(NamedTuple):
    values: dict[tuple[str, str], Any]  # (namespace, identifier) -> value, asked-for only
    age_over: tuple[tuple[int, bool], ...]  # every signed age_over_MM of the mDL namespace

    @property
    def identifiers(self) -> tuple[str, ...]:
        return tuple(identifier for _, identifier in self.values)

    def has(self, identifier: str, namespace: str = MDL_NAMESPACE) -> bool:
        return (namespace, identifier) in self.values

    def text(self, identifier: str) -> str | None:
        """A text or date element of the mDL namespace as text (dates as YYYY-MM-DD)."""
        value = self.values.get((MDL_NAMESPACE, identifier))
        if isinstance(value, date):  # full-date (1004), or a tdate (0): its date
            value = (value.date() if isinstance(value, datetime) else value).isoformat()
        return value[:MAX_TEXT] if isinstance(value, str) else None

    @property
    def document_number(self) -> str | None:
        return self.text("document_number")

    @property
    def name(self) -> str:
        parts = (self.text("given_name"), self.text("family_name"))
        return " ".join(part for part in parts if part)

    @property
    def portrait(self) -> bytes | None:
        value = self.values.get((MDL_NAMESPACE, "portrait"))
        return value if type(value) is bytes else None

    @property
    def vehicle_categories(self) -> tuple[str, ...]:
        privileges = self.values.get((MDL_NAMESPACE, "driving_privileges"))
        if not isinstance(privileges, list):
            return ()
        return tuple(
            p["vehicle_category_code"][:16]
            for p in privileges
            if isinstance(p, dict) and isinstance(p.get("vehicle_category_code"), str)
        )

    def expired_on(self, local_epoch: float) -> bool:
        """``expiry_date`` disclosed and before the local date of ``local_epoch``."""
        expiry = _date(self.values.get((MDL_NAMESPACE, "expiry_date")))
        if expiry is None:
            return False
        try:
            today = datetime.fromtimestamp(local_epoch, UTC).date()
        except (OverflowError, OSError, ValueError):
            return False
        return expiry < today


def disclosed(name_spaces: dict[str, list[IssuerSignedItem]], request: Request) -> Disclosed:
    values: dict[tuple[str, str], Any] = {}
    ages: list[tuple[int, bool]] = []
    for namespace, items in name_spaces.items():
        asked = request.elements.get(namespace, ())
        mdl = namespace == MDL_NAMESPACE
        for item in items:
            identifier = item.identifier
            if mdl and identifier.startswith("age_over_"):
                match = _AGE_OVER.fullmatch(identifier)
                if match and type(item.value) is bool:
                    ages.append((int(match.group(1)), item.value))
            if identifier in asked:
                values[(namespace, identifier)] = item.value
    return Disclosed(values, tuple(sorted(ages)))


def decide_profile(
    shown: Disclosed, errors: dict[str, dict[str, int]], profile: str, age_threshold: int
) -> Reason | None:
    """Step 6 after acceptance: ``MDOC_ELEMENT_MISSING``, ``MDOC_AGE_NOT_MET`` or None."""
    if profile == "age":
        met = age_met(shown.age_over, age_threshold)
        if met is None:
            return Reason.MDOC_ELEMENT_MISSING
        return None if met else Reason.MDOC_AGE_NOT_MET
    for identifier in CHECKPOINT_NEEDS:
        if not shown.has(identifier) or identifier in errors.get(MDL_NAMESPACE, {}):
            return Reason.MDOC_ELEMENT_MISSING
    return None


def age_met(answers: tuple[tuple[int, bool], ...], threshold: int) -> bool | None:
    """``age_over_MM: true`` with MM >= NN satisfies; ``false`` with MM <= NN is not met;
    anything else is not answered (None)."""
    if any(value and mm >= threshold for mm, value in answers):
        return True
    if any(not value and mm <= threshold for mm, value in answers):
        return False
    return None


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
