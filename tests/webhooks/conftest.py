"""Fixtures for webhook tests.

Both run on each backend in turn (``cache_target``: SQLite, then PostgreSQL).

- ``offline_settings``: settings for a portal never connected (HubSpot a closed loopback port), for
  tests of receiving: the background worker fails at once with NotConnected; nothing leaves
  127.0.0.1. Its worker is stopped afterwards.
- ``route_client``: a Starlette TestClient over a small app mounting the webhook handler,
  with ``offline_settings`` on ``app.state``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from crm import webhooks
from crm.config import Settings
from tests.portal_fixtures import fresh_limits, quick_search  # noqa: F401  (fixtures for this directory)
from tests.webhooks.deliveries import make_settings, route_app


@pytest.fixture
def offline_settings(tmp_path: Path, cache_target: str) -> Iterator[Settings]:
    settings = make_settings(tmp_path, CRM_DB=cache_target)
    yield settings
    webhooks.stop_worker(settings)


@pytest.fixture
def route_client(offline_settings: Settings) -> Iterator[TestClient]:
    with TestClient(route_app(offline_settings), base_url="http://127.0.0.1:8501") as client:
        yield client
