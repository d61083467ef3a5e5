"""Fixtures for the OAuth and webhook tests: a stand-in app on loopback.

``receiver`` is a Starlette app under uvicorn on a pre-bound 127.0.0.1 port (one per session),
cleared before each test. It records every POST to ``/hooks`` (webhooks) and answers from a
script; ``GET /hubspot/callback`` plays the app's OAuth callback for browser tests.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


class Receiver:
    """Records every POST; answers from a script of (status, headers, hold_seconds), then 200."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict[str, str], float]] = []
        self.url = ""

    def clear(self) -> None:
        with self.cond:
            self.requests.clear()
            self.script.clear()

    def answer(self, *answers: int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], float]) -> None:
        with self.cond:
            for item in answers:
                if isinstance(item, int):
                    item = (item, {})
                status, headers, *hold = item
                self.script.append((status, headers, hold[0] if hold else 0.0))

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.cond:
            seen = {"headers": dict(request.headers), "body": body, "at": time.monotonic()}
            self.requests.append(seen)
            status, headers, hold = self.script.pop(0) if self.script else (200, {}, 0.0)
            self.cond.notify_all()
        if hold:
            await asyncio.sleep(hold)
        return Response(status_code=status, headers=headers)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"expected {count} deliveries, got {len(self.requests)}"
                self.cond.wait(remaining)
            return list(self.requests)


async def answer_callback(request: Request) -> Response:
    """Stands in for the app's OAuth callback: names the parameters it got, never their values."""
    return PlainTextResponse("callback received: " + " ".join(sorted(request.query_params.keys())))


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(
        routes=[
            Route("/hooks", receiver.handle, methods=["POST"]),
            Route("/hubspot/callback", answer_callback, methods=["GET"]),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.clear()
    return receiver_server
