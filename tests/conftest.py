"""Fixtures shared by every test directory.

- ``sandbox_server`` (session): one embedded HubSpot sandbox on a pre-bound 127.0.0.1 port,
  served by uvicorn in a daemon thread; early requests wait in the listen backlog.
- ``sandbox_url`` (session): its base URL, e.g. ``http://127.0.0.1:40123``.
- ``sandbox`` (per test): a ``SandboxAdmin`` on a freshly reset small portal (seed 7: 40
  contacts, 10 companies, 15 deals, 4 owners, 12 tickets, 40 engagements, 6 threads), with the settings the server started with
  (no latency, no faults, default limits), no tokens and no recorded webhooks.
- ``sandbox_token`` (per test): a private-app token carrying every scope.
- ``two_portal_server`` (session) and ``two_portals`` (per test): another sandbox serving
  portals 101 (the default) and 202, each reset to the small portal as ``sandbox`` is.
- ``pg_cluster``, ``pg_url``, ``pg_migrated_template``, ``pg_migrated_url``: a throwaway
  PostgreSQL server for the session and a database per test; ``cache_target``: each
  backend in turn, a SQLite path then a PostgreSQL URL (tests/pgcluster.py); ``another_cache``:
  more caches on the same backend.
- ``synced_copies`` (session): caches synced once and copied per test (tests/synced_copies.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from crm.sandbox import SandboxServer, serve
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import SandboxConfig
from tests.pgcluster import (  # noqa: F401  (fixtures for every directory)
    another_cache,
    cache_target,
    pg_cluster,
    pg_migrated_template,
    pg_migrated_url,
    pg_url,
)
from tests.synced_copies import synced_copies  # noqa: F401  (caches synced once, copied per test)

# Under pytest-xdist the tests are handed out in collection order, one at a time to whichever
# worker is free. The long ones (browsers, ``streamlit run`` processes, big seeds: tens of
# seconds each), then the AppTest and benchmark ones (seconds each), go first, so the run
# ends on short tests spread over every worker, not on one long test while the others idle.
HEAVY_MARKERS = ("slow", "e2e")
HEAVY_PATHS = ("tests/e2e/", "tests/multiprocess/", "tests/sync/test_crash.py", "tests/ui/test_resources.py")
MEDIUM_DIRS = ("tests/ui/", "tests/bench/", "tests/sandbox_oauth/", "tests/live/")


def _weight(item: pytest.Item) -> int:
    """0 for the long tests, 1 for the medium ones, 2 for the rest (see HEAVY_MARKERS)."""
    if item.nodeid.startswith(HEAVY_PATHS) or any(item.get_closest_marker(m) for m in HEAVY_MARKERS):
        return 0
    return 1 if item.nodeid.startswith(MEDIUM_DIRS) else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist: put the long tests first (see above). A run in one process keeps
    pytest's order.

    (pytest-xdist's ``--dist loadgroup`` would keep a module's tests that share one
    ``streamlit run`` app on one worker, but xdist 3.8 marks the group by rewriting
    ``item._nodeid``, which pytest 9 no longer reads: the groups come out empty. So a module's
    browser tests may start its app once per worker they land on; the benchmark smoke test
    shares its one run across workers instead, tests/bench/test_bench_smoke.py.)
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    items.sort(key=_weight)


SMALL_PORTAL = {
    "seed": 7,
    "contacts": 40,
    "companies": 10,
    "deals": 15,
    "owners": 4,
    "tickets": 12,
    "engagements": 40,
    "threads": 6,
}


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = serve(SandboxConfig(**SMALL_PORTAL))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sandbox_url(sandbox_server: SandboxServer) -> str:
    return sandbox_server.url


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxAdmin]:
    with SandboxAdmin(sandbox_server.url) as admin:
        admin.reset(**SMALL_PORTAL, tokens=True, webhooks=True, config=True)
        yield admin


@pytest.fixture
def sandbox_token(sandbox: SandboxAdmin) -> str:
    return sandbox.private_app_token()


TWO_PORTALS = (101, 202)


@pytest.fixture(scope="session")
def two_portal_server() -> Iterator[SandboxServer]:
    server = serve(SandboxConfig(**SMALL_PORTAL, portal_id=TWO_PORTALS[0], extra_portal_ids=TWO_PORTALS[1:]))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def two_portals(two_portal_server: SandboxServer) -> Iterator[SandboxAdmin]:
    with SandboxAdmin(two_portal_server.url) as admin:
        for portal_id in TWO_PORTALS:
            admin.reset(**SMALL_PORTAL, tokens=True, webhooks=True, config=True, portal_id=portal_id)
        yield admin
