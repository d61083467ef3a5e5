"""Clients of the loopback sandbox, each with a fresh rate budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm.config import Settings, load_settings
from crm.hubspot import HubSpotClient, StaticToken, reset_limits


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    # Every test talks to the same sandbox portal; budgets learnt by one must not slow the next.
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
def client(settings: Settings, sandbox_token: str) -> Iterator[HubSpotClient]:
    with HubSpotClient(settings, StaticToken(sandbox_token), timeout=10, backoff_base=0.01) as c:
        yield c
