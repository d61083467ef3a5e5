"""Assertions shared by the sandbox tests."""

from __future__ import annotations

import threading

import httpx2


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
