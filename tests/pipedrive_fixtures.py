"""The Pipedrive sandbox for tests: a server per company shape, and the company reset per test.

Each test directory keeps its own company shape (sizes, seed) and fixture names; these two
generators are what every one of those fixtures does::

    @pytest.fixture(scope="session")
    def pipedrive_server():
        yield from serve_company(COMPANY)

    @pytest.fixture
    def pipedrive(pipedrive_server):
        yield from reset_company(pipedrive_server, COMPANY)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from crm.sandbox.pipedrive import PipedriveConfig, PipedriveServer, serve
from crm.sandbox.pipedrive.admin import PipedriveAdmin


def serve_company(company: Mapping[str, Any], **config: Any) -> Iterator[PipedriveServer]:
    """A Pipedrive sandbox on a loopback port seeded with ``company``, stopped after."""
    server = serve(PipedriveConfig(**company, **config))
    try:
        yield server
    finally:
        server.stop()


def reset_company(
    server: PipedriveServer, company: Mapping[str, Any], *, config: bool = True
) -> Iterator[PipedriveAdmin]:
    """The sandbox reset to ``company``: its tokens, webhooks and (``config``) settings too."""
    with PipedriveAdmin(server.url) as admin:
        admin.reset(**company, tokens=True, webhooks=True, **({"config": True} if config else {}))
        yield admin
