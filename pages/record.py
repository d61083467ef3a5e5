"""Record detail (/record?type=contacts&id=...): properties, associated records, the activity
timeline, the link into the CRM's own UI (its words and URL come from the CRM's provider)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from crm.crms import provider_of
from ui import data
from ui.access import require_staff
from ui.columns import (
    id_text,
    md_escape,
    option_labels,
    owner_labels,
    pipeline_labels,
    record_label,
    record_url,
    role_columns,
    stage_labels,
)
from ui.feedback import crm_errors, show_flash
from ui.runtime import page_settings
from ui.selection import link_params
from ui.states import require_data
from ui.tables import record_labels
from ui.timeline import render_timeline

staff = require_staff()
show_flash()
settings = page_settings()
words = provider_of(settings).words

LIST_PAGES = {
    "contacts": "pages/contacts.py",
    "companies": "pages/companies.py",
    "deals": "pages/deals.py",
    "tickets": "pages/tickets.py",
}
# The CRM's types, in its order: each record lists its links to the others.
TYPES = {info.name: info for info in provider_of(settings).object_types() if info.name in LIST_PAGES}
HIDDEN = {"archived", "synced_at"}
_ID = re.compile(r"^(local-)?[A-Za-z0-9_-]{1,64}$")

object_type = st.query_params.get("type", "")
record_id = st.query_params.get("id", "")
if object_type not in TYPES or not _ID.match(record_id):
    st.title("Record")
    st.warning(
        "No record chosen. Open one from the Contacts, Companies or Deals page.", icon=":material/info:"
    )
    st.page_link(
        "pages/contacts.py", label="Go to Contacts", icon=":material/arrow_back:", query_params=link_params()
    )
    st.stop()

info = TYPES[object_type]
conn = require_data(settings, staff, object_type)
with crm_errors("read the record"):
    record = data.record(settings, object_type, record_id)
    defs = data.property_defs(settings, object_type)

if record is None:
    st.title(info.singular.capitalize())
    st.warning(
        f"This {info.singular} ({md_escape(record_id)}) is not in the cache. "
        f"It may have been deleted in {words.crm}, or not synced yet.",
        icon=":material/search_off:",
    )
    st.page_link(
        LIST_PAGES[object_type],
        label=f"Back to {info.label.lower()}",
        icon=":material/arrow_back:",
        query_params=link_params(),
    )
    st.stop()


st.page_link(
    LIST_PAGES[object_type],
    label=f"Back to {info.label.lower()}",
    icon=":material/arrow_back:",
    query_params=link_params(),
)
st.title(md_escape(record_label(record, info, record_id), max_len=120))
st.caption(
    f"{info.singular.capitalize()} {md_escape(record_id)}"
    + (f" · archived in {words.crm}" if record.get("archived") else "")
)
link = record_url(conn.ui_domain, conn.portal_id, object_type, record_id, crm=settings.crm)
if link:
    st.link_button(words.open_record, link, icon=":material/open_in_new:")

with crm_errors("read owners and pipelines"):
    owners = owner_labels(data.owners(settings))
    pipes = data.pipelines(settings, object_type) if info.pipeline else []
# Values as the CRM's UI shows them: owner names, pipeline and stage labels, the linked
# company's name and option labels, not internal ids.
shown_as: dict[str, dict[str, str]] = {}
if info.owner:
    shown_as[info.owner] = owners
if info.pipeline:
    shown_as[info.pipeline] = pipeline_labels(pipes)
if info.stage and info.pipeline:
    shown_as[info.stage] = stage_labels(pipes)
if info.company:
    shown_as[info.company] = record_labels(settings, "companies", [record.get(info.company)])


def _shown(name: str, value: Any) -> str:
    labels = shown_as.get(name) or option_labels(defs.get(name))
    text = id_text(value) if name in role_columns(info) else str(value)
    return labels.get(str(text), str(text)) if labels else str(text)


properties = pd.DataFrame(
    [
        {
            "Property": str((defs.get(name) or {}).get("label") or name),
            "Name": name,
            "Value": _shown(name, value),
        }
        for name, value in record.items()
        if name not in HIDDEN and name != "id" and value not in (None, "")
    ]
)


def _related_labels(to_type: str) -> dict[str, dict[str, str]]:
    """Columns of an associated-records table shown by label, as the CRM shows them (not ids):
    stages by their pipelines' labels, enumerations by their options' labels."""
    to_info = TYPES[to_type]
    to_defs = data.property_defs(settings, to_type)
    found: dict[str, dict[str, str]] = {}
    for column in to_info.related:
        if column == to_info.stage and to_info.pipeline:
            found[column] = stage_labels(data.pipelines(settings, to_type))
        elif str((to_defs.get(column) or {}).get("type")) == "enumeration":
            found[column] = option_labels(to_defs.get(column))
    return found


left, right = st.columns([3, 2])
with left:
    st.subheader("Properties")
    st.dataframe(properties, hide_index=True, width="stretch")
with right:
    for to_type, to_info in TYPES.items():
        if to_type == object_type:
            continue
        plural = to_info.label.lower()
        st.subheader(to_info.label)
        with crm_errors(f"read the associated {plural}"):
            related = data.associated(settings, object_type, record_id, to_type)
        if related.empty:
            st.caption(f"No associated {plural}.")
            continue
        wanted = [c for c in to_info.related if c in related.columns]
        table = related[wanted].copy()
        with crm_errors(f"read the labels of the {plural}"):
            for column, labels in _related_labels(to_type).items():
                if column in table.columns and labels:
                    table[column] = [labels.get(str(id_text(v)), v) for v in table[column]]
        version = st.session_state.setdefault("record_related_version", 0)
        picked: Any = st.dataframe(
            table,
            key=f"record_related_{to_type}_{version}",
            on_select="rerun",
            selection_mode="single-row",
        )
        rows = picked.selection.rows if picked else []
        if rows:
            st.session_state["record_related_version"] = version + 1
            st.switch_page(
                "pages/record.py", query_params=link_params(type=to_type, id=str(related.index[rows[0]]))
            )
    st.caption("Select a row to open that record.")

render_timeline(settings, object_type, record_id, owners=owners, staff=staff)
