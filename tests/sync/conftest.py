"""Sync tests run headless against the loopback sandbox, exactly like the CLI (private-app mode)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm import store
from crm.config import Settings
from crm.hubspot import HubSpotClient, StaticToken
from tests.portal_fixtures import fresh_limits, private_app_settings  # noqa: F401  (fresh_limits: a fixture here)


@pytest.fixture
def settings(sandbox, sandbox_token: str, cache_target: str) -> Settings:
    """Private-app settings for the sandbox portal on a cache of the test's own: each test
    runs on SQLite, then on PostgreSQL (``cache_target``)."""
    return private_app_settings(sandbox.url, sandbox_token, cache_target)


@pytest.fixture
def fast_client(settings: Settings, sandbox_token: str) -> Iterator[HubSpotClient]:
    """A client whose backoff is short, for tests that provoke many retries."""
    with HubSpotClient(settings, StaticToken(sandbox_token), timeout=5, backoff_base=0.01) as client:
        yield client


@pytest.fixture
def prepared_cache() -> None:
    """A module's hook to fill the test's cache before ``db`` opens it (test_push.py's copy of
    a synced cache): a cache replaced under an open handle would not be seen through it."""


@pytest.fixture
def db(settings: Settings, prepared_cache: None):
    database = store.open(settings)
    try:
        yield database
    finally:
        database.close()
