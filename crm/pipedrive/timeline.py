"""Pipedrive's notes and activities as the timeline's neutral interactions (issue #15).

What ``PipedriveApi``'s ``ListsInteractions`` and ``LogsEngagements`` hand across the CRM
interface: v1 notes and v2 (or v1) activities mapped to neutral kinds, times, links and plain
text. Apart from the record mapping in ``crm.pipedrive.provider`` because it changes when
Pipedrive's notes and activities do, not its persons, organizations and deals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crm.interface import Interaction, Record
from crm.pipedrive.values import iso, text
from crm.plaintext import body_text
from crm.store.interactions import LOGGED_ROLES, TASK_DONE, TASK_OPEN

# Pipedrive's activity types (``type``, the activity type's key) -> the neutral kind. Lunches
# are meetings, deadlines are tasks; any other key (a company's own types, e.g. ``demo``) is
# a task: Pipedrive shows every activity as a to-do with a due date, which is what a task is.
ACTIVITY_KINDS = {
    "call": "calls",
    "meeting": "meetings",
    "lunch": "meetings",
    "task": "tasks",
    "deadline": "tasks",
    "email": "emails",
}
OTHER_ACTIVITY_KIND = "tasks"
INTERACTION_FEEDS: dict[str, tuple[str, ...]] = {
    "notes": ("notes",),
    "activities": ("calls", "meetings", "tasks", "emails"),
}
# The record links a note or activity carries: attribute -> neutral type.
_TIMELINE_LINKS = (("person_id", "contacts"), ("org_id", "companies"), ("deal_id", "deals"))
# A v1 notes walk's order: by update time, ties by id (docs/PIPEDRIVE_API.md §9).
NOTES_ORDER = "update_time ASC, id ASC"
# Notes a page may have lost to moves before it while paging by offset within one second.
NOTES_BACKSTEP = 50


def due_moment(raw: Mapping[str, Any]) -> str | None:
    """An activity's due moment (``due_date`` with ``due_time``, both UTC; midnight without a
    time) as ISO-8601 UTC, or None without a date."""
    day = str(raw.get("due_date") or "").strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        return None
    at = str(raw.get("due_time") or "").strip()
    at = at if re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", at) else "00:00"
    return iso(f"{day}T{at if len(at) == 8 else at + ':00'}Z")


def _duration_words(value: Any) -> str | None:
    """``"01:30"`` (Pipedrive's ``HH:MM`` duration) as ``"1 h 30 min"``; None when absent or zero."""
    match = re.fullmatch(r"(\d{1,3}):(\d{2})(:\d{2})?", str(value or "").strip())
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if not hours and not minutes:
        return None
    return " ".join(p for p in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if p)


def _links(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    found = [(kind, str(raw[attr])) for attr, kind in _TIMELINE_LINKS if raw.get(attr) not in (None, "", 0)]
    for participant in raw.get("participants") or []:
        person = participant.get("person_id") if isinstance(participant, dict) else None
        if person not in (None, "", 0):
            found.append(("contacts", str(person)))
    return tuple(dict.fromkeys(found))


# A logged note or task is looked for among its record's newest added, back to this long
# before it was queued (clocks differ); a task queued at an unknown time among this many.
RECENT_LOGGED = 500
LOGGED_SLACK_S = 300
REF_ATTRS = {kind: attr for attr, kind in _TIMELINE_LINKS}


def logged_note(raw: Mapping[str, Any]) -> Record:
    """A Pipedrive note as the push's record of a logged note (the cache's engagement
    properties, ``LOGGED_ROLES``): its HTML kept, the cache makes it plain."""
    return Record(
        id=str(raw.get("id")),
        type="notes",
        properties={
            LOGGED_ROLES["time"]: iso(raw.get("add_time")),
            LOGGED_ROLES["note_body"]: text(raw.get("content")),
            LOGGED_ROLES["owner"]: text(raw.get("user_id")),
        },
        created_at=iso(raw.get("add_time")),
        updated_at=iso(raw.get("update_time")),
    )


def logged_task(raw: Mapping[str, Any]) -> Record:
    """A Pipedrive activity (v1 or v2 shape) as the push's record of a logged task."""
    owner = raw.get("owner_id") if raw.get("owner_id") is not None else raw.get("user_id")
    return Record(
        id=str(raw.get("id")),
        type="tasks",
        properties={
            LOGGED_ROLES["time"]: due_moment(raw) or iso(raw.get("add_time")),
            LOGGED_ROLES["task_subject"]: text(raw.get("subject")),
            LOGGED_ROLES["task_body"]: text(raw.get("note")),
            LOGGED_ROLES["task_status"]: TASK_DONE if raw.get("done") else TASK_OPEN,
            LOGGED_ROLES["owner"]: text(owner),
        },
        created_at=iso(raw.get("add_time")),
        updated_at=iso(raw.get("update_time")),
    )


def note_interaction(raw: Mapping[str, Any]) -> Interaction:
    """A v1 note as a neutral interaction: its HTML ``content`` reduced to plain text, shown
    when it was added, by its author (``user_id``)."""
    added = iso(raw.get("add_time"))
    return Interaction(
        kind="notes",
        id=str(raw.get("id")),
        occurred_at=added or "",
        owner_id=text(raw.get("user_id")),
        subject=None,
        summary=None,
        body=body_text(str(raw.get("content") or "")),
        links=_links(raw),
        updated_at=iso(raw.get("update_time")) or added,
        created_at=added,
        archived=raw.get("active_flag") is False or bool(raw.get("is_deleted")),
        properties={"last_update_user_id": text(raw.get("last_update_user_id"))},
    )


def activity_interaction(raw: Mapping[str, Any]) -> Interaction:
    """A v2 activity as a neutral interaction (``ACTIVITY_KINDS``; an unknown type is a task).

    It is shown at its due moment (else when it was added); the summary says its type as
    Pipedrive names it, done or to do, when due and for how long; its text is ``note``
    (HTML at Pipedrive) as plain text; its owner is ``owner_id`` (v1: ``user_id``).
    """
    kind_key = str(raw.get("type") or "")
    added = iso(raw.get("add_time"))
    due = due_moment(raw)
    day, at = str(raw.get("due_date") or ""), str(raw.get("due_time") or "")[:5]
    summary = " · ".join(
        p
        for p in (
            kind_key.replace("_", " "),
            "done" if raw.get("done") else "to do",
            f"due {day} {at}".strip() if day else "",
            _duration_words(raw.get("duration")) or "",
        )
        if p
    )
    return Interaction(
        kind=ACTIVITY_KINDS.get(kind_key, OTHER_ACTIVITY_KIND),
        id=str(raw.get("id")),
        occurred_at=due or added or "",
        owner_id=text(raw.get("owner_id") if raw.get("owner_id") is not None else raw.get("user_id")),
        subject=str(raw.get("subject") or "") or None,
        summary=summary or None,
        body=body_text(str(raw.get("note") or "")),
        links=_links(raw),
        updated_at=iso(raw.get("update_time")) or added,
        created_at=added,
        archived=bool(raw.get("is_deleted")),
        properties={
            "type": kind_key or None,
            "done": "true" if raw.get("done") else "false",
            "due_date": day or None,
            "due_time": at or None,
            "duration": text(raw.get("duration")),
            "marked_as_done_time": iso(raw.get("marked_as_done_time")),
        },
    )
