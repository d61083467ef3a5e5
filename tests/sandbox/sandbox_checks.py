"""Assertions shared by the sandbox tests."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator

import httpx2

from crm.sandbox.admin import SandboxAdmin


def assert_crm_error(response: httpx2.Response, status: int, category: str | None = None) -> dict:
    """The response is HubSpot's CRM error dialect with the given status (and category)."""
    assert response.status_code == status, response.text
    body = response.json()
    for field in ("status", "message", "correlationId", "category"):
        assert body.get(field), f"{field} missing from {body}"
    assert body["status"] == "error"
    assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    if category is not None:
        assert body["category"] == category, body
    return body


class WebhookInbox:
    """What a loopback webhook receiver got: one JSON array of events per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], list[dict]]] = []
        self.lock = threading.Lock()

    @property
    def events(self) -> list[dict]:
        with self.lock:
            return [event for _, batch in self.requests for event in batch]


@contextlib.contextmanager
def receive_webhooks(admin: SandboxAdmin) -> Iterator[WebhookInbox]:
    """A receiver on 127.0.0.1, answering 204, set as the sandbox's webhook URL (every portal's)."""
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
    admin.configure(webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hubspot/webhook")
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()


def walk_pages(api: httpx2.Client, path: str, **params: str) -> list[dict]:
    """Every result of a list endpoint, following ``paging.next.after`` until a page has no ``paging``."""
    results: list[dict] = []
    after = None
    while True:
        response = api.get(path, params={**params, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        results += body["results"]
        if "paging" not in body:
            return results
        after = body["paging"]["next"]["after"]
