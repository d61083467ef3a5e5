"""Deals: pipeline figures and chart, a table with stages and owners as labels, inline edits.

Amounts are summed per currency, never across: deals name their currency (the CRM's
``currency`` role) and the cache holds no exchange rates, so adding euros to dollars would
be a figure a sales manager acts on wrongly. With several currencies the figures are one row
of the same three metrics per currency, most deals first: reading down a column compares a
figure across currencies, every number is one that exists in the CRM, and nothing is hidden
behind a picker. The chart has room for one axis of money, so it shows one currency at a
time (a picker, most deals first). A deal naming no currency is in the account's default
currency when the CRM tells it, otherwise its figures are labelled "no currency".
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from ui import data, editing
from ui.columns import (
    grid_columns,
    ids_as_text,
    owner_labels,
    pipeline_labels,
    record_label,
    sort_choices,
    stage_labels,
    with_links,
)
from ui.feedback import crm_errors
from ui.listpage import open_list_page
from ui.tables import (
    ANY,
    RecordQuery,
    active_filters,
    choose,
    load_page,
    open_and_export,
    record_labels,
    view_id,
)

listing = open_list_page("deals")
staff, settings, words, info, conn, defs = listing
label = listing.label

PREFIX = "deals"
SIDE_BY_SIDE = "__all__"
PAGE_SIZE = 50

with crm_errors("read the cache"):
    pipes = [p for p in data.pipelines(settings, "deals") if not p.get("archived")]
    owners = owner_labels(data.owners(settings))
    # Deals naming no currency are in the account's, as the last sync read it (None: unknown).
    default_currency = data.account_currency(settings)
    figures = data.deal_figures(settings, dt.date.today(), default_currency=default_currency)
NO_CURRENCY = "no currency"

SORTS = sort_choices(info, words, defs)
EDITABLE = list(info.editable)
LABELS = {name: label(name) for name in dict.fromkeys([*info.columns, *EDITABLE])}
PIPELINE_LABEL = label(info.pipeline) if info.pipeline else "Pipeline"
STAGE_LABEL = label(info.stage) if info.stage else "Stage"


outcome = editing.apply_edits(
    settings, staff, prefix=PREFIX, object_type="deals", editable={c: editing.empty_to_none for c in EDITABLE}
)
locked = outcome.locked

# --- figures and the pipeline chart ---------------------------------------------------------


def amount(value: float, currency: str | None) -> str:
    """``12,000 EUR``: the figure and its currency's code, or "no currency" (``""``: no deals,
    no currency to name)."""
    unit = NO_CURRENCY if currency is None else currency
    return f"{value:,.0f} {unit}".rstrip()


FIGURES = (
    ("open_value", "Open pipeline value", "Sum of amounts of open deals"),
    ("won_this_quarter", "Won this quarter", "Deals won with a close date in the current calendar quarter"),
    ("weighted_forecast", "Weighted forecast", "Open amounts weighted by each stage's win probability"),
)
for row in figures or [{"currency": ""}]:
    where = f", in {row['currency']} only" if row["currency"] and len(figures) > 1 else ""
    for column, (key, title, meaning) in zip(st.columns(3), FIGURES, strict=True):
        column.metric(
            title, amount(float(row.get(key, 0.0)), row["currency"]), border=True, help=f"{meaning}{where}."
        )
if len(figures) > 1:
    st.caption(
        f"Deals in {len(figures)} currencies: each currency's figures are its own; "
        "none are added across currencies (the cache has no exchange rates)."
    )

pipeline_names = pipeline_labels(pipes)
STAGE_BAND_PX = 34


def stage_chart(summary: pd.DataFrame, title: str | None, currency: str | None) -> alt.LayerChart:
    """Amount per stage as bars, deal count as a label, stages in the pipeline's order; the
    amounts are all in ``currency`` (the axis says which; no deals, no currency to name)."""
    unit = f"Amount ({currency or NO_CURRENCY})" if figures else "Amount"
    order = list(summary["stage"])
    base = alt.Chart(summary).encode(
        y=alt.Y("stage:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=[
            alt.Tooltip("stage:N", title="Stage"),
            alt.Tooltip("count:Q", title="Deals"),
            alt.Tooltip("amount:Q", title=unit, format=",.0f"),
        ],
    )
    bars = base.mark_bar().encode(
        x=alt.X("amount:Q", title=unit), color=alt.Color("stage:N", sort=order, legend=None)
    )
    counts = base.mark_text(align="left", dx=4).encode(x="amount:Q", text=alt.Text("count:Q", format="d"))
    # Each stage a band of its own height (a step), the axes added below: a fixed height is
    # shared with the axes, and five stages in 170 px left bands too thin for their labels,
    # so Vega dropped every other stage's name.
    chart = alt.layer(bars, counts).properties(height=alt.Step(STAGE_BAND_PX))
    return chart.properties(title=title) if title else chart


if pipes:
    chart_choice = (
        st.segmented_control(
            "Pipeline chart",
            [*pipeline_names, SIDE_BY_SIDE] if len(pipes) > 1 else list(pipeline_names),
            format_func=lambda v: "Side by side" if v == SIDE_BY_SIDE else pipeline_names.get(v, v),
            default=pipes[0]["id"],
            key="deals_chart_pipeline",
        )
        or pipes[0]["id"]
    )
    chosen = list(pipeline_names) if chart_choice == SIDE_BY_SIDE else [chart_choice]
    # One currency on the axis at a time: the picker appears when the deals name several.
    codes = {str(f["currency"] or ""): f["currency"] for f in figures}
    shown_currency = next(iter(codes.values()), default_currency)
    if len(codes) > 1:
        picked = st.segmented_control(
            "Chart currency",
            list(codes),
            format_func=lambda code: code or NO_CURRENCY,
            default=next(iter(codes)),
            key="deals_chart_currency",
        )
        shown_currency = codes.get(picked, shown_currency) if picked is not None else shown_currency
    with crm_errors("summarise the pipeline"):
        summaries = {
            pid: data.deal_stage_summary(settings, pid, shown_currency, default_currency=default_currency)
            for pid in chosen
        }
    if all(s.empty for s in summaries.values()):
        st.caption("No stages to chart yet.")
    elif len(chosen) == 1:
        st.altair_chart(stage_chart(summaries[chosen[0]], None, shown_currency), width="stretch")
    else:
        charts = [
            stage_chart(summaries[pid], pipeline_names[pid], shown_currency)
            for pid in chosen
            if not summaries[pid].empty
        ]
        st.altair_chart(alt.hconcat(*charts), width="stretch")
else:
    st.caption("No deal pipelines in the cache yet; a sync brings them in.")

editing.push_panel(settings, staff, PREFIX)

# --- filters --------------------------------------------------------------------------------

stages_all = stage_labels(pipes)
row = st.columns([3, 2, 2, 2, 2])
search = row[0].text_input("Search", key="deals_search", placeholder=info.search_hint, disabled=locked)
pipeline = choose(
    row[1], PIPELINE_LABEL, pipeline_names, any_label="Any pipeline", key="deals_pipeline", disabled=locked
)
stage_options = stages_all
if pipeline != ANY:
    stage_options = stage_labels([p for p in pipes if p["id"] == pipeline])
stage = choose(
    row[2], STAGE_LABEL, stage_options, any_label="Any stage", key=f"deals_stage_{pipeline}", disabled=locked
)
owner = choose(
    row[3],
    label(info.owner) if info.owner else "Owner",
    owners,
    any_label="Any owner",
    key="deals_owner",
    disabled=locked,
)
sort_choice = row[4].selectbox("Sort by", list(SORTS), key="deals_sort", disabled=locked)

roles = {info.pipeline: pipeline, info.stage: stage, info.owner: owner}
filters = active_filters({column: value for column, value in roles.items() if column})
sort, descending = SORTS[sort_choice]
view = view_id(search.strip(), sorted(filters.items()), sort)
page_key = f"deals_page_{view}"
columns = list(info.columns)
query = RecordQuery("deals", search, filters, sort, descending, columns)
frame, total, page, pages = load_page(settings, query, page_key=page_key, size=PAGE_SIZE)
plural = info.label.lower()
st.caption(f"{total:,} {info.singular if total == 1 else plural} · page {page:,} of {pages:,}")
if total == 0:
    st.info(
        f"No {plural} match. Clear the search or filters to see every {info.singular}.",
        icon=":material/search_off:",
    )

# --- the grid -------------------------------------------------------------------------------

shown = ids_as_text(frame, info)
if info.close_date and info.close_date in shown.columns:
    # The grid's date column wants dates; a close date may be a datetime (HubSpot's: midnight UTC).
    shown[info.close_date] = pd.to_datetime(shown[info.close_date], utc=True, errors="coerce").dt.date

company_names = record_labels(settings, "companies", shown[info.company]) if info.company else {}


def _describe(rid: str) -> str:
    return record_label(frame.loc[rid], info, rid) if rid in frame.index else rid


editing.edit_grid(
    settings,
    prefix=PREFIX,
    object_type="deals",
    frame=frame,
    shown=with_links(shown, "deals", conn.ui_domain, conn.portal_id, crm=settings.crm),
    outcome=outcome,
    labels=LABELS,
    config=grid_columns(
        info,
        words,
        defs,
        owners=owners,
        stages=stage_options,
        pipelines=pipeline_names,
        companies=company_names,
    ),
    columns=columns,
    editable=EDITABLE,
    view=f"{view}_{page}",
    describe=_describe,
)
st.pagination(pages, key=page_key, disabled=locked)
st.caption("Changes are saved as you make them and stay in the outbox until you push them.")

open_and_export(
    settings, query, frame, total, _describe, prefix=PREFIX, noun=info.singular, view=f"{view}_{page}"
)
