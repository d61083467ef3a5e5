"""Contacts: search, filter, sort and page the cache in SQL; edit inline; create; push."""

from __future__ import annotations

from typing import Any

import streamlit as st

from crm import sync
from crm.errors import CrmError, InvalidEdit
from crm.sync.pronouns import PRONOUNS
from ui import data, editing
from ui import links as links_ui
from ui.columns import (
    grid_columns,
    ids_as_text,
    label_of,
    md_escape,
    option_labels,
    owner_labels,
    record_label,
    sort_choices,
    type_info,
    with_links,
)
from ui.feedback import crm_errors, flash
from ui.listpage import open_list_page
from ui.tables import ANY, RecordQuery, active_filters, choose, load_page, open_and_export, view_id

listing = open_list_page("contacts")
staff, settings, words, info, conn, defs = listing
label = listing.label
company_info = type_info(settings.crm, "companies")
COMPANY = company_info.singular.capitalize()

PREFIX = "contacts"
PAGE_SIZES = (25, 50, 100, 250)

with crm_errors("read the cache"):
    owners = owner_labels(data.owners(settings))


LINKS_COLUMN = "in_crms"  # not a property name: the links' states, shown only

STAGE_LABEL = label(info.stage) if info.stage else ""
SORTS = sort_choices(info, words, defs)
# The same (cached) definitions decide the column and its options, so they never disagree.
has_pronouns = PRONOUNS in defs and not defs[PRONOUNS].get("archived")
lifecycle = option_labels(defs.get(info.stage)) if info.stage else {}
pronouns = option_labels(defs.get(PRONOUNS)) if has_pronouns else None
editable = [*info.editable, *([PRONOUNS] if has_pronouns else [])]
columns = list(info.columns)
if has_pronouns:
    columns.insert(min(5, len(columns)), PRONOUNS)
LABELS = {name: label(name) for name in dict.fromkeys([*columns, *editable])}


def _text(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


outcome = editing.apply_edits(
    settings, staff, prefix=PREFIX, object_type="contacts", editable={c: _text for c in editable}
)
locked = outcome.locked

editing.push_panel(settings, staff, PREFIX)

# --- new contact ----------------------------------------------------------------------------

# The record's own text fields, its email first (the one a new contact needs).
NEW_FIELDS = {
    name: label(name)
    for name in dict.fromkeys([*([info.email] if info.email else []), *info.editable])
    if name not in (info.owner, info.stage)
}
CHOSEN = [c for c in (info.stage, info.owner, PRONOUNS if has_pronouns else None) if c]


def _create_contact() -> None:
    """Form callback: runs before the page, so a success can clear the form."""
    props: dict[str, Any] = {name: _text(st.session_state.get(f"contacts_new_{name}")) for name in NEW_FIELDS}
    for name in CHOSEN:
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
    named = props.get(info.email, "") if info.email else ""
    flash(f"New {info.singular} {named} queued; push to create it in {words.crm}")


new_errors: dict[str, str] = st.session_state.get("contacts_new_errors") or {}
with st.expander(f"New {info.singular}", icon=":material/person_add:", expanded=bool(new_errors)):
    with st.form("contacts_new_form", clear_on_submit=False, border=False):
        left, right = st.columns(2)
        for n, (name, field_label) in enumerate(NEW_FIELDS.items()):
            (left if n % 2 == 0 else right).text_input(
                field_label + (" (required)" if name == info.email else ""),
                key=f"contacts_new_{name}",
                max_chars=254,
            )
        if info.stage:
            right.selectbox(
                STAGE_LABEL,
                [ANY, *lifecycle],
                format_func=lambda v: "—" if v == ANY else lifecycle.get(v, v),
                key=f"contacts_new_{info.stage}",
            )
        if info.owner:
            left.selectbox(
                label(info.owner),
                [ANY, *owners],
                format_func=lambda v: "—" if v == ANY else owners.get(v, v),
                key=f"contacts_new_{info.owner}",
            )
        if pronouns:
            right.selectbox(
                label(PRONOUNS),
                [ANY, *pronouns],
                format_func=lambda v: "—" if v == ANY else pronouns.get(v, v),
                key="contacts_new_pronouns",
            )
        st.form_submit_button(
            f"Create {info.singular}", type="primary", on_click=_create_contact, key="contacts_new_submit"
        )
    if new_errors:
        st.error(
            f"The {info.singular} was not created:\n\n"
            + "\n".join(
                f"- {md_escape(LABELS.get(k, k) or info.singular.capitalize())}: {md_escape(v)}"
                for k, v in new_errors.items()
            ),
            icon=":material/error:",
        )

# One contact in several CRMs (crm.sync.links): with more than one connection, a form that
# creates it in the ones chosen (all by default) and says how each went.
if len(links_ui.connection_names(settings)) > 1:
    with st.expander("New contact in several CRMs", icon=":material/hub:"):
        links_ui.new_contact_form(settings, by=staff.label)

# --- search, filters, sort ------------------------------------------------------------------

company_title = company_info.title[0]
with crm_errors(f"read the {company_info.label.lower()}"):
    companies, _ = data.records_page(
        settings, "companies", sort=company_title, limit=2000, columns=[company_title]
    )
company_names = (
    {str(i): str(n or i) for i, n in companies[company_title].items()} if not companies.empty else {}
)

row1 = st.columns([3, 2, 2, 2])
search = row1[0].text_input("Search", key="contacts_search", placeholder=info.search_hint, disabled=locked)
owner = (
    choose(row1[1], label(info.owner), owners, any_label="Any owner", key="contacts_owner", disabled=locked)
    if info.owner
    else ANY
)
stage = (
    choose(row1[2], STAGE_LABEL, lifecycle, any_label="Any stage", key="contacts_stage", disabled=locked)
    if info.stage
    else ANY
)
company = choose(
    row1[3],
    COMPANY,
    company_names,
    any_label=f"Any {company_info.singular}",
    key="contacts_company",
    disabled=locked,
)
row2 = st.columns([2, 1, 1, 3])
sort_choice = row2[0].selectbox("Sort by", list(SORTS), key="contacts_sort", disabled=locked)
descending = row2[1].toggle(
    "Descending", value=SORTS[sort_choice][1], key=f"contacts_desc_{sort_choice}", disabled=locked
)
size = row2[2].selectbox("Per page", PAGE_SIZES, index=1, key="contacts_size", disabled=locked)

# A company is a column of the record in some CRMs (Pipedrive's org_id), an association in others.
filters = active_filters(
    {
        **({info.owner: owner} if info.owner else {}),
        **({info.stage: stage} if info.stage else {}),
        (info.company or "associated_company"): company,
    }
)
sort = SORTS[sort_choice][0]
view = view_id(search.strip(), sorted(filters.items()), sort, descending, size)
page_key = f"contacts_page_{view}"

query = RecordQuery("contacts", search, filters, sort, descending, columns)
frame, total, page, pages = load_page(settings, query, page_key=page_key, size=size)

plural = info.label.lower()
row2[3].caption(f"{total:,} {info.singular if total == 1 else plural} · page {page:,} of {pages:,}")
if total == 0:
    st.info(f"No {plural} match. Clear the search or filters to see everyone.", icon=":material/search_off:")

# --- the grid -------------------------------------------------------------------------------


def _describe(rid: str) -> str:
    return record_label(frame.loc[rid], info, rid) if rid in frame.index else rid


config = grid_columns(info, words, defs, owners=owners, stages=lifecycle, companies=company_names)
if pronouns is not None:
    config[PRONOUNS] = (
        st.column_config.SelectboxColumn(
            label(PRONOUNS), options=list(pronouns), format_func=label_of(pronouns)
        )
        if pronouns
        else st.column_config.TextColumn(label(PRONOUNS), max_chars=60)
    )
shown = with_links(ids_as_text(frame, info), "contacts", conn.ui_domain, conn.portal_id, crm=settings.crm)
grid_order = list(columns)
# Where this page's contacts are linked to records in other CRMs: each one's state, as text.
badges = links_ui.link_badges(settings, shown.index)
if badges.astype(bool).any():
    shown[LINKS_COLUMN] = badges.reindex([str(i) for i in shown.index]).to_numpy()
    config[LINKS_COLUMN] = st.column_config.TextColumn("In CRMs", disabled=True, width="medium")
    grid_order.append(LINKS_COLUMN)
editing.edit_grid(
    settings,
    prefix=PREFIX,
    object_type="contacts",
    frame=frame,
    shown=shown,
    outcome=outcome,
    labels=LABELS,
    config=config,
    columns=grid_order,
    editable=editable,
    view=f"{view}_{page}",
    describe=_describe,
)
st.pagination(pages, key=page_key, disabled=locked)
chosen = " and ".join(label(c).lower() for c in (info.owner, info.stage) if c)
st.caption(
    "Changes are saved as you make them and stay in the outbox until you push them. "
    + (f"{chosen[:1].upper()}{chosen[1:]} are chosen from {words.crm}'s lists." if chosen else "")
)

# --- open a record, export ------------------------------------------------------------------

open_and_export(
    settings, query, frame, total, _describe, prefix=PREFIX, noun=info.singular, view=f"{view}_{page}"
)
