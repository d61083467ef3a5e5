"""Local edits: validate, then write to the cache and the outbox in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from crm import store
from crm.config import Settings
from crm.errors import InvalidEdit
from crm.store import OBJECT_TYPES, Store
from crm.validate import PIPELINE_PROPERTIES, Context, check_new_record, check_properties


def validation_context(db: Store, object_type: str) -> Context:
    """What ``crm.validate`` needs, read from the cache."""
    stages: dict[str, list[str]] = {}
    if object_type in PIPELINE_PROPERTIES:
        for pipeline in db.queries.pipelines(object_type):
            if not pipeline["archived"]:
                stages[pipeline["id"]] = [s["id"] for s in pipeline["stages"] if not s["archived"]]
    return Context(
        defs=db.queries.property_defs(object_type), stages=stages, owner_ids=db.queries.owner_ids()
    )


def _check_type(object_type: str) -> None:
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown object type: {object_type!r}")


def queue_edits(
    settings: Settings, object_type: str, edits: Mapping[str, Mapping[str, Any]], *, by: str | None
) -> int:
    """Validate edits and queue them for HubSpot; the cache shows them at once.

    Args:
        edits: record id -> property -> new value (Python or HubSpot string form;
            None or "" clears the field).
        by: who made the edit (staff email), kept with the edit and in the audit log.

    Returns:
        How many field edits were queued or changed.

    Raises:
        InvalidEdit: one or more values are not acceptable; ``field_errors`` is keyed
            ``"<record id>.<property>"``. Nothing is queued then.
    """
    _check_type(object_type)
    with store.open(settings) as db:
        context = validation_context(db, object_type)
        clean: dict[str, dict[str, str | None]] = {}
        errors: dict[str, str] = {}
        for record_id, values in edits.items():
            record_id = str(record_id)
            if not values:
                continue
            current = db.queries.get_record(object_type, record_id)
            if current is None:
                for prop in values:
                    errors[f"{record_id}.{prop}"] = "This record is not in the cache (sync, then try again)"
                continue
            if current.get("archived"):
                for prop in values:
                    errors[f"{record_id}.{prop}"] = "This record was deleted in HubSpot"
                continue
            ok, bad = check_properties(object_type, values, context, current=current)
            for prop, message in bad.items():
                errors[f"{record_id}.{prop}"] = message
            if object_type == "contacts" and ok.get("email"):
                other = db.queries.find_by_property("contacts", "email", str(ok["email"]))
                if other is not None and other != record_id:
                    errors[f"{record_id}.email"] = f"Another contact ({other}) already has this email"
            clean[record_id] = ok
        if errors:
            raise InvalidEdit(errors)
        return db.outbox.queue_updates(object_type, clean, by=by)


def queue_new_contact(settings: Settings, properties: Mapping[str, Any], *, by: str | None) -> str:
    """Validate a new contact and queue its creation (upsert keyed on email).

    Returns the contact's local id (``local-...``), replaced by HubSpot's id once pushed.

    Raises:
        InvalidEdit: ``field_errors`` keyed by property; nothing is queued.
    """
    with store.open(settings) as db:
        context = validation_context(db, "contacts")
        clean, errors = check_new_record("contacts", properties, context)
        email = clean.get("email")
        if email and "email" not in errors:
            existing = db.queries.find_by_property("contacts", "email", str(email))
            if existing is not None:
                errors["email"] = f"A contact with this email already exists ({existing})"
        if errors:
            raise InvalidEdit(errors)
        return db.outbox.queue_create("contacts", clean, by=by)


def resolve_conflict(
    settings: Settings, outbox_id: int, keep: Literal["mine", "theirs"], *, by: str | None
) -> None:
    """Settle a conflict: "mine" re-queues my value for the next push (HubSpot's value
    becomes its base); "theirs" drops my edit and the cache takes HubSpot's value.

    Raises LookupError if the edit is not an open conflict.
    """
    with store.open(settings) as db:
        db.outbox.resolve_conflict(outbox_id, keep, by=by)


def link_existing_contact(settings: Settings, outbox_id: int, *, by: str | None) -> dict[str, int]:
    """Settle a new contact whose email HubSpot already had: take HubSpot's contact and
    queue my non-empty fields as edits of it (see ``Outbox.link_create`` for their base).

    Returns ``{"pending": n, "conflict": m}``. Raises LookupError if it is not such a decision.
    """
    with store.open(settings) as db:
        return db.outbox.link_create(outbox_id, by=by)


def discard_edit(settings: Settings, outbox_id: int, *, by: str | None) -> None:
    """Drop a pending, failed or conflicting edit; the cache goes back to HubSpot's value."""
    with store.open(settings) as db:
        db.outbox.discard_edit(outbox_id, by=by)
