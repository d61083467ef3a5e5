"""Sandbox-mode settings on a cache of each test's own (SQLite, then PostgreSQL), and a fresh
rate budget per test."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.fernet import Fernet

from crm.config import Settings, load_settings
from tests.portal_fixtures import fresh_limits, quick_search  # noqa: F401  (fixtures for this directory)

REDIRECT_URI = "http://127.0.0.1:8501/hubspot/callback"


@pytest.fixture
def settings(sandbox, cache_target: str) -> Settings:
    env = {"CRM_DB": cache_target, "HUBSPOT_REDIRECT_URI": REDIRECT_URI}
    if cache_target.startswith("postgresql"):
        # No cache file to keep the demo's key beside (it would land in the repo's data/).
        env["CRM_SECRET_KEY"] = Fernet.generate_key().decode()
    base = load_settings(env, {})
    return dataclasses.replace(base.for_sandbox(sandbox.url), http_timeout=10.0)
