"""Fixtures for the sandbox's own tests: an authenticated HTTP client on loopback."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import httpx2
import pytest
from sandbox_checks import WebhookInbox

from crm.sandbox.admin import SandboxAdmin


@pytest.fixture
def api(sandbox: SandboxAdmin, sandbox_token: str) -> Iterator[httpx2.Client]:
    """A client for the sandbox's HubSpot API, carrying a token with every scope."""
    with httpx2.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox_token}"}, timeout=30) as client:
        yield client



@pytest.fixture
def webhook_inbox(sandbox: SandboxAdmin) -> Iterator[WebhookInbox]:
    """A receiver on 127.0.0.1 that the sandbox delivers webhooks to; answers 204."""
    inbox = WebhookInbox()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with inbox.lock:
                inbox.requests.append((dict(self.headers), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sandbox.configure(webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hubspot/webhook")
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()
