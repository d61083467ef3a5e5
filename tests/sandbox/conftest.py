"""Fixtures for the sandbox's own tests: an authenticated HTTP client on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from sandbox_checks import WebhookInbox, receive_webhooks

from crm.sandbox.admin import SandboxAdmin


@pytest.fixture
def api(sandbox: SandboxAdmin, sandbox_token: str) -> Iterator[httpx2.Client]:
    """A client for the sandbox's HubSpot API, carrying a token with every scope."""
    with httpx2.Client(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox_token}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def webhook_inbox(sandbox: SandboxAdmin) -> Iterator[WebhookInbox]:
    """A receiver on 127.0.0.1 that the sandbox delivers webhooks to; answers 204."""
    with receive_webhooks(sandbox) as inbox:
        yield inbox
