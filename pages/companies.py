"""Companies: search, sort and page the cache, with counts of associated contacts and deals."""

from __future__ import annotations

from typing import Any

import streamlit as st

from crm.crms import provider_of
from crm.export import PAGE_COLUMNS
from ui import data
from ui.access import require_staff
from ui.columns import company_columns, with_links
from ui.feedback import crm_errors, show_flash
from ui.runtime import page_settings
from ui.selection import link_params
from ui.states import require_data
from ui.tables import RecordQuery, csv_button, load_page, view_id

staff = require_staff()
show_flash()
settings = page_settings()

PAGE_SIZE = 50
SORTS = {
    "Name": ("name", False),
    "Last modified": ("hs_lastmodifieddate", True),
    "Employees": ("numberofemployees", True),
    "Annual revenue": ("annualrevenue", True),
    "Country": ("country", False),
}
COLUMNS = PAGE_COLUMNS["companies"]

st.title("Companies")
info = require_data(settings, staff, "companies")

row = st.columns([3, 2, 1, 2], vertical_alignment="bottom")
search = row[0].text_input("Search", key="companies_search", placeholder="Name, domain, phone or city")
sort_label = row[1].selectbox("Sort by", list(SORTS), key="companies_sort")
sort, default_desc = SORTS[sort_label]
descending = row[2].toggle("Descending", value=default_desc, key=f"companies_desc_{sort_label}")

view = view_id(search.strip(), sort, descending)
page_key = f"companies_page_{view}"
query = RecordQuery("companies", search, sort=sort, descending=descending, columns=COLUMNS)
frame, total, page, pages = load_page(settings, query, page_key=page_key, size=PAGE_SIZE)
row[3].caption(f"{total:,} compan{'ies' if total != 1 else 'y'} · page {page:,} of {pages:,}")

if total == 0:
    st.info("No companies match. Clear the search to see every company.", icon=":material/search_off:")
else:
    with crm_errors("count associated records"):
        counted = data.company_counts(settings, list(frame.index))
    shown = frame.join(counted[["contacts", "deals"]], how="left").fillna({"contacts": 0, "deals": 0})
    shown = with_links(shown, "companies", info.ui_domain, info.portal_id, crm=settings.crm)
    # A new key per visit: a selection kept from before would switch pages again on return.
    table_version = st.session_state.setdefault("companies_table_version", 0)
    selection: Any = st.dataframe(
        shown,
        key=f"companies_table_{view}_{page}_{table_version}",
        column_config=company_columns(provider_of(settings).words),
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
    st.caption("Select a row to open the company with its contacts and deals.")
    csv_button(st, settings, query, key="companies_csv", noun="company")
st.pagination(pages, key=page_key)
