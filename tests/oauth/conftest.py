"""Sandbox-mode settings on a temporary cache, and a fresh rate budget per test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crm.config import Settings, load_settings
from tests.portal_fixtures import fresh_limits  # noqa: F401  (a fixture for this directory)

REDIRECT_URI = "http://127.0.0.1:8501/hubspot/callback"


@pytest.fixture
def settings(sandbox, tmp_path: Path) -> Settings:
    base = load_settings({"CRM_DB": str(tmp_path / "crm.db"), "HUBSPOT_REDIRECT_URI": REDIRECT_URI}, {})
    return dataclasses.replace(base.for_sandbox(sandbox.url), http_timeout=10.0)
