"""The process-wide sync runner, and starting a sync from a page.

One ``SyncRunner`` per process and cache file, shared by every session. It lives in
this importable module (not in a page or app.py, which run as ``__main__`` and would
get a second cache entry). Whether a sync is running is read from the database (the
lease and progress rows), never from this object, so a run started by another tab,
another process or the CLI shows up too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from crm import connections, store, sync
from crm.config import Settings
from crm.sync.runner import Kind
from crm.sync.several import SyncAll
from ui import data


@st.cache_resource(show_spinner=False)
def _runner(target: str, _settings: Settings) -> sync.SyncRunner:
    return sync.SyncRunner(_settings)


def sync_runner(settings: Settings) -> sync.SyncRunner:
    """The runner for this cache file (created on first use)."""
    return _runner(store.target_of(settings), settings)


def start_sync(settings: Settings, kind: str, *, started_by: str | None) -> bool:
    """Start a sync in the background; False when one is already running (anywhere)."""
    started = sync_runner(settings).start(kind, started_by=started_by)
    if started:
        data.clear()
    return bool(started)


def start_all(
    home: Settings, ready: Sequence[connections.Connection], kind: Kind, *, started_by: str | None
) -> None:
    """Start a sync of each of ``ready`` side by side, in the background (``crm.sync.several``).

    Each connection runs in its own thread with its own HubSpot client and rate limiter, so
    one slow or failing portal holds up no other; a connection that is syncing already keeps
    its run (its lease refuses the second). Progress is read from each partition's own runs.
    """
    SyncAll(home, connections=ready).start(kind, trigger="ui", started_by=started_by)
    data.clear()


def is_running(settings: Settings) -> bool:
    with data.open_cache(settings) as db:
        return db.syncstate.is_sync_running()


def latest_run(settings: Settings) -> dict[str, Any] | None:
    with data.open_cache(settings) as db:
        return db.syncstate.latest_run()


def run_history(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    with data.open_cache(settings) as db:
        return db.syncstate.run_history(limit=limit)
