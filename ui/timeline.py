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

from crm.config import Settings
from crm.store.interactions import ENGAGEMENT_TYPES
from ui import data
from ui.columns import ago, md_escape
from ui.feedback import crm_errors
from ui.tables import view_id

PAGE_SIZE = 25
TYPE_LABELS = {"notes": "Note", "calls": "Call", "emails": "Email", "meetings": "Meeting", "tasks": "Task"}
TYPE_ICONS = {
    "notes": ":material/sticky_note_2:",
    "calls": ":material/call:",
    "emails": ":material/mail:",
    "meetings": ":material/event:",
    "tasks": ":material/task_alt:",
}
HIDDEN_EMAIL = (
    "HubSpot withheld this email's content: the connection lacks the sales-email-read scope. "
    "See the Connect page to grant it."
)
SCOPE_NOUNS = {"tickets": "Tickets", **{t: TYPE_LABELS[t] + "s" for t in ENGAGEMENT_TYPES}}


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
                md_escape(f"{noun} are not synced: HubSpot refused them for a missing scope. ")
                + md_escape(how_to_grant(settings, scopes), max_len=600),
                icon=":material/lock:",
            )


def _when(value: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{moment:%Y-%m-%d %H:%M} UTC ({ago(value)})"


def render_timeline(
    settings: Settings, record_type: str, record_id: str, *, owners: Mapping[str, str]
) -> None:
    """The timeline section of a record page (filters, one page of lines, Newer/Older)."""
    prefix = f"timeline_{record_type}_{record_id}"
    st.subheader("Activity")
    scope_notice(
        settings, [*ENGAGEMENT_TYPES, "tickets"] if record_type == "tickets" else list(ENGAGEMENT_TYPES)
    )
    row = st.columns([2, 3, 2])
    search = row[0].text_input(
        "Search activity", key="timeline_search", placeholder="Text in any interaction"
    )
    chosen = row[1].multiselect(
        "Types",
        list(ENGAGEMENT_TYPES),
        default=list(ENGAGEMENT_TYPES),
        format_func=lambda t: TYPE_LABELS[t] + "s",
        key="timeline_types",
    )
    dates = row[2].date_input("Between", value=(), key="timeline_dates", format="YYYY-MM-DD")
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
            "No activity matches." if search.strip() or since or len(chosen) < 5 else "No activity yet."
        )
    else:
        st.caption(
            f"{page.total:,} interactions · showing {first:,}-{first + len(page.rows) - 1:,}, newest first"
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
            part for part in (TYPE_LABELS.get(kind, kind), _when(item["occurred_at"]), who, headline) if part
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
        st.rerun()
    if right.button(
        "Older", key=f"{prefix}_older", disabled=page.next_cursor is None, icon=":material/arrow_downward:"
    ):
        cursors.append(str(page.next_cursor))
        st.rerun()
