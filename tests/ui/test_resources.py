"""Connections are closed: the process's open files stay flat over many page loads and health checks.

Issue 11 found the count of open file descriptors climbing with every page render and
``/healthz`` call (each opened the cache and never closed it), until the process hit its
limit. The Contacts page's loaders (what one render reads: the sidebar's connection and
last run, the definitions, owners, a page of contacts, the outbox, live status) and the
health route are each run 1,000 times here, with Streamlit's caches cleared every round
so each round really opens the cache.
"""

from __future__ import annotations

import os

import streamlit as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from crm import oauth, webhooks
from tests.pgcluster import sqlite_only
from ui import data
from ui.routes import ROUTES

ROUNDS = 1_000
# Room for a lazily opened file (a log, a module's first import); a leak adds one per round.
SLACK = 5


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def render_contacts_page_data(settings) -> None:
    st.cache_data.clear()
    oauth.connection_info(settings)
    data.has_synced(settings)
    data.property_defs(settings, "contacts")
    data.owners(settings)
    data.records_page(settings, "contacts", sort="lastname", limit=50)
    data.records_page(settings, "contacts", search="ada", limit=50)
    data.edits(settings, ("pending", "conflict"), "contacts")
    data.outbox_counts(settings)
    webhooks.live_status(settings)
    data.note_shown(settings)


@sqlite_only
def test_open_files_stay_flat_over_a_thousand_contacts_page_loads(synced):
    settings = synced.settings
    for _ in range(5):
        render_contacts_page_data(settings)
    before = open_fds()
    for _ in range(ROUNDS):
        render_contacts_page_data(settings)
    assert open_fds() - before <= SLACK


def test_open_files_stay_flat_over_a_thousand_health_checks(synced):
    app = Starlette(routes=ROUTES)
    app.state.settings = synced.settings
    with TestClient(app, base_url="http://127.0.0.1:8501") as client:
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
        before = open_fds()
        for _ in range(ROUNDS):
            assert client.get("/healthz").status_code == 200
        assert open_fds() - before <= SLACK
