"""The real route under uvicorn on 127.0.0.1, with the sandbox delivering to it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn

from crm import store, webhooks
from crm.config import Settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_SECRET
from tests.webhooks.deliveries import body_of, event, make_settings, route_app, sign, wait_until


@pytest.fixture
def receiver(
    sandbox: SandboxAdmin, sandbox_token: str, tmp_path: Path, cache_target: str
) -> Iterator[Settings]:
    """The webhook route served by uvicorn; the sandbox delivers to its public URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hubspot/webhook"
    settings = make_settings(
        tmp_path,
        CRM_DB=cache_target,
        HUBSPOT_ACCESS_TOKEN=sandbox_token,
        HUBSPOT_BASE_URL=sandbox.url,
        HUBSPOT_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        HUBSPOT_WEBHOOK_URL=url,
    )
    server = uvicorn.Server(uvicorn.Config(route_app(settings), log_level="warning", lifespan="off"))
    # The socket is listening before the thread starts: early requests wait in the backlog.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    sandbox.configure(webhook_url=url)
    try:
        yield settings
    finally:
        sandbox.configure(webhook_url="")
        server.should_exit = True
        thread.join(10)
        sock.close()
        webhooks.stop_worker(settings)


def cached(settings: Settings, object_type: str, record_id: str) -> dict[str, Any]:
    db = store.open(settings)
    try:
        return db.queries.get_record(object_type, record_id) or {}
    finally:
        db.close()


def test_edit_in_hubspot_reaches_the_cache_with_no_sync(sandbox: SandboxAdmin, receiver: Settings) -> None:
    contact = sorted((r["id"] for r in sandbox.truth("contacts")), key=int)[3]
    sandbox.patch_object("contacts", contact, {"firstname": "Wilhelmina", "jobtitle": "Navigator"})
    wait_until(lambda: cached(receiver, "contacts", contact).get("firstname") == "Wilhelmina", within=10)
    assert cached(receiver, "contacts", contact)["jobtitle"] == "Navigator"
    deliveries = sandbox.webhooks()
    deliveries = deliveries.get("deliveries", deliveries) if isinstance(deliveries, dict) else deliveries
    assert deliveries and all(d["status"] == 204 for d in deliveries)
    status = webhooks.live_status(receiver)
    assert status["enabled"] and status["rejected"] == {}


def test_forged_webhook_changes_nothing(sandbox: SandboxAdmin, receiver: Settings) -> None:
    contact, later = sorted((r["id"] for r in sandbox.truth("contacts")), key=int)[4:6]
    sandbox.patch_object("contacts", contact, {"firstname": "Genuine"})
    wait_until(lambda: cached(receiver, "contacts", contact).get("firstname") == "Genuine", within=10)
    # The forger knows the URL, not the secret, and names a record HubSpot really changed
    # (delivery switched off meanwhile), so a read-back would show if the event got in.
    sandbox.configure(webhook_url="")
    sandbox.patch_object("contacts", contact, {"firstname": "Changed silently"})
    received = webhooks.live_status(receiver)["received"]
    body = body_of(event(999_999, int(contact)))
    forged = sign(receiver, body, secret="not-the-app-secret")
    response = httpx2.post(receiver.webhook_url, content=body, headers=forged, timeout=5)
    assert response.status_code == 401
    status = webhooks.live_status(receiver)
    assert status["rejected"] == {"bad_signature": 1}
    assert status["received"] == received
    # A genuine delivery after the forged one: once it is applied, anything queued before it would be too.
    sandbox.configure(webhook_url=receiver.webhook_url)
    sandbox.patch_object("contacts", later, {"firstname": "Afterwards"})
    wait_until(lambda: cached(receiver, "contacts", later).get("firstname") == "Afterwards", within=10)
    assert cached(receiver, "contacts", contact)["firstname"] == "Genuine"
