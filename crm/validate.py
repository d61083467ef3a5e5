"""Checks local edits against HubSpot's property definitions before anything is queued.

Pure functions: the caller passes the definitions, pipelines and owners (from the cache)
and gets back the values in HubSpot's wire form or a message per field. The rules follow
what HubSpot itself refuses (HUBSPOT_API.md §2.4, §3, §8):

- the property exists and is writable (not read-only, not calculated);
- numbers: digits with at most one decimal point, no thousands separators;
- booleans: true/false; dates: ``YYYY-MM-DD`` (midnight UTC); datetimes: ISO-8601 or
  epoch milliseconds, sent as ISO-8601 UTC;
- enumerations: one of the option *values* (case-sensitive); checkbox enumerations take
  several, ``;``-separated; ``dealstage`` must be a stage of the deal's pipeline,
  ``pipeline`` a known pipeline, ``hubspot_owner_id`` an active owner's id;
- email: one ``@``, a dotted domain, no spaces (stricter than a loose regex, as HubSpot is);
- a new contact needs an email: contacts are created by upsert keyed on email.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crm.store.values import parse_datetime

MAX_STRING = 65_536
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_TLD_RE = re.compile(r"^[A-Za-z]{2,63}$")
_MULTI_FIELD_TYPES = ("checkbox",)
# Required on create, per HubSpot (contacts: email, because we create by upsert on email).
REQUIRED_ON_CREATE = {
    "contacts": ("email",),
    "companies": ("name",),
    "deals": ("dealname", "dealstage"),
    "tickets": ("subject", "hs_pipeline_stage"),
}
# The (pipeline, stage) properties of the types that have pipelines; a stage must belong
# to the record's pipeline (ticket stages are the ticket pipeline's, docs/INTERACTIONS_API.md §3).
PIPELINE_PROPERTIES = {"deals": ("pipeline", "dealstage"), "tickets": ("hs_pipeline", "hs_pipeline_stage")}
_NOUN = {"deals": "deal", "tickets": "ticket"}


class FieldError(ValueError):
    """One value is not acceptable; the message says why in words for the person editing."""


@dataclass
class Context:
    """What validation needs to know about the portal (from the cache)."""

    defs: Mapping[str, Mapping[str, Any]]
    # pipeline id -> stage ids (deals, tickets)
    stages: Mapping[str, Iterable[str]] = field(default_factory=dict)
    owner_ids: Iterable[str] = ()
    # The CRM's name and its owner property, for messages and the owner check (from the
    # CRM's provider: crm.sync.validation_context fills them).
    crm_name: str = "HubSpot"
    owner_property: str = "hubspot_owner_id"
    # The type's pipeline and stage properties and what a new record needs, in the CRM's
    # names (its ``ObjectTypeInfo``); None: HubSpot's (``PIPELINE_PROPERTIES``,
    # ``REQUIRED_ON_CREATE``).
    pipeline_property: str | None = None
    stage_property: str | None = None
    required_on_create: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.stages = {str(p): {str(s) for s in ids} for p, ids in self.stages.items()}
        self.owner_ids = {str(o) for o in self.owner_ids}


def is_valid_email(text: str) -> bool:
    """Whether ``text`` is an address HubSpot would take: one @, dotted domain, no spaces."""
    if not text or len(text) > 254 or any(ch.isspace() for ch in text) or text.count("@") != 1:
        return False
    local, domain = text.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.match(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return False
    return bool(_TLD_RE.match(labels[-1]))


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and value.strip() == "":
        return True
    try:
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, (str, bytes, list, tuple, set)) and pd.isna(value)):
            return True
    except (ImportError, TypeError, ValueError):
        pass
    return False


def _number(value: Any) -> str:
    if isinstance(value, bool):
        raise FieldError("must be a number")
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value))
    else:
        text = str(value).strip()
        if "," in text:
            raise FieldError("must be a number without thousands separators (e.g. 1500.50)")
        if not _NUMBER_RE.match(text):
            raise FieldError("must be a number (digits with at most one decimal point)")
        number = Decimal(text)
    if not number.is_finite():
        raise FieldError("must be a finite number")
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def _bool(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and value in (0, 1):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text
    raise FieldError("must be true or false")


def _as_datetime(value: Any) -> dt.datetime:
    """A UTC datetime, read as the cache reads one; raises ValueError when empty or unreadable."""
    if isinstance(value, str) and value.strip().startswith("-"):
        # The cache reads "-123456789" as epoch milliseconds before 1970; an edit is refused.
        raise ValueError(value)
    moment = parse_datetime(value)
    if moment is None:
        raise ValueError("empty")
    return moment


def _date(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if _DATE_RE.match(text):
            try:
                return dt.date.fromisoformat(text).isoformat()
            except ValueError:
                raise FieldError("is not a real date (YYYY-MM-DD)") from None
    try:
        moment = _as_datetime(value)
    except (ValueError, OverflowError, OSError, TypeError):
        raise FieldError("must be a date (YYYY-MM-DD)") from None
    if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
        raise FieldError("must be a date without a time (YYYY-MM-DD)")
    return moment.date().isoformat()


def _datetime(value: Any) -> str:
    try:
        moment = _as_datetime(value)
    except (ValueError, OverflowError, OSError, TypeError):
        raise FieldError("must be a date and time (e.g. 2024-05-01T09:30:00Z)") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _options_text(values: list[str]) -> str:
    shown = ", ".join(values[:12])
    return shown + (", …" if len(values) > 12 else "")


def _enumeration(definition: Mapping[str, Any], value: Any) -> str:
    options = [str(o.get("value")) for o in definition.get("options") or [] if o.get("value") is not None]
    multi = definition.get("field_type") in _MULTI_FIELD_TYPES
    if isinstance(value, (list, tuple, set)):
        parts = [str(v).strip() for v in value if not _is_empty(v)]
    else:
        parts = [p.strip() for p in str(value).split(";")] if multi else [str(value).strip()]
        parts = [p for p in parts if p]
    if not multi and len(parts) != 1:
        raise FieldError("takes exactly one option")
    if options:
        bad = [p for p in parts if p not in options]
        if bad:
            labels = {str(o.get("value")): str(o.get("label")) for o in definition.get("options") or []}
            by_label = {v.lower(): k for k, v in labels.items()}
            hint = by_label.get(bad[0].lower())
            if hint is not None:
                raise FieldError(f"'{bad[0]}' is a label; use its value '{hint}'")
            raise FieldError(f"'{bad[0]}' is not one of the options: {_options_text(options)}")
    return ";".join(parts)


def normalize(definition: Mapping[str, Any], value: Any, *, crm_name: str = "HubSpot") -> str | None:
    """``value`` in the CRM's wire form for this property (None clears it).

    Raises FieldError with a message fit for the person editing (naming ``crm_name``).
    """
    if definition.get("read_only") or definition.get("calculated"):
        raise FieldError(f"is read-only in {crm_name}")
    if _is_empty(value):
        return None
    prop_type = definition.get("type") or "string"
    name = str(definition.get("name") or "")
    if prop_type == "number":
        return _number(value)
    if prop_type == "bool":
        return _bool(value)
    if prop_type == "date":
        return _date(value)
    if prop_type == "datetime":
        return _datetime(value)
    if prop_type == "enumeration":
        return _enumeration(definition, value)
    text = str(value)
    if len(text) > MAX_STRING:
        raise FieldError(f"is longer than {crm_name}'s limit of {MAX_STRING:,} characters")
    if name == "email" or definition.get("field_type") == "email":
        text = text.strip()
        if not is_valid_email(text):
            raise FieldError(f"'{text}' is not a valid email address (one @, a dotted domain, no spaces)")
    return text


def check_properties(
    object_type: str,
    values: Mapping[str, Any],
    context: Context,
    *,
    current: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Validate several properties of one record.

    Args:
        current: the record's cached values, for rules that depend on other fields
            (a deal's stage must belong to its pipeline).

    Returns:
        The wire values of the acceptable properties and a message per refused property.
    """
    clean: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    current = current or {}
    for prop, value in values.items():
        definition = context.defs.get(prop)
        if definition is None or definition.get("archived"):
            errors[prop] = f"{context.crm_name} has no {object_type} property '{prop}'"
            continue
        try:
            wire = normalize(definition, value, crm_name=context.crm_name)
            if wire is not None:
                _check_references(object_type, prop, wire, values, current, context)
        except FieldError as exc:
            errors[prop] = str(exc)
            continue
        clean[prop] = wire
    pipeline_prop, stage_prop = _pipeline_properties(object_type, context) or ("", "")
    if pipeline_prop in clean and stage_prop not in values and pipeline_prop not in errors:
        stage = current.get(stage_prop)
        stages = context.stages.get(str(clean[pipeline_prop]))
        if stage and stages is not None and _id(stage) not in stages:
            errors[stage_prop] = "choose a stage of the new pipeline"
    return clean, errors


def _check_references(
    object_type: str,
    prop: str,
    wire: str,
    values: Mapping[str, Any],
    current: Mapping[str, Any],
    context: Context,
) -> None:
    if prop == context.owner_property:
        if wire not in context.owner_ids:
            raise FieldError(f"'{wire}' is not an active {context.crm_name} owner")
        return
    found = _pipeline_properties(object_type, context)
    if found is None:
        return
    pipeline_prop, stage_prop = found
    noun = _NOUN.get(object_type, "record")
    if prop == pipeline_prop:
        if wire not in context.stages:
            raise FieldError(f"'{wire}' is not a {noun} pipeline")
    elif prop == stage_prop:
        pipeline = (
            values.get(pipeline_prop)
            if not _is_empty(values.get(pipeline_prop))
            else current.get(pipeline_prop)
        )
        stages = context.stages.get(_id(pipeline)) if pipeline is not None else None
        if stages is None:
            known = set().union(*context.stages.values()) if context.stages else set()
            if wire not in known:
                raise FieldError(f"'{wire}' is not a {noun} stage")
        elif wire not in stages:
            raise FieldError(f"'{wire}' is not a stage of pipeline '{_id(pipeline)}'")


def _id(value: Any) -> str:
    """An id as text; a CRM's numeric id read back from a number column (``2.0``) is ``"2"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pipeline_properties(object_type: str, context: Context) -> tuple[str, str] | None:
    """The type's (pipeline, stage) properties: the context's when it names them, else HubSpot's."""
    if context.stage_property and context.pipeline_property:
        return context.pipeline_property, context.stage_property
    return PIPELINE_PROPERTIES.get(object_type)


def check_new_record(
    object_type: str, properties: Mapping[str, Any], context: Context
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Validate a record to create: every property, plus what HubSpot requires on create."""
    clean, errors = check_properties(object_type, properties, context)
    required = context.required_on_create
    for prop in required if required is not None else REQUIRED_ON_CREATE.get(object_type, ()):
        if prop not in errors and clean.get(prop) in (None, ""):
            errors[prop] = "is required for a new record"
    return {k: v for k, v in clean.items() if v is not None}, errors
