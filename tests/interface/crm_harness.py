"""What the conformance suite needs to know about one CRM's sandbox, beside the interface itself.

The suite (test_conformance.py) only talks to a ``Harness``: the provider under test, a
connected API, and the sandbox's own view of the truth (its admin API, never the
implementation being checked). A second CRM joins the suite with one more ``Harness``
class and one more parameter in conftest.py.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from crm.config import Settings, load_settings
from crm.crms import provider_for
from crm.errors import NeedsReconnect
from crm.hubspot import StaticToken
from crm.interface import Crm, CrmApi, WebhookRequest
from crm.pipedrive.client import ENTITIES, ApiToken
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_SECRET
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sandbox.pipedrive.config import DEFAULT_CLIENT_ID as PIPEDRIVE_CLIENT_ID
from crm.sandbox.pipedrive.config import DEFAULT_CLIENT_SECRET as PIPEDRIVE_CLIENT_SECRET
from crm.sandbox.pipedrive.config import DEFAULT_REDIRECT_URIS as PIPEDRIVE_REDIRECT_URIS


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


class Bearer:
    """An OAuth access token as a TokenSource (the grant under test, nothing stored)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.portal_key = "conformance-bearer"

    def access_token(self) -> str:
        return self.token

    def refresh_after_401(self, rejected: str) -> str:
        raise NeedsReconnect("the test's bearer token was refused")


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

    def oauth(self) -> tuple[Settings, str]:
        """Settings for the CRM's OAuth app at the sandbox, and a fresh authorization code."""
        raise NotImplementedError

    def tighten_burst(self, limit: int, window_s: float) -> None:
        """Make the sandbox allow only ``limit`` requests per ``window_s`` for this token."""
        raise NotImplementedError

    def touch(self, object_type: str, record_id: str, values: dict[str, str]) -> None:
        """Change a record as a person in the CRM's own UI would."""
        raise NotImplementedError

    def delivery(
        self, object_type: str, record_id: str, values: dict[str, str]
    ) -> tuple[WebhookRequest, str]:
        """Touch a record with webhooks on; the delivery the CRM sent, and the secret it used."""
        raise NotImplementedError

    def forge(self, request: WebhookRequest) -> WebhookRequest:
        """The delivery as a forger could make it, without the CRM's secret."""
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
        self.settings = settings

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

    def tighten_burst(self, limit: int, window_s: float) -> None:
        self.admin.configure(burst_limit=limit, burst_window_s=window_s)

    def oauth(self) -> tuple[Settings, str]:
        settings = self.settings.for_sandbox(self.admin.url)
        code = self.admin.oauth_code(
            client_id=settings.client_id, redirect_uri=settings.redirect_uri, scopes=list(settings.scopes)
        )["code"]
        return settings, str(code)

    def delivery(
        self, object_type: str, record_id: str, values: dict[str, str]
    ) -> tuple[WebhookRequest, str]:
        self.receiver.clear()
        self.admin.configure(webhook_url=self.receiver.url, webhook_batch_ms=0)
        self.touch(object_type, record_id, values)
        assert self.admin.flush_webhooks()
        return self.receiver.wait_for(1)[0], DEFAULT_CLIENT_SECRET

    def forge(self, request: WebhookRequest) -> WebhookRequest:
        # The headers are a real signature, of another body.
        body = request.body.replace(b"Hooked", b"Hacked")
        assert body != request.body
        return WebhookRequest(request.method, request.uri, request.headers, body)

    def expected_record_url(self, object_type: str, record_id: str) -> str:
        type_id = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}[object_type]
        return f"https://{self.ui_host}/contacts/{self.account_id}/record/{type_id}/{record_id}"


class PipedriveHarness(Harness):
    """The Pipedrive sandbox through an API token."""

    HOOK_USER, HOOK_PASSWORD = "hooks", "conformance-secret"

    def __init__(self, admin: PipedriveAdmin, receiver: Receiver, tmp_path: Path) -> None:
        token = admin.api_token()
        settings = load_settings({"HUBSPOT_ACCESS_TOKEN": "unused", "CRM_DB": str(tmp_path / "crm.db")}, {})
        provider = provider_for("pipedrive")
        config = admin.config()
        super().__init__(
            name="pipedrive",
            provider=provider,
            api=provider.open(settings, ApiToken(token), base_url=admin.url),
            account_id=str(config["company_id"]),
            ui_host=f"{config['company_domain']}.pipedrive.com",
            owner_count=int(config["users"]),
            key="email",
            first_name="first_name",
        )
        self.admin = admin
        self.receiver = receiver
        self.tmp_path = tmp_path

    def truth(self, object_type: str) -> dict[str, dict[str, Any]]:
        found = {}
        for item in self.admin.truth(ENTITIES[object_type]):
            properties = {
                k: (None if v is None else str(v)) for k, v in item.items() if not isinstance(v, dict | list)
            }
            emails = [e["value"] for e in item.get("emails") or [] if e.get("primary")]
            properties["email"] = emails[0] if emails else None
            links = {"companies": {str(item["org_id"])} if item.get("org_id") else set()}
            if item.get("person_id"):
                links["contacts"] = {str(item["person_id"])}
            found[str(item["id"])] = {
                "properties": properties,
                "updated_at": item["update_time"],
                "archived": bool(item.get("is_deleted")),
                "links": links,
            }
        return found

    def touch(self, object_type: str, record_id: str, values: dict[str, str]) -> None:
        self.admin.patch_object(ENTITIES[object_type], int(record_id), values)

    def tighten_burst(self, limit: int, window_s: float) -> None:
        self.admin.configure(api_token_burst=limit, burst_window_s=window_s)

    def oauth(self) -> tuple[Settings, str]:
        settings = load_settings(
            {
                "HUBSPOT_ACCESS_TOKEN": "unused",
                "CRM_DB": str(self.tmp_path / "crm.db"),
                "PIPEDRIVE_CLIENT_ID": PIPEDRIVE_CLIENT_ID,
                "PIPEDRIVE_CLIENT_SECRET": PIPEDRIVE_CLIENT_SECRET,
                "PIPEDRIVE_OAUTH_URL": self.admin.url,
                "PIPEDRIVE_REDIRECT_URI": PIPEDRIVE_REDIRECT_URIS[0],
            },
            {},
        )
        return settings, str(self.admin.oauth_code(redirect_uri=settings.pipedrive_redirect_uri)["code"])

    def delivery(
        self, object_type: str, record_id: str, values: dict[str, str]
    ) -> tuple[WebhookRequest, str]:
        self.receiver.clear()
        client = self.api.client  # type: ignore[attr-defined]
        client.add_webhook(self.receiver.url, user=self.HOOK_USER, password=self.HOOK_PASSWORD)
        self.touch(object_type, record_id, values)
        self.admin.flush_webhooks()
        return self.receiver.wait_for(1)[0], f"{self.HOOK_USER}:{self.HOOK_PASSWORD}"

    def forge(self, request: WebhookRequest) -> WebhookRequest:
        # Pipedrive signs nothing: a forger's delivery is the same body with guessed credentials.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        headers["authorization"] = "Basic " + base64.b64encode(b"hooks:guess").decode()
        return WebhookRequest(request.method, request.uri, headers, request.body)

    def expected_record_url(self, object_type: str, record_id: str) -> str:
        singular = {"contacts": "person", "companies": "organization", "deals": "deal"}[object_type]
        return f"https://{self.ui_host}/{singular}/{record_id}"
