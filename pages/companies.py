"""Companies: search, sort and page the cache, with counts of associated contacts and deals."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import data
from ui.columns import grid_columns, ids_as_text, owner_labels, sort_choices, type_info, with_links
from ui.feedback import crm_errors
from ui.listpage import open_list_page
from ui.selection import link_params
from ui.tables import RecordQuery, csv_button, load_page, view_id

listing = open_list_page("companies")
_, settings, words, info, conn, defs = listing
contacts_info = type_info(settings.crm, "contacts")
deals_info = type_info(settings.crm, "deals")

PAGE_SIZE = 50
COLUMNS = list(info.columns)

with crm_errors("read the cache"):
    owners = owner_labels(data.owners(settings)) if info.owner in COLUMNS else {}
SORTS = sort_choices(info, words, defs)

row = st.columns([3, 2, 1, 2], vertical_alignment="bottom")
search = row[0].text_input("Search", key="companies_search", placeholder=info.search_hint)
sort_choice = row[1].selectbox("Sort by", list(SORTS), key="companies_sort")
sort, default_desc = SORTS[sort_choice]
descending = row[2].toggle("Descending", value=default_desc, key=f"companies_desc_{sort_choice}")

view = view_id(search.strip(), sort, descending)
page_key = f"companies_page_{view}"
query = RecordQuery("companies", search, sort=sort, descending=descending, columns=COLUMNS)
frame, total, page, pages = load_page(settings, query, page_key=page_key, size=PAGE_SIZE)
plural = info.label.lower()
row[3].caption(f"{total:,} {info.singular if total == 1 else plural} · page {page:,} of {pages:,}")

if total == 0:
    st.info(
        f"No {plural} match. Clear the search to see every {info.singular}.", icon=":material/search_off:"
    )
else:
    with crm_errors("count associated records"):
        counted = data.company_counts(settings, list(frame.index))
    shown = frame.join(counted[["contacts", "deals"]], how="left").fillna({"contacts": 0, "deals": 0})
    shown = with_links(
        ids_as_text(shown, info), "companies", conn.ui_domain, conn.portal_id, crm=settings.crm
    )
    config = grid_columns(info, words, defs, owners=owners)
    config["contacts"] = st.column_config.NumberColumn(contacts_info.label, format="%d")
    config["deals"] = st.column_config.NumberColumn(deals_info.label, format="%d")
    # A new key per visit: a selection kept from before would switch pages again on return.
    table_version = st.session_state.setdefault("companies_table_version", 0)
    selection: Any = st.dataframe(
        shown,
        key=f"companies_table_{view}_{page}_{table_version}",
        column_config=config,
        column_order=["hubspot", *COLUMNS, "contacts", "deals"],
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = selection.selection.rows if selection else []
    if rows:
        st.session_state["companies_table_version"] = table_version + 1
        st.switch_page(
            "pages/record.py", query_params=link_params(type="companies", id=str(shown.index[rows[0]]))
        )
    st.caption(
        f"Select a row to open the {info.singular} with its {contacts_info.label.lower()} "
        f"and {deals_info.label.lower()}."
    )
    csv_button(st, settings, query, key="companies_csv", noun=info.singular)
st.pagination(pages, key=page_key)
