"""Clients of the loopback sandbox, each with a fresh rate budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm.config import Settings
from crm.hubspot import HubSpotClient, StaticToken
from tests.portal_fixtures import fresh_limits, settings  # noqa: F401  (fixtures for this directory)


@pytest.fixture
def client(settings: Settings, sandbox_token: str) -> Iterator[HubSpotClient]:
    with HubSpotClient(settings, StaticToken(sandbox_token), timeout=10, backoff_base=0.01) as c:
        yield c
