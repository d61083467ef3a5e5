"""Checks on API v2 create and update bodies: known attributes, types, references, custom fields.

Returns the cleaned attributes or raises ``Invalid`` with a message for Pipedrive's 400 body.
UNCERTAIN (docs/PIPEDRIVE_API.md §3): Pipedrive's exact wording and whether it ignores
unknown attributes; the sandbox refuses them so a misspelt field never vanishes silently.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.models import DEAL_STATUSES, VISIBLE_TO, EntityType, Field, Record, parse_rfc3339

if TYPE_CHECKING:
    from crm.sandbox.pipedrive.state import PipedriveState

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID_KEYS = {"owner_id": "users", "org_id": "organizations", "person_id": "persons"}
# Writable attributes per entity, beside custom_fields.
WRITABLE: dict[EntityType, tuple[str, ...]] = {
    "persons": ("name", "first_name", "last_name", "owner_id", "org_id", "emails", "phones", "visible_to",
                "label_ids", "job_title", "birthday", "notes", "add_time"),
    "organizations": ("name", "owner_id", "address", "visible_to", "label_ids", "add_time"),
    "deals": ("title", "value", "currency", "owner_id", "person_id", "org_id", "pipeline_id", "stage_id", "status",
              "probability", "expected_close_date", "lost_reason", "visible_to", "label_ids", "add_time"),
}  # fmt: skip
REQUIRED: dict[EntityType, str] = {"persons": "name", "organizations": "name", "deals": "title"}


class Invalid(Exception):
    """A body Pipedrive would refuse with 400; the message is the body's ``error``."""


def clean(
    state: PipedriveState, entity: EntityType, body: Any, existing: Record | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, custom field values) from a create (``existing`` None) or update body."""
    if not isinstance(body, dict):
        raise Invalid(msg.NOT_AN_OBJECT)
    values: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in body.items():
        if key == "custom_fields":
            custom = _clean_custom(state, entity, value)
        elif key not in WRITABLE[entity] or (key == "add_time" and existing is not None):
            raise Invalid(msg.UNKNOWN_FIELD.format(name=key))
        else:
            values[key] = _clean_value(state, entity, key, value)
    required = REQUIRED[entity]
    if existing is None and not values.get(required):
        raise Invalid(msg.REQUIRED.format(name=required))
    if required in values and not values[required]:
        raise Invalid(msg.REQUIRED.format(name=required))
    if entity == "persons":
        _names(values, existing)
    if entity == "deals":
        _pipeline(state, values, existing)
    return values, custom


def _clean_value(state: PipedriveState, entity: EntityType, key: str, value: Any) -> Any:
    if key in ("name", "title", "first_name", "last_name", "job_title", "notes", "lost_reason", "address"):
        if value is None and key not in ("name", "title"):
            return None
        if not isinstance(value, str):
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be a string"))
        if key in ("name", "title", "first_name", "last_name", "job_title") and len(value) > 255:
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be at most 255 characters"))
        return value.strip() if key in ("name", "title") else value
    if key in _ID_KEYS:
        if value is None and key != "owner_id":
            return None
        ref = _positive_int(key, value)
        if not state.exists(_ID_KEYS[key], ref):
            raise Invalid(msg.NO_SUCH_REF.format(name=key, entity=_ID_KEYS[key].rstrip("s"), id=ref))
        return ref
    if key in ("emails", "phones"):
        return _contact_list(key, value)
    if key == "visible_to":
        if value not in VISIBLE_TO:
            raise Invalid(msg.BAD_CHOICE.format(name=key, choices=", ".join(map(str, VISIBLE_TO))))
        return value
    if key == "label_ids":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be a list of integers"))
        return value
    if key in ("birthday", "expected_close_date"):
        if value is not None and not (isinstance(value, str) and _is_date(value)):
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be a date, YYYY-MM-DD"))
        return value
    if key in ("value", "probability"):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be a number"))
        if key == "probability" and value is not None and not 0 <= value <= 100:
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be from 0 to 100"))
        return value
    if key == "currency":
        if not isinstance(value, str) or not _CURRENCY.match(value):
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="must be a 3-letter ISO currency code"))
        return value
    if key == "status":
        if value not in DEAL_STATUSES:
            raise Invalid(msg.BAD_CHOICE.format(name=key, choices=", ".join(DEAL_STATUSES)))
        return value
    if key in ("pipeline_id", "stage_id"):
        return _positive_int(key, value)
    if key == "add_time":
        moment = parse_rfc3339(value) if isinstance(value, str) else None
        if moment is None:
            raise Invalid(msg.BAD_TIME.format(name=key))
        return moment
    raise Invalid(msg.UNKNOWN_FIELD.format(name=key))  # pragma: no cover - WRITABLE lists only the above


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(msg.BAD_ID.format(name=key))
    return value


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _contact_list(key: str, value: Any) -> list[dict[str, Any]]:
    """``[{value, primary, label}]``; the first entry is primary unless one says so."""
    if not isinstance(value, list):
        raise Invalid(
            msg.WRONG_TYPE.format(name=key, detail="must be a list of {value, primary, label} objects")
        )
    cleaned = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise Invalid(msg.WRONG_TYPE.format(name=key, detail="each entry needs a string value"))
        if key == "emails" and item["value"] and "@" not in item["value"]:
            raise Invalid(
                msg.WRONG_TYPE.format(name=key, detail=f"{item['value']!r} is not an email address")
            )
        cleaned.append({"value": item["value"], "primary": bool(item.get("primary", False)),
                        "label": str(item.get("label") or "work")})  # fmt: skip
    if cleaned and not any(c["primary"] for c in cleaned):
        cleaned[0]["primary"] = True
    return cleaned


def _clean_custom(state: PipedriveState, entity: EntityType, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(
            msg.WRONG_TYPE.format(name="custom_fields", detail="must be an object keyed by field key")
        )
    cleaned = {}
    for key, item in value.items():
        field = state.fields.by_key(entity, key)
        if field is None or not field.custom:
            raise Invalid(msg.UNKNOWN_FIELD.format(name=key))
        cleaned[key] = None if item is None else custom_value(field, item)
    return cleaned


def custom_value(field: Field, value: Any) -> Any:
    """A custom field value checked against its type; enum takes an option id, set a list of them."""
    option_ids = {o["id"] for o in field.options or []}
    name = f"custom_fields.{field.key}"
    if field.field_type == "enum":
        if isinstance(value, bool) or not isinstance(value, int) or value not in option_ids:
            raise Invalid(
                msg.WRONG_TYPE.format(name=name, detail=f"must be one of the option ids {sorted(option_ids)}")
            )
        return value
    if field.field_type == "set":
        if not isinstance(value, list) or not all(v in option_ids and not isinstance(v, bool) for v in value):
            raise Invalid(
                msg.WRONG_TYPE.format(name=name, detail=f"must be a list of option ids {sorted(option_ids)}")
            )
        return value
    if field.field_type in ("double", "monetary"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(msg.WRONG_TYPE.format(name=name, detail="must be a number"))
        return value
    if field.field_type == "date":
        if not isinstance(value, str) or not _is_date(value):
            raise Invalid(msg.WRONG_TYPE.format(name=name, detail="must be a date, YYYY-MM-DD"))
        return value
    if not isinstance(value, str):
        raise Invalid(msg.WRONG_TYPE.format(name=name, detail="must be a string"))
    if field.field_type in ("varchar", "varchar_auto", "phone") and len(value) > 255:
        raise Invalid(msg.WRONG_TYPE.format(name=name, detail="must be at most 255 characters"))
    return value


def _names(values: dict[str, Any], existing: Record | None) -> None:
    """Keep name, first_name and last_name in step, as Pipedrive does."""
    if "name" in values and not ({"first_name", "last_name"} & values.keys()):
        first, _, last = values["name"].partition(" ")
        values["first_name"], values["last_name"] = first, last or None
    elif {"first_name", "last_name"} & values.keys() and "name" not in values:
        old = existing.values if existing else {}
        first = values.get("first_name", old.get("first_name")) or ""
        last = values.get("last_name", old.get("last_name")) or ""
        values["name"] = f"{first} {last}".strip()
        if not values["name"]:
            raise Invalid(msg.REQUIRED.format(name="name"))


def _pipeline(state: PipedriveState, values: dict[str, Any], existing: Record | None) -> None:
    old = existing.values if existing else {}
    pipeline_id = values.get("pipeline_id", old.get("pipeline_id"))
    stage_id = values.get("stage_id", old.get("stage_id"))
    if "pipeline_id" in values and "stage_id" not in values:
        stage_id = None
    pipeline = state.pipeline(pipeline_id) if pipeline_id is not None else state.pipelines[0]
    if pipeline is None:
        raise Invalid(msg.NO_SUCH_REF.format(name="pipeline_id", entity="pipeline", id=pipeline_id))
    if stage_id is None:
        stage_id = pipeline.stages[0].id
    stage = next((s for s in pipeline.stages if s.id == stage_id), None)
    if stage is None:
        if state.stage(stage_id) is None:
            raise Invalid(msg.NO_SUCH_REF.format(name="stage_id", entity="stage", id=stage_id))
        if "pipeline_id" in values:
            raise Invalid(msg.STAGE_PIPELINE.format(stage=stage_id, pipeline=pipeline.id))
        found = state.stage(stage_id)
        assert found is not None
        pipeline = state.pipeline(found.pipeline_id) or pipeline
        stage = found
    values["pipeline_id"], values["stage_id"] = pipeline.id, stage.id
    if existing is None:
        values.setdefault("status", "open")
        values.setdefault("currency", "USD")
        values.setdefault("value", 0)
