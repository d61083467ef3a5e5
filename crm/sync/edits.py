"""Local edits: validate, then write to the cache and the outbox in one transaction."""

from __future__ import annotations

import datetime as dt
import html
import time
from collections.abc import Mapping
from typing import Any, Literal

from crm import store
from crm.config import Settings
from crm.crms import provider_for
from crm.errors import InvalidEdit
from crm.store import OBJECT_TYPES, Store
from crm.store.interactions import LINKED_TYPES, TASK_OPEN
from crm.store.outbox import is_local_id
from crm.validate import PIPELINE_PROPERTIES, Context, check_new_record, check_properties


def validation_context(db: Store, object_type: str, *, crm: str | None = None) -> Context:
    """What ``crm.validate`` needs, read from the cache; the CRM's name and owner field
    from its provider (``crm``: the connection's CRM, default HubSpot)."""
    stages: dict[str, list[str]] = {}
    if object_type in PIPELINE_PROPERTIES:
        for pipeline in db.queries.pipelines(object_type):
            if not pipeline["archived"]:
                stages[pipeline["id"]] = [s["id"] for s in pipeline["stages"] if not s["archived"]]
    provider = provider_for(crm)
    context = Context(
        defs=db.queries.property_defs(object_type),
        stages=stages,
        owner_ids=db.queries.owner_ids(),
        crm_name=provider.words.crm,
    )
    for info in provider.object_types():
        if info.name == object_type and info.owner:
            context.owner_property = info.owner
        if info.name == object_type and info.pipeline and info.stage:
            context.pipeline_property, context.stage_property = info.pipeline, info.stage
    return context


def _check_type(object_type: str) -> None:
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown object type: {object_type!r}")


def queue_edits(
    settings: Settings, object_type: str, edits: Mapping[str, Mapping[str, Any]], *, by: str | None
) -> int:
    """Validate edits and queue them for the connection's CRM; the cache shows them at once.

    Validation follows that CRM's definitions and roles (``validation_context``).

    Args:
        edits: record id -> property -> new value (Python or the CRM's string form;
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
        context = validation_context(db, object_type, crm=settings.crm)
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
                    errors[f"{record_id}.{prop}"] = f"This record was deleted in {context.crm_name}"
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
        context = validation_context(db, "contacts", crm=settings.crm)
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


# HubSpot limits a note's body to 65,536 characters (docs/INTERACTIONS_API.md §2, notes).
MAX_BODY = 65_536
TASK_PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")


def _as_html(text: str) -> str:
    """Plain text as the HTML HubSpot stores rich text in: escaped, line breaks as <br>."""
    return "<br>".join(html.escape(line) for line in text.strip().split("\n"))


def _check_target(db: Store, record_type: str, record_id: str, errors: dict[str, str]) -> None:
    if record_type not in LINKED_TYPES:
        raise ValueError(f"notes and tasks cannot be logged on {record_type!r}")
    current = db.queries.get_record(record_type, record_id)
    if current is None or current.get("archived"):
        errors["record"] = "This record is not in the cache or was deleted in HubSpot"
    elif is_local_id(record_id):
        errors["record"] = "Push this new record to HubSpot first, then log on it"


def _owner_of(db: Store, by: str | None) -> str | None:
    """The HubSpot owner whose email is the staff member's, if any (shown as the author)."""
    if not by:
        return None
    owners = db.queries.owners_frame()
    match = owners[owners["email"].fillna("").str.lower() == by.strip().lower()]
    return str(match.index[0]) if len(match) else None


def queue_note(settings: Settings, record_type: str, record_id: str, text: str, *, by: str | None) -> str:
    """Validate a note and queue it for HubSpot, logged on one record; it shows at once as pending.

    Returns the note's local id. Raises InvalidEdit (``field_errors`` keyed ``body`` or
    ``record``) and queues nothing when the note cannot be sent.
    """
    errors: dict[str, str] = {}
    body = _as_html(text or "")
    if not (text or "").strip():
        errors["body"] = "Write something first"
    elif len(body) > MAX_BODY:
        errors["body"] = f"HubSpot takes at most {MAX_BODY:,} characters in a note"
    with store.open(settings) as db:
        _check_target(db, record_type, record_id, errors)
        if errors:
            raise InvalidEdit(errors)
        roles = {"time": str(int(time.time() * 1000)), "note_body": body}
        owner = _owner_of(db, by)
        if owner:
            roles["owner"] = owner
        return db.outbox.queue_engagement("notes", roles, [(record_type, record_id)], by=by)


def queue_task(
    settings: Settings,
    record_type: str,
    record_id: str,
    *,
    subject: str,
    due: dt.datetime,
    notes: str = "",
    priority: str = "NONE",
    by: str | None,
) -> str:
    """Validate a task (a to-do due at ``due``) and queue it for HubSpot on one record.

    Returns the task's local id. Raises InvalidEdit keyed ``subject``, ``due``, ``body``,
    ``priority`` or ``record``.
    """
    errors: dict[str, str] = {}
    if not (subject or "").strip():
        errors["subject"] = "A task needs a subject"
    elif len(subject) > MAX_BODY:
        errors["subject"] = "This subject is too long"
    body = _as_html(notes or "") if (notes or "").strip() else ""
    if len(body) > MAX_BODY:
        errors["body"] = f"HubSpot takes at most {MAX_BODY:,} characters"
    if priority not in TASK_PRIORITIES:
        errors["priority"] = f"Choose one of {', '.join(TASK_PRIORITIES)}"
    if due.tzinfo is None:
        errors["due"] = "The due date needs a time zone"
    with store.open(settings) as db:
        _check_target(db, record_type, record_id, errors)
        if errors:
            raise InvalidEdit(errors)
        # By role (crm.store.interactions.LOGGED_ROLES): each CRM's provider names them its way.
        roles = {
            "time": str(int(due.timestamp() * 1000)),
            "task_subject": subject.strip(),
            "task_status": TASK_OPEN,
            "task_type": "TODO",
            "task_priority": priority,
        }
        if body:
            roles["task_body"] = body
        owner = _owner_of(db, by)
        if owner:
            roles["owner"] = owner
        return db.outbox.queue_engagement("tasks", roles, [(record_type, record_id)], by=by)
