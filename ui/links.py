"""One contact in several CRMs on the pages: a form that creates it everywhere, and link badges.

Only new code lives here (the Contacts page is another engineer's); the page calls::

    links.new_contact_form(settings, by=staff.label)        # under its own "New contact"
    frame["In CRMs"] = links.link_badges(settings, frame.index)  # a plain text column

Badges are plain text, never HTML: "synced", "partial: Pipedrive: <the CRM's message>",
"local only" (with the reasons when a CRM refused it), "" for a record nobody linked.
They read the links as last settled (a push from here, ``python -m crm links``); the form
pushes each connection at once, so what it shows is fresh.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import streamlit as st

from crm import store
from crm.config import Settings
from crm.errors import CrmError, InvalidEdit
from crm.sync.links import create_contact_everywhere, summarize
from crm.sync.pronouns import PRONOUN_OPTIONS
from ui.columns import md_escape

_FIELDS = {
    "email": "Email (required)",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
}
_NONE = ""


def link_badges(settings: Settings, ids: Iterable[object]) -> pd.Series:
    """Each record's link state across CRMs, as text, indexed like ``ids`` (records of the
    connection ``settings`` are for; "" where the record is not linked to a person)."""
    index = [str(i) for i in ids]
    badges = pd.Series([""] * len(index), index=index, dtype="object")
    if not index or not settings.connection:
        return badges
    with store.open(settings.home) as home:
        people = home.links.people_of_records(settings.connection, index)
        names = {c.id: c.name for c in home.connections.list()}
        links = home.links.of_people(sorted(set(people.values())))
    for record_id, person in people.items():
        badges[record_id] = summarize(person, links[person], names).text
    return badges


def connection_names(settings: Settings) -> dict[str, str]:
    """Every connection's name by id (the form offers them)."""
    with store.open(settings.home) as home:
        return {c.id: c.name for c in home.connections.list()}


def new_contact_form(settings: Settings, *, by: str | None = None) -> None:
    """A form: the contact's fields, pronouns, the CRMs to create it in (default all);
    on submit it is created in each and pushed, and each CRM's outcome is shown."""
    registry = connection_names(settings)
    pronouns = {value: label for value, label in PRONOUN_OPTIONS}
    with st.form("links_new_form", clear_on_submit=False, border=False):
        left, right = st.columns(2)
        for n, (name, label) in enumerate(_FIELDS.items()):
            (left if n % 2 == 0 else right).text_input(label, key=f"links_new_{name}", max_chars=254)
        left.selectbox(
            "Pronouns",
            [_NONE, *pronouns],
            format_func=lambda v: "—" if v == _NONE else pronouns[v],
            key="links_new_pronouns",
        )
        right.multiselect(
            "Create in",
            list(registry),
            default=list(registry),
            format_func=lambda c: registry.get(c, c),
            key="links_new_connections",
        )
        submitted = st.form_submit_button("Create in every CRM", type="primary", key="links_new_submit")
    if not submitted:
        return
    values = {name: st.session_state.get(f"links_new_{name}") for name in (*_FIELDS, "pronouns")}
    chosen = list(st.session_state.get("links_new_connections") or [])
    if not chosen:
        st.error("Choose at least one CRM.", icon=":material/error:")
        return
    try:
        result = create_contact_everywhere(settings, values, chosen, by=by)
    except InvalidEdit as exc:
        st.error("Not created: " + md_escape("; ".join(exc.field_errors.values())), icon=":material/error:")
        return
    except CrmError as exc:
        st.error("Not created: " + md_escape(str(exc)), icon=":material/error:")
        return
    lines = [f"- {md_escape(name)}: {md_escape(link.status)}" for name, link in result.status.links]
    text = md_escape(result.status.text, max_len=600) + "\n\n" + "\n".join(lines)
    if result.status.state == "synced":
        st.success(text, icon=":material/check_circle:")
    else:
        st.warning(text, icon=":material/sync_problem:")
