"""Property values checked the way HubSpot checks them on create and update.

``clean_values`` turns a request's ``properties`` into stored strings (None clears) and
lists every problem as (property name, error code, message); the caller decides between a
400 for the whole request and a per-input error in a 207.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from crm.sandbox import messages as msg
from crm.sandbox.objects.types import ENGAGEMENT_TYPES, iso, parse_time

if TYPE_CHECKING:
    from crm.sandbox.objects.models import Record
    from crm.sandbox.state import SandboxState

Problem = tuple[str, str, str]
MAX_STRING = 65_536
# Digits, one optional decimal point, an optional sign; commas and a second point are refused.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# Stricter than "something@something": a dotted domain with a letter TLD, no spaces or doubled dots.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
REQUIRED_ON_CREATE = {
    "contacts": ("email", "firstname", "lastname"),
    "companies": ("domain", "name"),
    "deals": ("dealname", "dealstage"),
    # Tickets need a subject and a stage (the default pipeline is assumed); every engagement
    # needs hs_timestamp (docs/INTERACTIONS_API.md §2).
    "tickets": ("subject", "hs_pipeline_stage"),
    **{t: ("hs_timestamp",) for t in ENGAGEMENT_TYPES},
}
DEFAULT_TICKET_PIPELINE = "0"


def as_text(value: Any) -> str | None:
    """A JSON value as HubSpot stores it: strings as they are, booleans lower-case, numbers plain."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, str):
        return value
    return json.dumps(value)


def is_email(value: str) -> bool:
    return len(value) <= 254 and bool(_EMAIL.match(value))


def clean_values(
    state: SandboxState, object_type: str, raw: Any, *, existing: Record | None = None
) -> tuple[dict[str, str | None], list[Problem]]:
    """Check ``raw`` (the request's ``properties``) for ``object_type``; see the module docstring."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [("properties", msg.INVALID_PROPERTIES, msg.PROPERTIES_NOT_OBJECT)]
    registry = state.properties
    clean: dict[str, str | None] = {}
    problems: list[Problem] = []
    for name, value in raw.items():
        prop = registry.get(object_type, str(name))
        if prop is None:
            problems.append((name, msg.PROPERTY_DOESNT_EXIST, msg.PROPERTY_MISSING.format(name=name)))
            continue
        if prop.readOnlyValue:
            problems.append((name, msg.READ_ONLY_VALUE, msg.PROPERTY_READ_ONLY.format(name=name)))
            continue
        text = as_text(value)
        if text is None or text == "":
            clean[name] = None
            continue
        checked, problem = _check(state, object_type, prop.name, prop.type, prop.fieldType, text, existing)
        if problem:
            problems.append((name, problem[0], problem[1]))
        else:
            clean[name] = checked
    if object_type in STAGE_PROPERTIES and not problems:
        problems += _check_stage(state, object_type, clean, existing)
    return clean, problems


def _check(
    state: SandboxState,
    object_type: str,
    name: str,
    ptype: str,
    field_type: str,
    text: str,
    existing: Record | None,
) -> tuple[str, tuple[str, str] | None]:
    if ptype == "number":
        if not _NUMBER.match(text.strip()):
            return text, (msg.INVALID_INTEGER, msg.NUMBER_INVALID.format(value=text, name=name))
        return text.strip(), None
    if ptype == "bool":
        if text.strip().lower() not in ("true", "false"):
            return text, (msg.INVALID_BOOLEAN, msg.BOOLEAN_INVALID.format(value=text, name=name))
        return text.strip().lower(), None
    if ptype == "date":
        ms = parse_time(text)
        if ms is None or ms % 86_400_000:
            return text, (msg.INVALID_DATE, msg.DATE_INVALID.format(value=text, name=name))
        return iso(ms), None
    if ptype == "datetime":
        ms = parse_time(text)
        if ms is None:
            return text, (msg.INVALID_DATETIME, msg.DATETIME_INVALID.format(value=text, name=name))
        return iso(ms), None
    if ptype == "enumeration":
        return _check_option(state, object_type, name, field_type, text, existing)
    if len(text) > MAX_STRING:
        return text, (msg.INVALID_LONG_STRING, msg.STRING_TOO_LONG.format(name=name))
    if object_type == "contacts" and name == "email":
        if not is_email(text.strip()):
            return text, (msg.INVALID_EMAIL, msg.EMAIL_INVALID.format(value=text))
        # HubSpot stores contact emails lower-cased.
        return text.strip().lower(), None
    return text, None


def _check_option(
    state: SandboxState, object_type: str, name: str, field_type: str, text: str, existing: Record | None
) -> tuple[str, tuple[str, str] | None]:
    if name == "hubspot_owner_id":
        allowed = state.owners.active_ids()
    elif object_type == "deals" and name == "pipeline":
        allowed = list(state.pipelines.pipelines)
    elif object_type == "deals" and name == "dealstage":
        # Checked against the deal's pipeline once every value is known (_check_stage).
        return text, None
    elif object_type == "tickets" and name == "hs_pipeline":
        allowed = list(state.pipelines.tickets)
    elif object_type == "tickets" and name == "hs_pipeline_stage":
        return text, None  # Checked against the ticket's pipeline (_check_ticket_stage).
    else:
        prop = state.properties.get(object_type, name)
        allowed = [o["value"] for o in prop.options] if prop else []
    if field_type == "checkbox":
        # Multi-select: values separated by ";"; a leading ";" appends to the current ones.
        parts = [p for p in text.split(";") if p]
        bad = [p for p in parts if p not in allowed]
        if bad:
            return text, (msg.INVALID_OPTION, msg.OPTION_INVALID.format(value=bad[0], allowed=allowed))
        if text.startswith(";") and existing is not None:
            current = state.objects.types[object_type].raw(existing, name)
            merged = [p for p in (current or "").split(";") if p]
            parts = merged + [p for p in parts if p not in merged]
        return ";".join(parts), None
    if text not in allowed:
        return text, (msg.INVALID_OPTION, msg.OPTION_INVALID.format(value=text, allowed=allowed))
    return text, None


# (pipeline property, stage property, default pipeline) for the types whose stage depends on a pipeline.
STAGE_PROPERTIES = {
    "deals": ("pipeline", "dealstage", "default"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage", DEFAULT_TICKET_PIPELINE),
}


def _check_stage(
    state: SandboxState, object_type: str, clean: dict[str, str | None], existing: Record | None
) -> list[Problem]:
    """The stage being written must belong to the record's (new or current) pipeline."""
    pipeline_name, stage_name, default = STAGE_PROPERTIES[object_type]
    store = state.objects.types[object_type]
    pipeline = (
        clean.get(pipeline_name) or (store.raw(existing, pipeline_name) if existing else None) or default
    )
    stage = clean.get(stage_name) if stage_name in clean else None
    if stage is None and pipeline_name in clean and existing is not None:
        stage = store.raw(existing, stage_name)
    if stage is None:
        return []
    allowed = state.pipelines.stage_ids(pipeline, object_type)
    if stage not in allowed:
        return [(stage_name, msg.INVALID_OPTION, msg.OPTION_INVALID.format(value=stage, allowed=allowed))]
    return []


def derive_values(object_type: str, values: dict[str, str | None], existing: Record | None) -> None:
    """Fill the defaults HubSpot fills on a write, in place (``closed_date`` is the store's job).

    Tickets get the default pipeline when none is given; a meeting's ``hs_timestamp``
    defaults to ``hs_meeting_start_time`` (docs/INTERACTIONS_API.md §2).
    """
    if existing is not None:
        return
    if object_type == "meetings" and not values.get("hs_timestamp") and values.get("hs_meeting_start_time"):
        values["hs_timestamp"] = values["hs_meeting_start_time"]
    if object_type == "tickets" and not values.get("hs_pipeline"):
        values["hs_pipeline"] = DEFAULT_TICKET_PIPELINE


def missing_required(object_type: str, values: dict[str, str | None]) -> str | None:
    """The error message when a create lacks every one of the type's identifying properties."""
    if object_type in ("deals", "tickets") or object_type in ENGAGEMENT_TYPES:
        # Deals and tickets need a name and a stage (the default pipeline is assumed when none
        # is given); engagements need hs_timestamp.
        absent = [n for n in REQUIRED_ON_CREATE[object_type] if not values.get(n)]
        return msg.MISSING_ALL_REQUIRED.format(names=", ".join(absent)) if absent else None
    names = REQUIRED_ON_CREATE[object_type]
    if any(values.get(n) for n in names):
        return None
    return msg.MISSING_REQUIRED.format(names=", ".join(names))
