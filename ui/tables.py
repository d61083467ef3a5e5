"""The record list pages' shared parts: filter choices, one page of a query, open a record, export.

A list page (contacts, companies, deals) describes its query once as a ``RecordQuery``;
the same query then pages the table and builds the CSV, so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from crm.config import Settings
from ui import data
from ui.choices import follow_renames
from ui.columns import id_text, record_label, type_info
from ui.feedback import crm_errors
from ui.selection import link_params

ANY = "__any__"
RECORD_PAGE = "pages/record.py"


@dataclasses.dataclass(frozen=True)
class RecordQuery:
    """What a list page shows: one object type, searched, filtered and sorted in SQL."""

    object_type: str
    search: str = ""
    filters: dict[str, Any] = dataclasses.field(default_factory=dict)
    sort: str | None = None
    descending: bool = False
    columns: list[str] | None = None


def choose(
    container: Any,
    label: str,
    options: Mapping[str, str],
    *,
    any_label: str,
    key: str,
    disabled: bool = False,
) -> Any:
    """A select box over ``options`` (value -> label) that starts with "any"; returns ``ANY`` or a value.

    The labels may be record names (a company filter): a live rename is followed (``follow_renames``).
    """
    follow_renames(key, {ANY: any_label, **options})
    return container.selectbox(
        label,
        [ANY, *options],
        format_func=lambda v: any_label if v == ANY else options.get(v, v),
        key=key,
        disabled=disabled,
    )


def active_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """The filters that are set: column -> value, leaving out those left at ``ANY``."""
    return {column: value for column, value in filters.items() if value != ANY}


def view_id(*parts: Any) -> str:
    """A short id for one view (search, filters, sort...), to key its pager and grid."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


def load_page(
    settings: Settings, query: RecordQuery, *, page_key: str, size: int
) -> tuple[pd.DataFrame, int, int, int]:
    """The page of ``query`` the pager ``page_key`` is on: (frame, total, page, pages).

    A pager left past the end (the rows matching shrank) moves to the last page.
    """

    def load(page: int) -> tuple[pd.DataFrame, int]:
        with crm_errors(f"read the {query.object_type}"):
            return data.records_page(
                settings,
                query.object_type,
                search=query.search,
                filters=query.filters,
                sort=query.sort,
                descending=query.descending,
                offset=(page - 1) * size,
                limit=size,
                columns=query.columns,
            )

    page = int(st.session_state.get(page_key) or 1)
    frame, total = load(page)
    pages = max(1, math.ceil(total / size))
    if page > pages:
        page = pages
        st.session_state[page_key] = page
        frame, total = load(page)
    return frame, total, page, pages


def csv_button(container: Any, settings: Settings, query: RecordQuery, *, key: str, noun: str) -> None:
    """Download every record matching ``query`` as CSV; ``noun`` is one record ("contact")."""
    container.download_button(
        "Download CSV",
        data=data.csv_export(
            settings,
            query.object_type,
            search=query.search,
            filters=query.filters,
            sort=query.sort,
            descending=query.descending,
            columns=query.columns,
        ),
        file_name=f"{query.object_type}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
        icon=":material/download:",
        help=f"Every matching {noun}; cells a spreadsheet would run as formulas are neutralised.",
    )


def open_and_export(
    settings: Settings,
    query: RecordQuery,
    frame: pd.DataFrame,
    total: int,
    describe: Callable[[str], str],
    *,
    prefix: str,
    noun: str,
    view: str,
) -> None:
    """Below the table: pick one of the page's records and open it, or download every match as CSV.

    Args:
        prefix: the page's widget prefix; the buttons are ``<prefix>_open`` and ``<prefix>_csv``.
        noun: one record, as the labels say it ("contact").
        view: the view and page shown, so the choice resets when they change.
    """
    tools = st.columns([3, 1, 2], vertical_alignment="bottom")
    if not total:
        return
    labels = {rid: f"{describe(rid)} · #{rid}" for rid in frame.index}
    key = f"{prefix}_open_{view}"
    follow_renames(key, labels)
    picked = tools[0].selectbox(
        f"Open a {noun}", list(labels), format_func=lambda rid: labels.get(rid, str(rid)), key=key
    )
    if tools[1].button("Open", key=f"{prefix}_open", icon=":material/open_in_full:"):
        st.switch_page(RECORD_PAGE, query_params=link_params(type=query.object_type, id=str(picked)))
    csv_button(tools[2], settings, query, key=f"{prefix}_csv", noun=noun)


def record_labels(settings: Settings, object_type: str, ids: Any) -> dict[str, str]:
    """``{id: name}`` of the cached records of ``object_type`` among ``ids`` (a record
    pointing at another by id, as Pipedrive's org_id does, shows that one's name)."""
    wanted = sorted({t for t in (id_text(i) for i in ids) if t})
    if not wanted:
        return {}
    info = type_info(settings.crm, object_type)
    with crm_errors(f"read the {info.label.lower()}"):
        frame, _ = data.records_page(
            settings, object_type, filters={"id": tuple(wanted)}, limit=len(wanted), columns=list(info.title)
        )
    return {str(rid): record_label(row, info, str(rid)) for rid, row in frame.iterrows()}
