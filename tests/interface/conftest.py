"""Fixtures of the CRM conformance suite: ``crm`` is a ``Harness`` per CRM implementation.

``crm`` is parametrised by CRM name; each parameter builds its own sandbox fixtures lazily,
so a CRM's sandbox starts only for its own tests. Add a CRM: a Harness subclass in
crm_harness.py and its name in ``CRMS``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from crm.hubspot import reset_limits
from crm.sandbox import base_url, bind_socket, uvicorn_config
from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.interface.crm_harness import Harness, HubSpotHarness, PipedriveHarness, Receiver
from tests.pipedrive_fixtures import reset_company, serve_company

CRMS = ("hubspot", "pipedrive")
SMALL_COMPANY = {"seed": 7, "persons": 40, "organizations": 10, "deals": 15, "users": 4}


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    sock = bind_socket()
    app = Starlette(routes=[Route("/hooks", hooks.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    hooks.url = base_url(sock) + "/hooks"
    try:
        yield hooks
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture(scope="session")
def conformance_pipedrive() -> Iterator[PipedriveServer]:
    yield from serve_company(SMALL_COMPANY)


@pytest.fixture
def pipedrive_company(conformance_pipedrive: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(conformance_pipedrive, SMALL_COMPANY)


@pytest.fixture(params=CRMS)
def crm(request: pytest.FixtureRequest, receiver: Receiver, tmp_path: Path) -> Iterator[Harness]:
    reset_limits()
    if request.param == "hubspot":
        harness: Harness = HubSpotHarness(request.getfixturevalue("sandbox"), receiver, tmp_path)
    elif request.param == "pipedrive":
        harness = PipedriveHarness(request.getfixturevalue("pipedrive_company"), receiver, tmp_path)
    else:  # pragma: no cover - a name in CRMS without a harness
        raise AssertionError(f"no harness for {request.param}")
    try:
        yield harness
    finally:
        harness.close()
        reset_limits()
