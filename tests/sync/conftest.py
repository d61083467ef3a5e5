"""Sync tests run headless against the loopback sandbox, exactly like the CLI (private-app mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm.config import Settings, load_settings
from crm.hubspot import HubSpotClient, StaticToken, reset_limits
from crm.store import open_db


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    # Budgets learnt from one test's portal must not slow the next one down.
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def settings(sandbox, sandbox_token: str, tmp_path: Path) -> Settings:
    return load_settings(
        {
            "HUBSPOT_ACCESS_TOKEN": sandbox_token,
            "HUBSPOT_BASE_URL": sandbox.url,
            "CRM_DB": str(tmp_path / "crm.db"),
        },
        {},
    )


@pytest.fixture
def fast_client(settings: Settings, sandbox_token: str) -> Iterator[HubSpotClient]:
    """A client whose backoff is short, for tests that provoke many retries."""
    with HubSpotClient(settings, StaticToken(sandbox_token), timeout=5, backoff_base=0.01) as client:
        yield client


@pytest.fixture
def db(settings: Settings):
    database = open_db(settings.db_path)
    try:
        yield database
    finally:
        database.close()
