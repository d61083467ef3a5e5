"""AppTest fixtures: ``portal`` (the app's secrets for the test sandbox and a temporary
cache), ``connected`` (OAuth done) and ``synced`` (a full sync done too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from uikit import REDIRECT_URI, ROOT, Portal

from crm.config import load_settings
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
def portal(sandbox: SandboxAdmin, tmp_path: Path) -> Portal:
    secrets = {
        "CRM_SANDBOX_URL": sandbox.url,
        "CRM_DB": str(tmp_path / "crm.db"),
        "HUBSPOT_REDIRECT_URI": REDIRECT_URI,
    }
    settings = load_settings({}, secrets).for_sandbox(sandbox.url)
    return Portal(sandbox=sandbox, secrets=secrets, settings=settings)


@pytest.fixture
def connected(portal: Portal) -> Portal:
    portal.connect()
    return portal


@pytest.fixture
def synced(connected: Portal) -> Portal:
    connected.sync("full")
    return connected
