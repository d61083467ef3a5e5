"""What the conformance suite needs to know about one CRM's sandbox, beside the interface itself.

The suite (test_conformance.py) only talks to a ``Harness``: the provider under test, a
connected API, and the sandbox's own view of the truth (its admin API, never the
implementation being checked). A second CRM joins the suite with one more ``Harness``
class and one more parameter in conftest.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from crm.config import load_settings
from crm.crms import provider_for
from crm.hubspot import StaticToken
from crm.interface import Crm, CrmApi, WebhookRequest
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_SECRET


class Receiver:
    """A loopback endpoint that keeps every POST it gets: the CRM's real webhook deliveries."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.requests: list[WebhookRequest] = []
        self.url = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.cond:
            self.requests.append(
                WebhookRequest(method=request.method, uri=self.url, headers=dict(request.headers), body=body)
            )
            self.cond.notify_all()
        return Response(status_code=204)

    def clear(self) -> None:
        with self.cond:
            self.requests.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[WebhookRequest]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"expected {count} deliveries, got {len(self.requests)}"
                self.cond.wait(remaining)
            return list(self.requests)


@dataclass
class Harness:
    """One CRM under test: its provider, a connected API and its sandbox's truth."""

    name: str
    provider: Crm
    api: CrmApi
    account_id: str
    ui_host: str
    owner_count: int
    # Property names of the neutral contact the suite creates and edits.
    key: str = "email"
    first_name: str = "firstname"
    extra: dict[str, Any] = field(default_factory=dict)

    def truth(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Every record the sandbox holds: id -> {properties, updated_at, archived, links}."""
        raise NotImplementedError

    def touch(self, object_type: str, record_id: str, values: dict[str, str]) -> None:
        """Change a record as a person in the CRM's own UI would."""
        raise NotImplementedError

    def delivery(
        self, object_type: str, record_id: str, values: dict[str, str]
    ) -> tuple[WebhookRequest, str]:
        """Touch a record with webhooks on; the delivery the CRM sent, and the secret it used."""
        raise NotImplementedError

    def expected_record_url(self, object_type: str, record_id: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self.api.close()


class HubSpotHarness(Harness):
    """The HubSpot sandbox (tests/conftest.py's ``sandbox``) through a private-app token."""

    def __init__(self, admin: SandboxAdmin, receiver: Receiver, tmp_path: Path) -> None:
        token = admin.private_app_token()
        settings = load_settings(
            {
                "HUBSPOT_ACCESS_TOKEN": token,
                "HUBSPOT_BASE_URL": admin.url,
                "CRM_DB": str(tmp_path / "crm.db"),
            },
            {},
        )
        provider = provider_for("hubspot")
        config = admin.config()
        super().__init__(
            name="hubspot",
            provider=provider,
            api=provider.open(settings, StaticToken(token)),
            account_id=str(config["portal_id"]),
            ui_host=str(config["ui_domain"]),
            owner_count=int(config["owners"]),
        )
        self.admin = admin
        self.receiver = receiver

    def truth(self, object_type: str) -> dict[str, dict[str, Any]]:
        return {
            item["id"]: {
                "properties": item["properties"],
                "updated_at": item["updatedAt"],
                "archived": item["archived"],
                "links": {
                    t: {str(x["id"]) for x in xs} for t, xs in (item.get("associations") or {}).items()
                },
            }
            for item in self.admin.truth(object_type)
        }

    def touch(self, object_type: str, record_id: str, values: dict[str, str]) -> None:
        self.admin.patch_object(object_type, record_id, values)

    def delivery(
        self, object_type: str, record_id: str, values: dict[str, str]
    ) -> tuple[WebhookRequest, str]:
        self.receiver.clear()
        self.admin.configure(webhook_url=self.receiver.url, webhook_batch_ms=0)
        self.touch(object_type, record_id, values)
        assert self.admin.flush_webhooks()
        return self.receiver.wait_for(1)[0], DEFAULT_CLIENT_SECRET

    def expected_record_url(self, object_type: str, record_id: str) -> str:
        type_id = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}[object_type]
        return f"https://{self.ui_host}/contacts/{self.account_id}/record/{type_id}/{record_id}"
