"""Fixtures for tests that reach the loopback sandbox portal through crm's HubSpot client.

A conftest imports the ones it wants (tests/client, tests/sync, tests/oauth); importing a
fixture into a conftest makes it that directory's fixture, autouse included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm.config import Settings, load_settings
from crm.hubspot import reset_limits


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    # Every test talks to the same sandbox portal; budgets learnt by one must not slow the next.
    reset_limits()
    yield
    reset_limits()


def private_app_settings(sandbox_url: str, token: str, db: str) -> Settings:
    """Private-app settings for the sandbox portal on the cache ``db`` (a path or URL)."""
    return load_settings({"HUBSPOT_ACCESS_TOKEN": token, "HUBSPOT_BASE_URL": sandbox_url, "CRM_DB": db}, {})


@pytest.fixture
def settings(sandbox, sandbox_token: str, tmp_path: Path) -> Settings:
    """Private-app settings for the sandbox portal, on a cache file of the test's own."""
    return private_app_settings(sandbox.url, sandbox_token, str(tmp_path / "crm.db"))
