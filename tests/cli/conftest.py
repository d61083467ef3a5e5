"""CLI tests: a clean environment each, and ``headless`` for the settings a cron job would set."""

from __future__ import annotations

import os

import pytest

from crm.hubspot import reset_limits
from tests.portal_fixtures import fresh_limits, quick_search  # noqa: F401  (fixtures for this directory)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_")):
            monkeypatch.delenv(key)
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def headless(monkeypatch, sandbox, sandbox_token, tmp_path):
    """The environment a cron job or a terminal would set."""
    env = {
        "HUBSPOT_ACCESS_TOKEN": sandbox_token,
        "HUBSPOT_BASE_URL": sandbox.url,
        "CRM_DB": str(tmp_path / "c.db"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
