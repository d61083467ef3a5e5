"""Deliveries as HubSpot makes them: events, bodies, v3-signed headers; settings and a route app."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from crm import webhooks
from crm.config import Settings, load_settings
from ui.webhook_route import hubspot_webhook

SECRET = "webhook-test-secret"
PUBLIC_URL = "https://crm.example.com/hubspot/webhook"
PORTAL_ID = 62515


def now_ms() -> int:
    return int(time.time() * 1000)


def sign(
    settings: Settings,
    body: bytes,
    *,
    method: str = "POST",
    uri: str | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    """Headers for ``body`` signed the way HubSpot signs a v3 delivery."""
    ts = str(now_ms() if timestamp is None else timestamp)
    signature = webhooks.signature_v3(
        client_secret=settings.client_secret if secret is None else secret,
        method=method,
        uri=settings.webhook_url if uri is None else uri,
        body=body,
        timestamp=ts,
    )
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": ts,
    }


def event(
    event_id: int, object_id: int, subscription_type: str = "contact.propertyChange", **extra: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": 25,
        "portalId": PORTAL_ID,
        "appId": 54321,
        "occurredAt": now_ms(),
        "subscriptionType": subscription_type,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM_UI",
    }
    if subscription_type.endswith("propertyChange"):
        base.update(propertyName="firstname", propertyValue="Ada")
    base.update(extra)
    return base


def body_of(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(tmp_path: Path, **overrides: str) -> Settings:
    """OAuth-mode settings for a portal never connected: processing fails at once with
    NotConnected instead of calling anyone, and HubSpot is a closed loopback port anyway.
    Pass HUBSPOT_ACCESS_TOKEN and HUBSPOT_BASE_URL to point them at the sandbox instead."""
    env = {
        "HUBSPOT_CLIENT_ID": "webhook-test-app",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "CRM_SECRET_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "HUBSPOT_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "HUBSPOT_WEBHOOK_URL": PUBLIC_URL,
        "CRM_DB": str(tmp_path / "crm.db"),
    }
    env.update(overrides)
    return load_settings({k: v for k, v in env.items() if v}, {})


def route_app(settings: Settings) -> Starlette:
    app = Starlette(routes=[Route("/hubspot/webhook", hubspot_webhook, methods=["POST"])])
    app.state.settings = settings
    return app


def wait_until(condition: Callable[[], bool], *, within: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        time.sleep(interval)
