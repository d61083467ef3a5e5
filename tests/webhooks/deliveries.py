"""Deliveries as HubSpot makes them: events, bodies, v3-signed headers; settings and a route app."""

from __future__ import annotations

import json
import socket
import time
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


def sign(settings: Settings, body: bytes, *, method: str = "POST", uri: str | None = None,
         timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
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


def event(event_id: int, object_id: int, subscription_type: str = "contact.propertyChange",
          **extra: Any) -> dict[str, Any]:
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
    env = {
        "HUBSPOT_ACCESS_TOKEN": "pat-na1-not-a-real-token",
        "HUBSPOT_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "HUBSPOT_WEBHOOK_URL": PUBLIC_URL,
        "CRM_DB": str(tmp_path / "crm.db"),
    }
    env.update(overrides)
    return load_settings({k: v for k, v in env.items() if v}, {})


def route_app(settings: Settings) -> Starlette:
    app = Starlette(routes=[Route("/hubspot/webhook", hubspot_webhook, methods=["POST"])])
    app.state.settings = settings
    return app
