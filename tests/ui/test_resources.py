"""Connections are closed: the process's open files stay flat over many page loads and health checks.

Issue 11 found the count of open file descriptors climbing with every page render and
``/healthz`` call (each opened the cache and never closed it), until the process hit its
limit. The Contacts page's loaders (what one render reads: the sidebar's connection and
last run, the definitions, owners, a page of contacts, the outbox, live status) and the
health route are run 200 and 1,000 times here, with Streamlit's caches cleared every round
so each round really opens the cache. A leak of one file per round shows as 200 or more
against a slack of 5; a round of page loaders costs a quarter of a second on a busy machine,
so 1,000 of them took minutes without finding more.
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
PAGE_ROUNDS = 200
# Room for a lazily opened file (a log, a module's first import); a leak adds one per round.
SLACK = 5


def open_fds() -> int:
    """Open files and sockets of this process, pipes left out.

    Pipes come and go with subprocesses other threads of the test process run meanwhile
    (the PostgreSQL fixtures' ``psql`` calls that create and drop databases in the
    background); a cache opened and never closed is a file or a socket.
    """
    fds = os.listdir("/proc/self/fd")
    return sum(1 for fd in fds if not _is_pipe(fd))


def _is_pipe(fd: str) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:  # closed since the listing (the listing's own descriptor, for one)
        return True


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
def test_open_files_stay_flat_over_two_hundred_contacts_page_loads(synced):
    settings = synced.settings
    for _ in range(5):
        render_contacts_page_data(settings)
    before = open_fds()
    for _ in range(PAGE_ROUNDS):
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
