"""Contacts: search, filter, sort and page the cache in SQL; edit inline; create; push."""

from __future__ import annotations

from typing import Any

import streamlit as st

from crm import sync
from crm.crms import provider_of
from crm.errors import CrmError, InvalidEdit
from crm.export import PAGE_COLUMNS
from ui import data, editing
from ui.access import require_staff
from ui.columns import contact_columns, md_escape, option_labels, owner_labels, with_links
from ui.feedback import crm_errors, flash, show_flash
from ui.runtime import page_settings
from ui.states import require_data
from ui.tables import ANY, RecordQuery, active_filters, choose, load_page, open_and_export, view_id

staff = require_staff()
show_flash()
settings = page_settings()
words = provider_of(settings).words
STAGE_LABEL = words.field_label("lifecyclestage")

PREFIX = "contacts"
PAGE_SIZES = (25, 50, 100, 250)
SORTS = {
    "Last modified": ("lastmodifieddate", True),
    "Last name": ("lastname", False),
    "First name": ("firstname", False),
    "Email": ("email", False),
    "Company": ("company", False),
    STAGE_LABEL: ("lifecyclestage", False),
    "Created": ("createdate", True),
}
EDITABLE = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "jobtitle",
    "pronouns",
    "lifecyclestage",
    "hubspot_owner_id",
]
LABELS = {
    "firstname": "First name",
    "lastname": "Last name",
    "email": "Email",
    "phone": "Phone",
    "jobtitle": "Job title",
    "pronouns": "Pronouns",
    "lifecyclestage": STAGE_LABEL,
    "hubspot_owner_id": "Owner",
    "company": "Company",
}

st.title("Contacts")
info = require_data(settings, staff, "contacts")

with crm_errors("read the cache"):
    defs = data.property_defs(settings, "contacts")
    owners = owner_labels(data.owners(settings))
# The same (cached) definitions decide the column and its options, so they never disagree.
has_pronouns = "pronouns" in defs and not defs["pronouns"].get("archived")
lifecycle = option_labels(defs.get("lifecyclestage"))
pronouns = option_labels(defs.get("pronouns")) if has_pronouns else None
editable = [c for c in EDITABLE if c != "pronouns" or has_pronouns]


def _text(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


outcome = editing.apply_edits(
    settings, staff, prefix=PREFIX, object_type="contacts", editable={c: _text for c in editable}
)
locked = outcome.locked

editing.push_panel(settings, staff, PREFIX)

# --- new contact ----------------------------------------------------------------------------

NEW_FIELDS = {
    "email": "Email",
    "firstname": "First name",
    "lastname": "Last name",
    "phone": "Phone",
    "jobtitle": "Job title",
}


def _create_contact() -> None:
    """Form callback: runs before the page, so a success can clear the form."""
    props: dict[str, Any] = {name: _text(st.session_state.get(f"contacts_new_{name}")) for name in NEW_FIELDS}
    for name in ("lifecyclestage", "hubspot_owner_id", "pronouns"):
        value = st.session_state.get(f"contacts_new_{name}")
        if value not in (None, ANY):
            props[name] = value
    props = {k: v for k, v in props.items() if v is not None}
    try:
        sync.queue_new_contact(settings, props, by=staff.label)
    except InvalidEdit as exc:
        st.session_state["contacts_new_errors"] = dict(exc.field_errors)
        return
    except CrmError as exc:
        st.session_state["contacts_new_errors"] = {"": str(exc)}
        return
    st.session_state.pop("contacts_new_errors", None)
    for name in NEW_FIELDS:
        st.session_state[f"contacts_new_{name}"] = ""
    data.clear()
    flash(f"New contact {props.get('email', '')} queued; push to create it in {words.crm}")


new_errors: dict[str, str] = st.session_state.get("contacts_new_errors") or {}
with st.expander("New contact", icon=":material/person_add:", expanded=bool(new_errors)):
    with st.form("contacts_new_form", clear_on_submit=False, border=False):
        left, right = st.columns(2)
        for n, (name, label) in enumerate(NEW_FIELDS.items()):
            (left if n % 2 == 0 else right).text_input(
                label + (" (required)" if name == "email" else ""), key=f"contacts_new_{name}", max_chars=254
            )
        right.selectbox(
            STAGE_LABEL,
            [ANY, *lifecycle],
            format_func=lambda v: "—" if v == ANY else lifecycle.get(v, v),
            key="contacts_new_lifecyclestage",
        )
        left.selectbox(
            "Owner",
            [ANY, *owners],
            format_func=lambda v: "—" if v == ANY else owners.get(v, v),
            key="contacts_new_hubspot_owner_id",
        )
        if pronouns:
            right.selectbox(
                "Pronouns",
                [ANY, *pronouns],
                format_func=lambda v: "—" if v == ANY else pronouns.get(v, v),
                key="contacts_new_pronouns",
            )
        st.form_submit_button(
            "Create contact", type="primary", on_click=_create_contact, key="contacts_new_submit"
        )
    if new_errors:
        st.error(
            "The contact was not created:\n\n"
            + "\n".join(
                f"- {md_escape(LABELS.get(k, k) or 'Contact')}: {md_escape(v)}" for k, v in new_errors.items()
            ),
            icon=":material/error:",
        )

# --- search, filters, sort ------------------------------------------------------------------

with crm_errors("read the companies"):
    companies, _ = data.records_page(settings, "companies", sort="name", limit=2000, columns=["name"])
company_names = {str(i): str(n or i) for i, n in companies["name"].items()} if not companies.empty else {}

row1 = st.columns([3, 2, 2, 2])
search = row1[0].text_input(
    "Search", key="contacts_search", placeholder="Name, email, company or phone", disabled=locked
)
owner = choose(row1[1], "Owner", owners, any_label="Any owner", key="contacts_owner", disabled=locked)
stage = choose(row1[2], STAGE_LABEL, lifecycle, any_label="Any stage", key="contacts_stage", disabled=locked)
company = choose(
    row1[3], "Company", company_names, any_label="Any company", key="contacts_company", disabled=locked
)
row2 = st.columns([2, 1, 1, 3])
sort_label = row2[0].selectbox("Sort by", list(SORTS), key="contacts_sort", disabled=locked)
descending = row2[1].toggle(
    "Descending", value=SORTS[sort_label][1], key=f"contacts_desc_{sort_label}", disabled=locked
)
size = row2[2].selectbox("Per page", PAGE_SIZES, index=1, key="contacts_size", disabled=locked)

filters = active_filters({"hubspot_owner_id": owner, "lifecyclestage": stage, "associated_company": company})
sort = SORTS[sort_label][0]
view = view_id(search.strip(), sorted(filters.items()), sort, descending, size)
page_key = f"contacts_page_{view}"

columns = list(PAGE_COLUMNS["contacts"])
if has_pronouns:
    columns.insert(5, "pronouns")
query = RecordQuery("contacts", search, filters, sort, descending, columns)
frame, total, page, pages = load_page(settings, query, page_key=page_key, size=size)

row2[3].caption(f"{total:,} contact{'s' if total != 1 else ''} · page {page:,} of {pages:,}")
if total == 0:
    st.info("No contacts match. Clear the search or filters to see everyone.", icon=":material/search_off:")

# --- the grid -------------------------------------------------------------------------------


def _describe(rid: str) -> str:
    if rid not in frame.index:
        return rid
    row = frame.loc[rid]
    name = " ".join(str(row.get(c) or "") for c in ("firstname", "lastname")).strip()
    return name or str(row.get("email") or rid)


editing.edit_grid(
    settings,
    prefix=PREFIX,
    object_type="contacts",
    frame=frame,
    shown=with_links(frame, "contacts", info.ui_domain, info.portal_id, crm=settings.crm),
    outcome=outcome,
    labels=LABELS,
    config=contact_columns(owners=owners, lifecycle=lifecycle, pronouns=pronouns, words=words),
    columns=columns,
    editable=editable,
    view=f"{view}_{page}",
    describe=_describe,
)
st.pagination(pages, key=page_key, disabled=locked)
st.caption(
    "Changes are saved as you make them and stay in the outbox until you push them. "
    f"Owner and {STAGE_LABEL.lower()} are chosen from {words.crm}'s lists."
)

# --- open a record, export ------------------------------------------------------------------

open_and_export(
    settings, query, frame, total, _describe, prefix=PREFIX, noun="contact", view=f"{view}_{page}"
)
