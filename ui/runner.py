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

from crm import store, sync
from crm.config import Settings
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


def start_all(every: Sequence[Settings], kind: str, *, started_by: str | None) -> list[bool]:
    """Start a sync of each connection (``every``: their partitions' settings), side by side.

    Each connection's runner is its own worker thread with its own HubSpot client, so each
    keeps to its own portal's rate limits, and one that fails (or is already running) does not
    hold up the others. Returns, per connection, whether a run was started.
    """
    started = [bool(sync_runner(one).start(kind, started_by=started_by)) for one in every]
    if any(started):
        data.clear()
    return started


def is_running(settings: Settings) -> bool:
    with data.open_cache(settings) as db:
        return db.syncstate.is_sync_running()


def latest_run(settings: Settings) -> dict[str, Any] | None:
    with data.open_cache(settings) as db:
        return db.syncstate.latest_run()


def run_history(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    with data.open_cache(settings) as db:
        return db.syncstate.run_history(limit=limit)
