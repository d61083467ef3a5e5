"""AppTest fixtures: ``portal`` (the app's secrets for the test sandbox and a temporary
cache), ``connected`` (OAuth done) and ``synced`` (a full sync done too).

``synced`` gives each test a copy of a cache synced once per session (tests/synced_copies.py),
reconnected with tokens of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import streamlit as st
from uikit import ROOT, Portal, make_portal

from crm.hubspot import reset_limits
from crm.sandbox.admin import SandboxAdmin
from tests.portal_fixtures import fresh_limits, quick_search  # noqa: F401  (fixtures for this directory)
from tests.synced_copies import SyncedCopies, portal_fingerprint


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No outside configuration leaks in, the cwd is the repo (config.toml), caches start empty."""
    for name in list(os.environ):
        if name.startswith(("CRM_", "HUBSPOT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    st.cache_data.clear()
    st.cache_resource.clear()
    reset_limits()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    reset_limits()


@pytest.fixture
def portal(sandbox: SandboxAdmin, cache_target: str) -> Portal:
    """The app's secrets for the sandbox, on a cache of the test's own: each page test runs
    on SQLite, then on PostgreSQL (``cache_target``). Modules that test no storage (the
    access guard) or only SQLite's scale override this with ``sqlite_portal``."""
    return make_portal(sandbox, cache_target)


@pytest.fixture
def connected(portal: Portal) -> Portal:
    portal.connect()
    return portal


@pytest.fixture
def synced(portal: Portal, synced_copies: SyncedCopies) -> Portal:
    """The portal connected and fully synced (a copy of the session's synced cache)."""

    def build(target: str) -> None:
        template = make_portal(portal.sandbox, target)
        template.connect()
        assert template.sync("full")["state"] == "succeeded"

    synced_copies.fill(portal.settings.db, "oauth-app", portal_fingerprint(portal.sandbox), build)
    portal.connect()  # tokens of its own: the same portal again is a reconnect, which keeps the cache
    return portal
