"""Comparing a Pipedrive connection's cache with the sandbox's truth (``/_sandbox/truth``)."""

from __future__ import annotations

from typing import Any

from crm import store
from crm.config import Settings
from crm.sandbox.pipedrive.admin import PipedriveAdmin

ENTITIES = {"contacts": "persons", "companies": "organizations", "deals": "deals"}
# The properties compared per type (the CRM's own names, as the cache keeps them).
KEY_PROPERTIES = {
    "contacts": ("name", "email", "owner_id", "org_id"),
    "companies": ("name", "owner_id"),
    "deals": ("title", "value", "stage_id", "status", "owner_id", "person_id", "org_id"),
}
# The links a record carries in Pipedrive: (to type, its attribute).
LINKS = {
    "contacts": (("companies", "org_id"),),
    "companies": (),
    "deals": (("contacts", "person_id"), ("companies", "org_id")),
}


def text(value: Any) -> str | None:
    """A value as text for comparison: 3.0 and 3 and "3" are the same; "" is None."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return str(int(number)) if number.is_integer() else value
    return str(value)


def truth(admin: PipedriveAdmin, object_type: str) -> dict[str, dict[str, Any]]:
    """The live records of a type: id -> key properties (as text) and links to live records
    (a link to a deleted record shows as none, as the cache shows no archived record)."""
    live = {
        to: {str(i["id"]) for i in admin.truth(ENTITIES[to]) if not i.get("is_deleted")}
        for to, _ in LINKS[object_type]
    }
    found: dict[str, dict[str, Any]] = {}
    for item in admin.truth(ENTITIES[object_type]):
        if item.get("is_deleted"):
            continue
        emails = [e["value"] for e in item.get("emails") or [] if e.get("primary")]
        values = {**item, "email": emails[0] if emails else None}
        found[str(item["id"])] = {
            "properties": {p: text(values.get(p)) for p in KEY_PROPERTIES[object_type]},
            "links": {
                to: linked if (linked := text(item.get(attr))) in live[to] else None
                for to, attr in LINKS[object_type]
            },
        }
    return found


def cached(settings: Settings, object_type: str) -> dict[str, dict[str, Any]]:
    """The cache's live records of a type, in the same shape as ``truth``."""
    with store.open(settings) as db:
        ids = sorted(db.queries.record_stamps(object_type))
        values = db.queries.get_values(object_type, ids, KEY_PROPERTIES[object_type])
        found: dict[str, dict[str, Any]] = {}
        for record_id in ids:
            links: dict[str, str | None] = {}
            for to_type, _ in LINKS[object_type]:
                linked = list(db.queries.associated_records(object_type, record_id, to_type).index)
                assert len(linked) <= 1, f"{object_type} {record_id} has several {to_type}: {linked}"
                links[to_type] = linked[0] if linked else None
            found[record_id] = {
                "properties": {p: text(v) for p, v in values[record_id].items()},
                "links": links,
            }
    return found


def differences(settings: Settings, admin: PipedriveAdmin, object_type: str) -> list[str]:
    """What differs between the cache and the truth, in words ([] when they are equal)."""
    want, have = truth(admin, object_type), cached(settings, object_type)
    problems = [f"{object_type} {i} missing from the cache" for i in sorted(set(want) - set(have))]
    problems += [f"{object_type} {i} cached but not live" for i in sorted(set(have) - set(want))]
    for record_id in sorted(set(want) & set(have)):
        if want[record_id] != have[record_id]:
            problems.append(f"{object_type} {record_id}: truth {want[record_id]} != cache {have[record_id]}")
    return problems


def custom_differences(settings: Settings, admin: PipedriveAdmin, object_type: str) -> list[str]:
    """Custom field values (columns named by Pipedrive's hash keys) that differ from the truth."""
    live = [i for i in admin.truth(ENTITIES[object_type]) if not i.get("is_deleted")]
    keys = sorted({k for item in live for k in item.get("custom_fields") or {}})
    with store.open(settings) as db:
        missing = [k for k in keys if k not in db.queries.table_columns(object_type)]
        if missing:
            return [f"{object_type} has no column for {missing}"]
        have = db.queries.get_values(object_type, [str(i["id"]) for i in live], keys)
    return [
        f"{object_type} {item['id']} {key}: truth {item['custom_fields'].get(key)!r} != cache {have[str(item['id'])][key]!r}"
        for item in live
        for key in keys
        if text(item["custom_fields"].get(key)) != text(have[str(item["id"])][key])
    ]
