"""The activity timeline of a contact, company, deal or ticket, and the missing-scope notice.

Newest first, one line per interaction (type, when, who, subject or first line), each
expandable to its full text. The text is shown with ``st.text``: never Markdown, never
HTML (bodies are already plain text in the cache, see ``crm.plaintext``). Paging is by
keyset: "Older" moves to the position after the last line shown, so the thousandth page
costs what the first does. Filters (types, dates, search) start again from the newest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import streamlit as st

from crm import sync
from crm.config import Settings
from crm.crms import provider_of
from crm.errors import CrmError, InvalidEdit
from crm.store.interactions import INTERACTION_TYPES
from ui import data, editing, reruns
from ui.access import Staff
from ui.columns import ago, md_escape
from ui.feedback import crm_errors, show_error, toast
from ui.tables import view_id

PAGE_SIZE = 25
TYPE_LABELS = {
    "notes": "Note",
    "calls": "Call",
    "emails": "Email",
    "meetings": "Meeting",
    "tasks": "Task",
    "threads": "Conversation",
}
TYPE_ICONS = {
    "notes": ":material/sticky_note_2:",
    "calls": ":material/call:",
    "emails": ":material/mail:",
    "meetings": ":material/event:",
    "tasks": ":material/task_alt:",
    "threads": ":material/forum:",
}
HIDDEN_EMAIL = (
    "HubSpot withheld this email's content: the connection lacks the sales-email-read scope. "
    "See the Connect page to grant it."
)
SCOPE_NOUNS = {
    "tickets": "Tickets",
    "transcripts": "Call transcripts",
    **{t: TYPE_LABELS[t] + "s" for t in INTERACTION_TYPES},
}


def crm_name(settings: Settings) -> str:
    """The name of the settings' CRM, as its provider says it."""
    return provider_of(settings).words.crm


def how_to_grant(settings: Settings, scopes: list[str]) -> str:
    """What a person does to grant one of ``scopes`` (plain words, no Markdown from HubSpot)."""
    wanted = " or ".join(scopes[:3])
    if settings.mode == "private_app":
        return (
            f"In HubSpot, open Settings > Integrations > Private apps, add the scope {wanted} to this app, "
            "then put the app's new access token in HUBSPOT_ACCESS_TOKEN and sync again."
        )
    return (
        f"Add {scopes[0]} to HUBSPOT_OPTIONAL_SCOPES if it is not there (it is by default), "
        "then connect again on the Connect page and accept the new permission; the next sync reads them."
    )


def scope_notice(settings: Settings, object_types: list[str] | None = None) -> None:
    """A warning for each type the last sync skipped for a missing scope (``object_types``: only these)."""
    with crm_errors("read the sync's notes", stop=False):
        missing = data.missing_scopes(settings)
        for object_type, scopes in missing.items():
            if object_types is not None and object_type not in object_types:
                continue
            noun = SCOPE_NOUNS.get(object_type, object_type)
            st.warning(
                md_escape(f"{noun} are not synced: {crm_name(settings)} refused them for a missing scope. ")
                + md_escape(how_to_grant(settings, scopes), max_len=600),
                icon=":material/lock:",
            )


def _when(value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{moment:%Y-%m-%d %H:%M} UTC ({ago(value)})"


PRIORITIES = {"NONE": "No priority", "LOW": "Low", "MEDIUM": "Medium", "HIGH": "High"}
FIELD_NAMES = {"body": "Text", "subject": "Subject", "due": "Due", "priority": "Priority", "record": "Record"}


def _refused(exc: InvalidEdit) -> None:
    st.error(
        "Not saved: "
        + "; ".join(md_escape(f"{FIELD_NAMES.get(k, k)}: {v}") for k, v in exc.field_errors.items()),
        icon=":material/edit_off:",
    )


def log_forms(settings: Settings, staff: Staff, record_type: str, record_id: str) -> None:
    """Log a note / create a task on this record: queued in the outbox, shown at once as pending."""
    left, right = st.columns(2)
    with left.popover("Log a note", icon=":material/edit_note:", width="stretch"):
        with st.form("timeline_note_form", clear_on_submit=True, border=False):
            text = st.text_area("Note", key="timeline_note_text", height=140, max_chars=20_000)
            if st.form_submit_button("Save note", type="primary"):
                try:
                    sync.queue_note(settings, record_type, record_id, text, by=staff.label)
                except InvalidEdit as exc:
                    _refused(exc)
                except CrmError as exc:
                    show_error(exc, doing="save the note")
                else:
                    toast(f"Note saved; push to send it to {crm_name(settings)}")
    with right.popover("Create a task", icon=":material/add_task:", width="stretch"):
        with st.form("timeline_task_form", clear_on_submit=True, border=False):
            subject = st.text_input("Subject", key="timeline_task_subject", max_chars=500)
            day, at = st.columns(2)
            due_day = day.date_input(
                "Due", key="timeline_task_day", value=dt.date.today() + dt.timedelta(days=1)
            )
            due_time = at.time_input("At (UTC)", key="timeline_task_time", value=dt.time(9, 0))
            priority = st.selectbox(
                "Priority", list(PRIORITIES), format_func=PRIORITIES.__getitem__, key="timeline_task_priority"
            )
            notes = st.text_area("Notes", key="timeline_task_notes", height=90, max_chars=20_000)
            if st.form_submit_button("Save task", type="primary"):
                due = dt.datetime.combine(due_day, due_time, tzinfo=dt.UTC)
                try:
                    sync.queue_task(
                        settings,
                        record_type,
                        record_id,
                        subject=subject,
                        due=due,
                        notes=notes,
                        priority=priority,
                        by=staff.label,
                    )
                except InvalidEdit as exc:
                    _refused(exc)
                except CrmError as exc:
                    show_error(exc, doing="save the task")
                else:
                    toast(f"Task saved; push to send it to {crm_name(settings)}")


def render_timeline(
    settings: Settings,
    record_type: str,
    record_id: str,
    *,
    owners: Mapping[str, str],
    staff: Staff | None = None,
) -> None:
    """The timeline section of a record page (log forms, filters, one page of lines, Newer/Older)."""
    prefix = f"timeline_{record_type}_{record_id}"
    st.subheader("Activity")
    if staff is not None and not record_id.startswith("local-"):
        log_forms(settings, staff, record_type, record_id)
        editing.push_panel(settings, staff, "record")
    scope_notice(
        settings, [*INTERACTION_TYPES, "transcripts"] + (["tickets"] if record_type == "tickets" else [])
    )
    # The types take a row of their own: beside the search and the dates, the last chosen
    # types were cut off, so a person could not see that conversations were included.
    row = st.columns([3, 2])
    search = row[0].text_input(
        "Search activity", key="timeline_search", placeholder="Text in any interaction"
    )
    dates = row[1].date_input("Between", value=(), key="timeline_dates", format="YYYY-MM-DD")
    chosen = st.multiselect(
        "Types",
        list(INTERACTION_TYPES),
        default=list(INTERACTION_TYPES),
        format_func=lambda t: TYPE_LABELS[t] + "s",
        key="timeline_types",
    )
    since = until = None
    if isinstance(dates, (list, tuple)) and len(dates) >= 1:
        since = dates[0].isoformat()
        if len(dates) == 2:
            until = (dates[1] + dt.timedelta(days=1)).isoformat()
    view = view_id(record_type, record_id, search.strip(), tuple(chosen), since, until)
    stack_key = f"{prefix}_cursors"
    if st.session_state.get(f"{prefix}_view") != view:
        st.session_state[f"{prefix}_view"] = view
        st.session_state[stack_key] = []
    cursors: list[str] = st.session_state.setdefault(stack_key, [])
    with crm_errors("read the activity"):
        page = data.timeline(
            settings,
            record_type,
            record_id,
            types=chosen,
            since=since,
            until=until,
            search=search.strip() or None,
            before=cursors[-1] if cursors else None,
            limit=PAGE_SIZE,
        )
    first = len(cursors) * PAGE_SIZE + 1
    if page.total == 0:
        st.caption(
            "No activity matches."
            if search.strip() or since or len(chosen) < len(INTERACTION_TYPES)
            else "No activity yet."
        )
    else:
        st.caption(
            f"{page.total:,} interaction{'s' if page.total != 1 else ''} · "
            f"showing {first:,}-{first + len(page.rows) - 1:,}, newest first"
        )
    for item in page.rows:
        kind = item["object_type"]
        who = owners.get(str(item.get("owner_id") or ""), "")
        headline = (
            item.get("subject")
            or item.get("preview")
            or ("(content withheld)" if item["body_hidden"] else "")
        )
        label = " · ".join(
            part
            for part in (
                TYPE_LABELS.get(kind, kind),
                _when(item["occurred_at"]),
                who,
                headline,
                "⏳ waiting to be pushed" if item.get("pending") else "",
            )
            if part
        )
        with st.expander(md_escape(label, max_len=200), icon=TYPE_ICONS.get(kind)):
            if item.get("summary"):
                st.caption(md_escape(item["summary"]))
            if item["body_hidden"]:
                st.info(HIDDEN_EMAIL, icon=":material/lock:")
            elif item["has_body"]:
                with crm_errors("read the text", stop=False):
                    st.text(data.interaction_body(settings, kind, item["id"]) or "")
            else:
                st.caption("No text.")
    left, right = st.columns(2)
    if left.button("Newer", key=f"{prefix}_newer", disabled=not cursors, icon=":material/arrow_upward:"):
        cursors.pop()
        reruns.rerun()
    if right.button(
        "Older", key=f"{prefix}_older", disabled=page.next_cursor is None, icon=":material/arrow_downward:"
    ):
        cursors.append(str(page.next_cursor))
        reruns.rerun()
