"""Sync tests run headless against the loopback sandbox, exactly like the CLI (private-app mode)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from crm import store
from crm.config import Settings
from crm.hubspot import HubSpotClient, StaticToken
from crm.sync import run_sync
from tests.portal_fixtures import (  # noqa: F401  (fresh_limits, quick_search: fixtures here)
    fresh_limits,
    private_app_settings,
    quick_search,
)
from tests.synced_copies import portal_fingerprint


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
def prepared_cache(request: pytest.FixtureRequest, sandbox, settings: Settings) -> None:
    """A module's hook to fill the test's cache before ``db`` opens it (test_push.py's copy of
    a synced cache): a cache replaced under an open handle would not be seen through it.

    By default: for a test that asks for ``synced``, a copy of the session's cache synced from
    the small portal (tests/synced_copies.py), what ``run_sync(settings, kind="full")`` writes.
    """
    if "synced" in request.fixturenames:
        request.getfixturevalue("synced_copies").fill(
            settings.db,
            "private-app",
            portal_fingerprint(sandbox),
            lambda target: run_sync(dataclasses.replace(settings, db=target), kind="full"),
        )


@pytest.fixture
def synced(prepared_cache: None) -> None:
    """The test's cache holds a full sync of the small portal (a copy: ``prepared_cache``)."""


@pytest.fixture
def db(settings: Settings, prepared_cache: None):
    database = store.open(settings)
    try:
        yield database
    finally:
        database.close()
