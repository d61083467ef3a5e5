"""Sandbox-mode settings on a temporary cache, and a fresh rate budget per test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm.config import Settings, load_settings
from crm.hubspot import reset_limits

REDIRECT_URI = "http://127.0.0.1:8501/hubspot/callback"


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def settings(sandbox, tmp_path: Path) -> Settings:
    base = load_settings({"CRM_DB": str(tmp_path / "crm.db"), "HUBSPOT_REDIRECT_URI": REDIRECT_URI}, {})
    return dataclasses.replace(base.for_sandbox(sandbox.url), http_timeout=10.0)
