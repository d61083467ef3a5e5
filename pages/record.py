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
    SINGULAR,
    md_escape,
    option_labels,
    owner_labels,
    pipeline_labels,
    record_url,
    stage_labels,
)
from ui.feedback import crm_errors, show_flash
from ui.runtime import page_settings
from ui.selection import link_params
from ui.states import require_data
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
RELATED = {
    "contacts": ("companies", "deals", "tickets"),
    "companies": ("contacts", "deals", "tickets"),
    "deals": ("contacts", "companies", "tickets"),
    "tickets": ("contacts", "companies", "deals"),
}
RELATED_COLUMNS = {
    "contacts": ["firstname", "lastname", "email", "jobtitle"],
    "companies": ["name", "domain", "city", "country"],
    "deals": ["dealname", "dealstage", "amount", "closedate"],
    "tickets": ["subject", "hs_ticket_priority", "createdate"],
}
HIDDEN = {"archived", "synced_at"}
_ID = re.compile(r"^(local-)?[A-Za-z0-9_-]{1,64}$")

object_type = st.query_params.get("type", "")
record_id = st.query_params.get("id", "")
if object_type not in RELATED or not _ID.match(record_id):
    st.title("Record")
    st.warning(
        "No record chosen. Open one from the Contacts, Companies or Deals page.", icon=":material/info:"
    )
    st.page_link(
        "pages/contacts.py", label="Go to Contacts", icon=":material/arrow_back:", query_params=link_params()
    )
    st.stop()

info = require_data(settings, staff, object_type)
with crm_errors("read the record"):
    record = data.record(settings, object_type, record_id)
    defs = data.property_defs(settings, object_type)

if record is None:
    st.title(SINGULAR[object_type].capitalize())
    st.warning(
        f"This {SINGULAR[object_type]} ({md_escape(record_id)}) is not in the cache. "
        f"It may have been deleted in {words.crm}, or not synced yet.",
        icon=":material/search_off:",
    )
    st.page_link(
        LIST_PAGES[object_type],
        label=f"Back to {object_type}",
        icon=":material/arrow_back:",
        query_params=link_params(),
    )
    st.stop()


def _title(row: dict[str, Any]) -> str:
    if object_type == "contacts":
        name = " ".join(str(row.get(k) or "") for k in ("firstname", "lastname")).strip()
        return name or str(row.get("email") or record_id)
    key = {"companies": "name", "deals": "dealname", "tickets": "subject"}[object_type]
    return str(row.get(key) or record_id)


st.page_link(
    LIST_PAGES[object_type],
    label=f"Back to {object_type}",
    icon=":material/arrow_back:",
    query_params=link_params(),
)
st.title(md_escape(_title(record), max_len=120))
st.caption(
    f"{SINGULAR[object_type].capitalize()} {md_escape(record_id)}"
    + (f" · archived in {words.crm}" if record.get("archived") else "")
)
link = record_url(info.ui_domain, info.portal_id, object_type, record_id, crm=settings.crm)
if link:
    st.link_button(words.open_record, link, icon=":material/open_in_new:")

with crm_errors("read owners and pipelines"):
    owners = owner_labels(data.owners(settings))
    pipes = data.pipelines(settings, object_type) if object_type in ("deals", "tickets") else []
# Values as HubSpot's UI shows them: owner names and option labels, not internal ids.
shown_as = {
    "hubspot_owner_id": owners,
    "pipeline": pipeline_labels(pipes),
    "dealstage": stage_labels(pipes),
    "hs_pipeline": pipeline_labels(pipes),
    "hs_pipeline_stage": stage_labels(pipes),
}


def _shown(name: str, value: Any) -> str:
    labels = shown_as.get(name) or option_labels(defs.get(name))
    return labels.get(str(value), str(value)) if labels else str(value)


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
    """Columns of an associated-records table shown by label, as HubSpot shows them (not ids)."""
    if to_type == "deals":
        return {"dealstage": stage_labels(data.pipelines(settings, "deals"))}
    if to_type == "tickets":
        return {
            "hs_ticket_priority": option_labels(
                data.property_defs(settings, "tickets").get("hs_ticket_priority")
            )
        }
    return {}


left, right = st.columns([3, 2])
with left:
    st.subheader("Properties")
    st.dataframe(properties, hide_index=True, width="stretch")
with right:
    for to_type in RELATED[object_type]:
        st.subheader(to_type.capitalize())
        with crm_errors(f"read the associated {to_type}"):
            related = data.associated(settings, object_type, record_id, to_type)
        if related.empty:
            st.caption(f"No associated {to_type}.")
            continue
        wanted = [c for c in RELATED_COLUMNS[to_type] if c in related.columns]
        table = related[wanted].copy()
        with crm_errors(f"read the labels of the {to_type}"):
            for column, labels in _related_labels(to_type).items():
                if column in table.columns and labels:
                    table[column] = [labels.get(str(v), v) for v in table[column]]
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
