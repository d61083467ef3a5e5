"""Search everything: one box over contacts, companies, deals, tickets and interaction text."""

from __future__ import annotations

from collections import Counter

import streamlit as st

from crm.crms import provider_of
from ui import data
from ui.access import require_staff
from ui.columns import md_escape
from ui.feedback import crm_errors, show_flash
from ui.runtime import page_settings
from ui.selection import link_params
from ui.states import require_data
from ui.timeline import TYPE_ICONS, TYPE_LABELS

staff = require_staff()
show_flash()
settings = page_settings()

RECORD_PAGE = "pages/record.py"
PER_TYPE = 10
ICONS = {
    "contacts": ":material/person:",
    "companies": ":material/domain:",
    "deals": ":material/handshake:",
    "tickets": ":material/support_agent:",
}
# The CRM's types under its own names (a Pipedrive connection: People, Organizations, Deals).
SECTIONS = {
    info.name: (info.label, ICONS[info.name])
    for info in provider_of(settings).object_types()
    if info.name in ICONS
}

st.title("Search")
require_data(settings, staff, "records")
text = st.text_input(
    "Search everything",
    key="search_text",
    placeholder="A name, email, company, deal, ticket subject or words from a note, call or email",
)
if not text.strip():
    st.caption("Type to search every contact, company, deal, ticket and interaction in the cache.")
    st.stop()

with crm_errors("search the cache"):
    found = data.search_everything(settings, text, limit=PER_TYPE)

if not any(found.values()):
    st.info("Nothing matches.", icon=":material/search_off:")
    st.stop()

for object_type, (title, icon) in SECTIONS.items():
    hits = found.get(object_type) or []
    if not hits:
        continue
    st.subheader(f"{title} ({len(hits)}{'+' if len(hits) == PER_TYPE else ''})")
    # Tickets often share a subject ("Refund request"): a repeated label names its record too.
    seen = Counter(hit["label"] for hit in hits)
    for hit in hits:
        label = hit["label"] if seen[hit["label"]] == 1 else f"{hit['label']} · #{hit['id']}"
        st.page_link(
            RECORD_PAGE,
            label=md_escape(label, max_len=120),
            icon=icon,
            query_params=link_params(type=object_type, id=hit["id"]),
        )

interactions = found.get("interactions") or []
if interactions:
    st.subheader(f"Interactions ({len(interactions)}{'+' if len(interactions) == 2 * PER_TYPE else ''})")
    for hit in interactions:
        headline = hit.get("subject") or hit.get("preview") or ""
        label = md_escape(
            f"{TYPE_LABELS.get(hit['object_type'], hit['object_type'])} · {hit['occurred_at'][:10]} · {headline}",
            max_len=160,
        )
        if hit.get("record_type"):
            st.page_link(
                RECORD_PAGE,
                label=label,
                icon=TYPE_ICONS.get(hit["object_type"], ":material/forum:"),
                query_params=link_params(type=hit["record_type"], id=hit["record_id"]),
            )
        else:
            st.caption(label + " (not logged on any record)")
