"""AppTest fixtures: ``portal`` (the app's secrets for the test sandbox and a temporary
cache), ``connected`` (OAuth done) and ``synced`` (a full sync done too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import streamlit as st
from uikit import ROOT, Portal, make_portal

from crm.hubspot import reset_limits
from crm.sandbox.admin import SandboxAdmin


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
def synced(connected: Portal) -> Portal:
    connected.sync("full")
    return connected
