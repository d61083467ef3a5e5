"""Fixtures for the Pipedrive sandbox tests, all over real loopback HTTP.

- ``pipedrive_server`` (session): one Pipedrive sandbox on a pre-bound 127.0.0.1 port.
- ``pipedrive`` (per test): a ``PipedriveAdmin`` on a freshly reset small company (seed 7:
  40 persons, 10 organizations, 15 deals, 4 users) with the starting settings, no tokens
  and no webhooks.
- ``api`` (per test): an ``httpx2.Client`` at the sandbox carrying a fresh API token in
  ``x-api-token``, as Pipedrive's official client sends it.
- ``hooks`` (per test): a loopback receiver recording every webhook POST.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.pipedrive_fixtures import reset_company, serve_company

SMALL_COMPANY = {"seed": 7, "persons": 40, "organizations": 10, "deals": 15, "users": 4}


@pytest.fixture(scope="session")
def pipedrive_server() -> Iterator[PipedriveServer]:
    yield from serve_company(SMALL_COMPANY)


@pytest.fixture
def pipedrive(pipedrive_server: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(pipedrive_server, SMALL_COMPANY)


@pytest.fixture
def api(pipedrive: PipedriveAdmin) -> Iterator[httpx2.Client]:
    headers = {"x-api-token": pipedrive.api_token()}
    with httpx2.Client(base_url=pipedrive.url, headers=headers, trust_env=False, timeout=10) as client:
        yield client


class Hooks:
    """Records every POST to ``/hooks``; answers each with the next scripted status, then 200."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []
        self.url = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.cond:
            self.requests.append({"headers": dict(request.headers), "body": body})
            status = self.script.pop(0) if self.script else 200
            self.cond.notify_all()
        return Response(status_code=status)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"expected {count} deliveries, got {len(self.requests)}"
                self.cond.wait(remaining)
            return list(self.requests)


async def _callback(request: Request) -> Response:
    """Stands in for the app's OAuth callback: names the parameters it got."""
    return PlainTextResponse("callback: " + " ".join(sorted(request.query_params.keys())))


@pytest.fixture(scope="session")
def hooks_server() -> Iterator[Hooks]:
    hooks = Hooks()
    app = Starlette(routes=[Route("/hooks", hooks.handle, methods=["POST"]),
                            Route("/pipedrive/callback", _callback, methods=["GET"])])  # fmt: skip
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    hooks.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    try:
        yield hooks
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def hooks(hooks_server: Hooks) -> Hooks:
    with hooks_server.cond:
        hooks_server.requests.clear()
        hooks_server.script.clear()
    return hooks_server
