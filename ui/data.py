"""Cached loaders: the pages' only door to the cache.

Each loader opens the cache for one unit of work (sqlite3 connections belong to the
thread that made them, and every rerun runs on its own thread) and returns plain data.
Loaders of record data are keyed by ``stamp()``: the cache version (bumped by every
change, webhooks included) and the latest sync run, so a change anywhere shows up on
the next rerun without anyone clearing anything; ``clear()`` drops them all after a
sync or a push anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils
import streamlit as st

from crm import store
from crm.config import Settings
from crm.store import records

TTL = dt.timedelta(minutes=10)


@contextmanager
def _db(db_path: str | Path) -> Iterator[sqlite_utils.Database]:
    db = store.open_db(db_path)
    try:
        yield db
    finally:
        db.close()


def open_cache(settings: Settings) -> AbstractContextManager[sqlite_utils.Database]:
    """The cache for one unit of work, closed afterwards."""
    return _db(settings.db_path)


def stamp(settings: Settings) -> str:
    """Changes whenever the cached data does: the cache version and the latest sync run."""
    from crm import sync

    with open_cache(settings) as db:
        run = sync.latest_run(db)
        version = records.cache_version(db)
    run_part = f"{run.get('id')}:{run.get('state')}" if run else "none"
    return f"{version}:{run_part}"


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def _records_page(
    db_path: str,
    stamp_: str,
    object_type: str,
    search: str | None,
    filters: tuple[tuple[str, Any], ...],
    sort: str | None,
    descending: bool,
    offset: int,
    limit: int,
    columns: tuple[str, ...] | None,
) -> tuple[pd.DataFrame, int]:
    with _db(db_path) as db:
        return records.query_records(
            db,
            object_type,
            search=search or None,
            filters=dict(filters) or None,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
            columns=list(columns) if columns else None,
        )


def records_page(
    settings: Settings,
    object_type: str,
    *,
    search: str | None = None,
    filters: dict[str, Any] | None = None,
    sort: str | None = None,
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
    columns: list[str] | None = None,
) -> tuple[pd.DataFrame, int]:
    """One page of records (paged in SQL) and the total number matching."""
    return _records_page(
        str(settings.db_path),
        stamp(settings),
        object_type,
        (search or "").strip() or None,
        tuple(sorted((filters or {}).items())),
        sort,
        descending,
        offset,
        limit,
        tuple(columns) if columns else None,
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def _owners(db_path: str, stamp_: str) -> pd.DataFrame:
    with _db(db_path) as db:
        return records.owners_frame(db)


def owners(settings: Settings) -> pd.DataFrame:
    return _owners(str(settings.db_path), stamp(settings))


@st.cache_data(ttl=TTL, show_spinner=False)
def _pipelines(db_path: str, stamp_: str, object_type: str) -> list[dict[str, Any]]:
    with _db(db_path) as db:
        return records.pipelines(db, object_type)


def pipelines(settings: Settings, object_type: str = "deals") -> list[dict[str, Any]]:
    return _pipelines(str(settings.db_path), stamp(settings), object_type)


@st.cache_data(ttl=TTL, show_spinner=False)
def _property_defs(db_path: str, stamp_: str, object_type: str) -> dict[str, dict[str, Any]]:
    with _db(db_path) as db:
        return records.property_defs(db, object_type)


def property_defs(settings: Settings, object_type: str) -> dict[str, dict[str, Any]]:
    return _property_defs(str(settings.db_path), stamp(settings), object_type)


@st.cache_data(ttl=TTL, show_spinner=False)
def _deal_stage_summary(db_path: str, stamp_: str, pipeline_id: str) -> pd.DataFrame:
    with _db(db_path) as db:
        return records.deal_stage_summary(db, pipeline_id)


def deal_stage_summary(settings: Settings, pipeline_id: str) -> pd.DataFrame:
    """Amount and count per stage of one pipeline, in the pipeline's stage order."""
    return _deal_stage_summary(str(settings.db_path), stamp(settings), pipeline_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def _deal_figures(db_path: str, stamp_: str, today: dt.date) -> dict[str, Any]:
    with _db(db_path) as db:
        return records.deal_figures(db, today=today)


def deal_figures(settings: Settings, today: dt.date | None = None) -> dict[str, Any]:
    return _deal_figures(str(settings.db_path), stamp(settings), today or dt.date.today())


@st.cache_data(ttl=TTL, show_spinner=False)
def _company_counts(db_path: str, stamp_: str, company_ids: tuple[str, ...]) -> pd.DataFrame:
    with _db(db_path) as db:
        return records.company_counts(db, list(company_ids))


def company_counts(settings: Settings, company_ids: list[str]) -> pd.DataFrame:
    return _company_counts(str(settings.db_path), stamp(settings), tuple(company_ids))


def counts(settings: Settings) -> dict[str, int]:
    with open_cache(settings) as db:
        return records.counts(db)


def record(settings: Settings, object_type: str, record_id: str) -> dict[str, Any] | None:
    with open_cache(settings) as db:
        return records.get_record(db, object_type, record_id)


def associated(settings: Settings, object_type: str, record_id: str, to_type: str) -> pd.DataFrame:
    with open_cache(settings) as db:
        return records.associated_records(db, object_type, record_id, to_type)


def has_synced(settings: Settings) -> bool:
    """True once any record, owner or property definition is in the cache."""
    with open_cache(settings) as db:
        return any(records.counts(db).values()) or bool(records.property_defs(db, "contacts"))


def clear() -> None:
    """Forget every cached frame (after a sync, a push, a disconnect)."""
    for loader in (
        _records_page,
        _owners,
        _pipelines,
        _property_defs,
        _deal_stage_summary,
        _deal_figures,
        _company_counts,
    ):
        loader.clear()


# --- outbox, conflicts, audit log (crm.store.outbox) -------------------------------------


def outbox_counts(settings: Settings) -> dict[str, int]:
    """Edits per status: pending, conflict, failed, pushed, discarded."""
    from crm.store import outbox

    with open_cache(settings) as db:
        return dict(outbox.outbox_counts(db))


def edits(settings: Settings, statuses: tuple[str, ...], object_type: str | None = None) -> pd.DataFrame:
    """Outbox rows in ``statuses``, newest first (record_label, property, new/base/remote value, error...)."""
    from crm.store import outbox

    with open_cache(settings) as db:
        return outbox.edits_frame(db, statuses=statuses, object_type=object_type)


def conflicts(settings: Settings) -> pd.DataFrame:
    from crm.store import outbox

    with open_cache(settings) as db:
        return outbox.conflicts_frame(db)


def new_contact_sides(row: Mapping[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """For a new contact held because HubSpot had its email (a ``conflicts`` row with op
    ``create``): my values, HubSpot's contact id, and its values."""
    import json

    from crm.store import outbox

    existing_id, theirs = outbox.existing_record(row)
    return json.loads(row.get("payload") or "{}"), existing_id, theirs


def audit_log(settings: Settings, limit: int = 200) -> pd.DataFrame:
    from crm.store import outbox

    with open_cache(settings) as db:
        return outbox.audit_log(db, limit=limit)


def pronouns_available(settings: Settings) -> bool:
    """True when the portal's contacts have the custom ``pronouns`` property (as last synced)."""
    from crm import sync

    with open_cache(settings) as db:
        return bool(sync.pronouns_available(db))


# Exports stop here; a spreadsheet of more rows is better made from the cache file itself.
EXPORT_LIMIT = 100_000


def csv_export(
    settings: Settings,
    object_type: str,
    *,
    search: str | None = None,
    filters: dict[str, Any] | None = None,
    sort: str | None = None,
    descending: bool = False,
    columns: list[str] | None = None,
) -> Callable[[], bytes]:
    """A deferred CSV of every matching record (up to ``EXPORT_LIMIT``), formula-like cells neutralised.

    Deferred so the rows are read only when someone clicks download, not on every rerun;
    it may run outside a script run, so it reads the cache directly, not through st caches.
    """
    from ui.columns import csv_bytes

    db_path = settings.db_path
    filters = dict(filters or {})
    wanted = list(columns) if columns else None

    def build() -> bytes:
        with _db(db_path) as db:
            frame, _ = records.query_records(
                db,
                object_type,
                search=search or None,
                filters=filters or None,
                sort=sort,
                descending=descending,
                offset=0,
                limit=EXPORT_LIMIT,
                columns=wanted,
            )
        return csv_bytes(frame)

    return build


def note_shown(settings: Settings) -> None:
    """Tell the live-updates watcher (ui.live) that this run already shows the cache as it is now.

    Without it, a change this very run made (a queued edit, a push) looks like news to the
    watcher, which then reruns the whole page a second later; a click landing in that
    rerun is lost (seen in Chromium on 1.67). Changes from elsewhere still trigger it.
    """
    from ui.live import VERSION_KEY

    with open_cache(settings) as db:
        st.session_state[VERSION_KEY] = records.cache_version(db)
