"""Cached loaders: the pages' only door to the cache.

Each loader opens the cache for one unit of work (a connection belongs to the thread
that opened it, and every rerun runs on its own thread), closes it, and returns plain data.
Loaders of record data are keyed by ``stamp()``: the cache version (bumped by every
change, webhooks included) and the latest sync run, so a change anywhere shows up on
the next rerun without anyone clearing anything; ``clear()`` drops them all after a
sync or a push anyway.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
import streamlit as st

from crm import store
from crm.config import Settings
from crm.crms import provider_of
from crm.store.interactions import TimelinePage
from crm.sync.pull import MISSING_SCOPES_KEY
from crm.sync.runner import ACCOUNT_CURRENCY_KEY

TTL = dt.timedelta(minutes=10)


def _db(target: str) -> AbstractContextManager[store.Store]:
    return store.open(target)


def open_cache(settings: Settings) -> AbstractContextManager[store.Store]:
    """The cache for one unit of work, closed afterwards."""
    return store.open(settings)


def stamp(settings: Settings) -> str:
    """Changes whenever the cached data does: the cache version and the latest sync run."""
    with open_cache(settings) as db:
        run = db.syncstate.latest_run()
        version = db.meta.cache_version()
    run_part = f"{run.get('id')}:{run.get('state')}" if run else "none"
    return f"{version}:{run_part}"


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def _records_page(
    target: str,
    stamp_: str,
    object_type: str,
    search: str | None,
    filters: tuple[tuple[str, Any], ...],
    sort: str | None,
    descending: bool,
    offset: int,
    limit: int,
    columns: tuple[str, ...] | None,
    search_columns: tuple[str, ...] | None = None,
) -> tuple[pd.DataFrame, int]:
    with _db(target) as db:
        return db.queries.query_records(
            object_type,
            search=search or None,
            filters=dict(filters) or None,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
            columns=list(columns) if columns else None,
            search_columns=search_columns,
        )


def search_columns(settings: Settings, object_type: str) -> tuple[str, ...] | None:
    """The properties the connection's CRM has a type's search box match (None: the store's usual)."""
    for info in provider_of(settings).object_types():
        if info.name == object_type and info.search:
            return info.search
    return None


def deal_roles(settings: Settings) -> dict[str, str]:
    """The deals columns that hold the pipeline, stage, amount, close date, currency and status, in the
    CRM's names (and the status's open and won values)."""
    for info in provider_of(settings).object_types():
        if info.name == "deals":
            roles = {
                "pipeline": info.pipeline,
                "stage": info.stage,
                "amount": info.amount,
                "close_date": info.close_date,
                "currency": info.currency,
                "status": info.status,
                "status_open": info.status_open,
                "status_won": info.status_won,
            }
            return {role: column for role, column in roles.items() if column}
    return {}


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
        store.target_of(settings),
        stamp(settings),
        object_type,
        (search or "").strip() or None,
        tuple(sorted((filters or {}).items())),
        sort,
        descending,
        offset,
        limit,
        tuple(columns) if columns else None,
        search_columns(settings, object_type),
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def _query(target: str, stamp_: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """``db.queries.<name>(*args, **kwargs)``: the loaders that are one query share this one
    cache (keyed by the query's name and arguments) instead of one cached function each."""
    with _db(target) as db:
        return getattr(db.queries, name)(*args, **kwargs)


def _read(settings: Settings, name: str, *args: Any, **kwargs: Any) -> Any:
    """One query (``_query``) of the cache ``settings`` point at, as of ``stamp()``."""
    return _query(store.target_of(settings), stamp(settings), name, *args, **kwargs)


def owners(settings: Settings) -> pd.DataFrame:
    return _read(settings, "owners_frame")


def pipelines(settings: Settings, object_type: str = "deals") -> list[dict[str, Any]]:
    return _read(settings, "pipelines", object_type)


def property_defs(settings: Settings, object_type: str) -> dict[str, dict[str, Any]]:
    return _read(settings, "property_defs", object_type)


def deal_stage_summary(
    settings: Settings, pipeline_id: str, currency: str | None = None, *, default_currency: str | None = None
) -> pd.DataFrame:
    """Amount and count per stage of one pipeline, in the pipeline's stage order, of the deals
    in ``currency`` (None: those naming none) when the CRM's deals name one; a deal naming
    none is in ``default_currency`` when given (the account's)."""
    wanted = {k: v for k, v in sorted(deal_roles(settings).items()) if k not in ("close_date", "status_won")}
    return _read(
        settings,
        "deal_stage_summary",
        pipeline_id,
        in_currency=currency,
        default_currency=default_currency,
        **wanted,
    )


def deal_figures(
    settings: Settings, today: dt.date | None = None, *, default_currency: str | None = None
) -> list[dict[str, Any]]:
    """The deal figures per currency, most deals first (``Queries.deal_figures``)."""
    roles = dict(sorted(deal_roles(settings).items()))
    return _read(
        settings, "deal_figures", today=today or dt.date.today(), default_currency=default_currency, **roles
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def _account_currency(target: str, stamp_: str) -> str | None:
    with _db(target) as db:
        return db.meta.get(ACCOUNT_CURRENCY_KEY) or None


def account_currency(settings: Settings) -> str | None:
    """The connected account's default currency (what a deal naming none is in), or None.

    As the last sync read it (``crm.sync.runner.ACCOUNT_CURRENCY_KEY``): a page never asks
    the CRM, so an unreachable CRM cannot slow the Deals page. None before a sync has read it
    or when the CRM names none.
    """
    return _account_currency(store.target_of(settings), stamp(settings))


def company_counts(settings: Settings, company_ids: list[str]) -> pd.DataFrame:
    return _read(settings, "company_counts", tuple(company_ids))


def ticket_stage_summary(settings: Settings) -> pd.DataFrame:
    """Open tickets per stage of every ticket pipeline, with their age."""
    return _read(settings, "ticket_stage_summary")


def open_ticket_ages(settings: Settings) -> pd.DataFrame:
    """Open tickets per age bucket."""
    return _read(settings, "open_ticket_ages")


def ticket_parties(settings: Settings, ticket_ids: list[str]) -> dict[str, dict[str, str]]:
    """For each ticket: one associated contact and company label, ``{id: {"contact", "company"}}``."""
    with open_cache(settings) as db:
        contacts = db.queries.first_associated_labels("tickets", ticket_ids, "contacts")
        companies = db.queries.first_associated_labels("tickets", ticket_ids, "companies")
    return {
        i: {"contact": contacts.get(i, ("", ""))[1], "company": companies.get(i, ("", ""))[1]}
        for i in ticket_ids
    }


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)
def _timeline(
    target: str,
    stamp_: str,
    record_type: str,
    record_id: str,
    types: tuple[str, ...] | None,
    since: str | None,
    until: str | None,
    search: str | None,
    before: str | None,
    limit: int,
) -> TimelinePage:
    with _db(target) as db:
        return db.interactions.timeline(
            record_type,
            record_id,
            types=list(types) if types is not None else None,
            since=since,
            until=until,
            search=search,
            before=before,
            limit=limit,
        )


def timeline(
    settings: Settings,
    record_type: str,
    record_id: str,
    *,
    types: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    search: str | None = None,
    before: str | None = None,
    limit: int = 25,
) -> TimelinePage:
    """One page of a record's interactions, newest first (``before``: the previous page's cursor)."""
    return _timeline(
        store.target_of(settings),
        stamp(settings),
        record_type,
        record_id,
        tuple(types) if types is not None else None,
        since,
        until,
        search or None,
        before,
        limit,
    )


def interaction_body(settings: Settings, object_type: str, record_id: str) -> str | None:
    """An engagement's full text, plain."""
    with open_cache(settings) as db:
        return db.interactions.body(object_type, record_id)


def search_everything(settings: Settings, text: str, *, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The CRM's types (contacts, companies, deals, tickets...) and interactions matching
    ``text``, by type: each type searched and named by its CRM's columns."""
    types = {info.name: (info.search, *info.title_parts()) for info in provider_of(settings).object_types()}
    with open_cache(settings) as db:
        found: dict[str, list[dict[str, Any]]] = dict(
            db.queries.search_everywhere(text, limit=limit, types=types)
        )
        found["interactions"] = db.interactions.search(text, limit=2 * limit)
    return found


def missing_scopes(settings: Settings) -> dict[str, list[str]]:
    """Types the last sync skipped because the connection lacks a scope -> the scopes HubSpot named."""
    with open_cache(settings) as db:
        raw = db.meta.get(MISSING_SCOPES_KEY)
    value = json.loads(raw) if raw else {}
    return {str(k): [str(s) for s in v] for k, v in value.items()} if isinstance(value, dict) else {}


def hidden_email_count(settings: Settings) -> int:
    """Cached emails whose content HubSpot withheld (no sales-email-read)."""
    with open_cache(settings) as db:
        return db.interactions.hidden_count()


def counts(settings: Settings) -> dict[str, int]:
    """Cached records per type, owners, and ``interactions`` (engagements of every type)."""
    with open_cache(settings) as db:
        return {**db.queries.counts(), "interactions": sum(db.interactions.counts().values())}


def record(settings: Settings, object_type: str, record_id: str) -> dict[str, Any] | None:
    with open_cache(settings) as db:
        return db.queries.get_record(object_type, record_id)


def associated(settings: Settings, object_type: str, record_id: str, to_type: str) -> pd.DataFrame:
    with open_cache(settings) as db:
        return db.queries.associated_records(object_type, record_id, to_type)


def has_synced(settings: Settings) -> bool:
    """True once any record, owner or property definition is in the cache."""
    with open_cache(settings) as db:
        return any(db.queries.counts().values()) or bool(db.queries.property_defs("contacts"))


def clear() -> None:
    """Forget every cached frame (after a sync, a push, a disconnect)."""
    for loader in (
        _records_page,
        _query,
        _timeline,
    ):
        loader.clear()


# --- outbox, conflicts, audit log (db.outbox) -------------------------------------


def outbox_counts(settings: Settings) -> dict[str, int]:
    """Edits per status: pending, conflict, failed, pushed, discarded."""
    with open_cache(settings) as db:
        return dict(db.outbox.outbox_counts())


def edits(settings: Settings, statuses: tuple[str, ...], object_type: str | None = None) -> pd.DataFrame:
    """Outbox rows in ``statuses``, newest first (record_label, property, new/base/remote value, error...)."""
    with open_cache(settings) as db:
        return db.outbox.edits_frame(statuses=statuses, object_type=object_type)


def conflicts(settings: Settings) -> pd.DataFrame:
    with open_cache(settings) as db:
        return db.outbox.conflicts_frame()


def new_contact_sides(row: Mapping[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """For a new contact held because HubSpot had its email (a ``conflicts`` row with op
    ``create``): my values, HubSpot's contact id, and its values."""
    import json

    from crm.store import outbox

    existing_id, theirs = outbox.existing_record(row)
    return json.loads(row.get("payload") or "{}"), existing_id, theirs


def audit_log(settings: Settings, limit: int = 200) -> pd.DataFrame:
    with open_cache(settings) as db:
        return db.outbox.audit_log(limit=limit)


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

    target = store.target_of(settings)
    filters = dict(filters or {})
    wanted = list(columns) if columns else None
    matched = search_columns(settings, object_type)

    def build() -> bytes:
        with _db(target) as db:
            frame, _ = db.queries.query_records(
                object_type,
                search=search or None,
                filters=filters or None,
                sort=sort,
                descending=descending,
                offset=0,
                limit=EXPORT_LIMIT,
                columns=wanted,
                search_columns=matched,
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
        st.session_state[VERSION_KEY] = db.meta.cache_version()
