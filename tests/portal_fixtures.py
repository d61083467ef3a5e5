"""Fixtures for tests that reach the loopback sandbox portal through crm's HubSpot client.

A conftest imports the ones it wants (tests/client, tests/sync, tests/oauth); importing a
fixture into a conftest makes it that directory's fixture, autouse included.

``quick_search`` (autouse where imported) lifts HubSpot's search limit, 5 requests a second,
to ``QUICK_SEARCH_PER_S`` on both sides, the sandbox's portal and this process's clients
(search answers carry no rate-limit headers, so a client cannot learn it). A full sync of
the small portal took 3.4 s at 5 searches a second and 0.6 s at 50, an incremental one 2 s
and 0.45 s: most of a sync test was waiting for search slots. A test whose subject includes
the search limit says so with ``@pytest.mark.hubspot_search_limit`` and keeps HubSpot's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crm.config import Settings, load_settings
from crm.hubspot import limits, reset_limits

QUICK_SEARCH_PER_S = 50


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    # Every test talks to the same sandbox portal; budgets learnt by one must not slow the next.
    reset_limits()
    yield
    reset_limits()


@pytest.fixture(autouse=True)
def quick_search(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, fresh_limits: None) -> None:
    """For a test on the ``sandbox`` or ``two_portals`` portals: searches at QUICK_SEARCH_PER_S
    (see above).

    The test's own ``configure`` and resets without ``config=True`` keep it; the clients'
    budgets are new (``fresh_limits``), made with this limit, and forgotten after.
    """
    portals = [name for name in ("sandbox", "two_portals") if name in request.fixturenames]
    if not portals or request.node.get_closest_marker("hubspot_search_limit"):
        return
    for name in portals:
        request.getfixturevalue(name).configure(search_limit=QUICK_SEARCH_PER_S)
    monkeypatch.setattr(limits, "DEFAULT_SEARCH", QUICK_SEARCH_PER_S)


def private_app_settings(sandbox_url: str, token: str, db: str) -> Settings:
    """Private-app settings for the sandbox portal on the cache ``db`` (a path or URL)."""
    return load_settings({"HUBSPOT_ACCESS_TOKEN": token, "HUBSPOT_BASE_URL": sandbox_url, "CRM_DB": db}, {})


@pytest.fixture
def settings(sandbox, sandbox_token: str, tmp_path: Path) -> Settings:
    """Private-app settings for the sandbox portal, on a cache file of the test's own."""
    return private_app_settings(sandbox.url, sandbox_token, str(tmp_path / "crm.db"))
