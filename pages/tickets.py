"""Tickets: open tickets by stage and age, a searchable table, inline edits of stage, priority and owner."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from ui import data, editing
from ui.columns import (
    grid_columns,
    ids_as_text,
    option_labels,
    owner_labels,
    pipeline_labels,
    record_label,
    role_columns,
    sort_choices,
    stage_labels,
    with_links,
)
from ui.feedback import crm_errors
from ui.listpage import open_list_page
from ui.tables import ANY, RecordQuery, active_filters, choose, load_page, open_and_export, view_id

listing = open_list_page("tickets", scope_notes=["tickets"])
staff, settings, words, info, conn, defs = listing
label = listing.label

PREFIX = "tickets"
PAGE_SIZE = 50
STATES = {"OPEN": "Open", "CLOSED": "Closed"}
EDITABLE = list(info.editable)
COLUMNS = list(info.columns)

with crm_errors("read the cache"):
    pipes = [p for p in data.pipelines(settings, "tickets") if not p.get("archived")]
    owners = owner_labels(data.owners(settings))

SORTS = sort_choices(info, words, defs)
# The grid shows a ticket's age instead of its time columns (HubSpot's create date).
TIMES = [c for c in COLUMNS if str((defs.get(c) or {}).get("type")) == "datetime"]
CREATED = TIMES[0] if TIMES else None
LABELS = {name: label(name) for name in dict.fromkeys([*COLUMNS, *EDITABLE])}
# The other choice lists a person edits (HubSpot's ticket priority): filtered by as well.
CHOICES = {
    name: option_labels(defs.get(name))
    for name in EDITABLE
    if name not in role_columns(info) and (defs.get(name) or {}).get("type") == "enumeration"
}


outcome = editing.apply_edits(
    settings,
    staff,
    prefix=PREFIX,
    object_type="tickets",
    editable={c: editing.empty_to_none for c in EDITABLE},
)
locked = outcome.locked
pipeline_names = pipeline_labels(pipes)

# --- open tickets by stage and by age ------------------------------------------------------

with crm_errors("summarise the tickets"):
    summary = data.ticket_stage_summary(settings)
if summary.empty:
    st.caption("No ticket pipelines in the cache yet; a sync brings them in.")
else:
    summary = summary.assign(
        where=[
            f"{s} ({p})" if len(pipes) > 1 else str(s)
            for s, p in zip(summary["stage"], summary["pipeline"], strict=True)
        ]
    )
    order = list(summary["where"])
    m1, m2 = st.columns(2)
    m1.metric("Open tickets", f"{int(summary['count'].sum()):,}", border=True)
    oldest = summary["oldest_days"].max()
    m2.metric("Oldest open ticket", "-" if pd.isna(oldest) else f"{int(oldest)} days", border=True)
    base = alt.Chart(summary).encode(
        y=alt.Y("where:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=[
            alt.Tooltip("where:N", title="Stage"),
            alt.Tooltip("count:Q", title="Open tickets"),
            alt.Tooltip("median_age_days:Q", title="Median age (days)", format=".0f"),
            alt.Tooltip("oldest_days:Q", title="Oldest (days)", format=".0f"),
        ],
    )
    bars = base.mark_bar().encode(
        x=alt.X("count:Q", title="Open tickets"),
        color=alt.Color("median_age_days:Q", title="Median age (days)", scale=alt.Scale(scheme="orangered")),
    )
    with crm_errors("count the tickets by age"):
        ages = data.open_ticket_ages(settings)
    # Both charts lie on their side, one bar per row, so their labels read across, and they
    # share a height. The height holds the axis below the bars too (Streamlit fits the whole
    # chart to it), so each row gets its 34 px on top of that; with less, Vega hides every
    # other label, and upright bars left a sliver of a plot above bucket names on end.
    height = 70 + 34 * max(len(summary), len(ages))
    by_stage, by_age = st.columns([3, 2])
    by_stage.altair_chart(bars.properties(height=height), width="stretch")
    age_bars = (
        alt.Chart(ages)
        .mark_bar()
        .encode(
            y=alt.Y("bucket:N", sort=list(ages["bucket"]), title="Open for"),
            x=alt.X("count:Q", title="Open tickets"),
            tooltip=[alt.Tooltip("bucket:N", title="Open for"), alt.Tooltip("count:Q", title="Tickets")],
        )
    )
    by_age.altair_chart(age_bars.properties(height=height), width="stretch")

editing.push_panel(settings, staff, PREFIX)

# --- filters -------------------------------------------------------------------------------

stages_all = stage_labels(pipes)
# Two rows: seven controls on one row left Status and Priority too narrow to show their value.
top = st.columns([3, 1])
row = st.columns(5)
search = top[0].text_input("Search", key="tickets_search", placeholder=info.search_hint, disabled=locked)
state = choose(row[0], "Status", STATES, any_label="Any", key="tickets_state", disabled=locked)
pipeline = choose(
    row[1],
    label(info.pipeline or ""),
    pipeline_names,
    any_label="Any pipeline",
    key="tickets_pipeline",
    disabled=locked,
)
stage_options = stages_all
if pipeline != ANY:
    stage_options = stage_labels([p for p in pipes if p["id"] == pipeline])
stage = choose(
    row[2],
    label(info.stage or ""),
    stage_options,
    any_label="Any stage",
    key=f"tickets_stage_{pipeline}",
    disabled=locked,
)
chosen = {
    name: choose(
        row[3], label(name), options, any_label="Any", key=f"tickets_{label(name).lower()}", disabled=locked
    )
    for name, options in CHOICES.items()
}
owner = choose(
    row[4], label(info.owner or ""), owners, any_label="Any owner", key="tickets_owner", disabled=locked
)
sort_choice = top[1].selectbox("Sort by", list(SORTS), key="tickets_sort", disabled=locked)

roles = {info.pipeline: pipeline, info.stage: stage, **chosen, info.owner: owner}
filters = active_filters({"ticket_state": state, **{k: v for k, v in roles.items() if k}})
sort, descending = SORTS[sort_choice]
view = view_id(search.strip(), sorted(filters.items()), sort, descending)
page_key = f"tickets_page_{view}"
query = RecordQuery("tickets", search, filters, sort, descending, COLUMNS)
frame, total, page, pages = load_page(settings, query, page_key=page_key, size=PAGE_SIZE)
st.caption(f"{total:,} {info.singular if total == 1 else info.label.lower()} · page {page:,} of {pages:,}")
if total == 0:
    st.info(
        "No tickets match. Clear the search or filters to see every ticket.", icon=":material/search_off:"
    )

# --- the grid ------------------------------------------------------------------------------

with crm_errors("read the tickets' contacts and companies"):
    parties = data.ticket_parties(settings, [str(i) for i in frame.index])
shown = ids_as_text(frame, info)
shown["contact"] = [parties.get(str(i), {}).get("contact", "") for i in shown.index]
shown["company"] = [parties.get(str(i), {}).get("company", "") for i in shown.index]
opened = pd.to_datetime(shown[CREATED] if CREATED else None, utc=True, errors="coerce")
shown["age_days"] = (pd.Timestamp.now(tz="UTC") - opened).dt.days if len(shown) else pd.Series(dtype="Int64")


def _describe(rid: str) -> str:
    return record_label(frame.loc[rid], info, rid) if rid in frame.index else rid


config = grid_columns(info, words, defs, owners=owners, stages=stage_options, pipelines=pipeline_names)
config["contact"] = st.column_config.TextColumn("Contact", disabled=True)
config["company"] = st.column_config.TextColumn("Company", disabled=True)
config["age_days"] = st.column_config.NumberColumn("Age (days)", format="%d", disabled=True)
editing.edit_grid(
    settings,
    prefix=PREFIX,
    object_type="tickets",
    frame=frame,
    shown=with_links(shown, "tickets", conn.ui_domain, conn.portal_id, crm=settings.crm),
    outcome=outcome,
    labels=LABELS,
    config=config,
    columns=[c for c in COLUMNS if c not in TIMES] + ["contact", "company", "age_days"],
    editable=EDITABLE,
    view=f"{view}_{page}",
    describe=_describe,
)
st.pagination(pages, key=page_key, disabled=locked)
st.caption("Changes are saved as you make them and stay in the outbox until you push them.")

open_and_export(
    settings, query, frame, total, _describe, prefix=PREFIX, noun=info.singular, view=f"{view}_{page}"
)
