"""The sandbox-only admin API under ``/_sandbox/``, and ``SandboxAdmin``, its Python client.

Routes (no auth; loopback only by intent):

    POST  /_sandbox/reset                           re-seed: seed, contacts, companies, deals, owners;
                                                    tokens/webhooks/config true also resets those
    POST  /_sandbox/config                          change any SandboxConfig field; unknown keys 400
    GET   /_sandbox/config                          the current SandboxConfig (client secret left out)
    POST  /_sandbox/fail-next                       the next N matching requests fail: status or "drop"
    PATCH /_sandbox/objects/{objectType}/{id}       edit as if in HubSpot's UI (changeSource CRM_UI)
    POST  /_sandbox/objects/{objectType}/{id}/archive   archive as if in HubSpot's UI
    GET   /_sandbox/stats                           requests per method and route, responses per status
    GET   /_sandbox/truth/{objectType}              every record, archived too, with associations

The OAuth side adds its own routes (private-app token, codes, tokens, webhooks) in
``crm.sandbox.oauth.routes`` and ``crm.sandbox.webhooks``; the client below covers both.
"""

from __future__ import annotations

from typing import Any

import httpx2


class SandboxAdmin:
    """A small synchronous client for the admin API, used by tests and benchmarks.

    Every method raises ``httpx2.HTTPStatusError`` when the sandbox refuses the call.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx2.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def reset(self, **options: Any) -> dict[str, Any]:
        """Re-seed the portal, e.g. ``reset(seed=7, contacts=40, companies=0)``.

        Also accepts ``tokens=True``, ``webhooks=True`` and ``config=True`` (restore the
        settings the server started with: latency, faults, limits, webhook URL, ...).
        Returns the record counts now in the portal.
        """
        result: dict[str, Any] = self._call("POST", "/_sandbox/reset", options)
        return result

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change sandbox settings (any ``SandboxConfig`` field); returns the new settings."""
        result: dict[str, Any] = self._call("POST", "/_sandbox/config", changes)
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sandbox/config")
        return result

    def fail_next(self, path: str, *, status: int | str = 500, count: int = 1, method: str | None = None) -> None:
        """Make the next ``count`` requests whose path starts with ``path`` fail.

        ``status`` is an HTTP status (429 comes with HubSpot's rate-limit body) or ``"drop"``
        (the connection is closed without a response).
        """
        self._call("POST", "/_sandbox/fail-next", {"path": path, "status": status, "count": count, "method": method})

    def private_app_token(self, scopes: list[str] | None = None) -> str:
        """Mint a private-app access token; all scopes unless ``scopes`` is given."""
        body = {} if scopes is None else {"scopes": scopes}
        result = self._call("POST", "/_sandbox/private-app-token", body)
        if isinstance(result, str):
            return result
        return str(result.get("access_token") or result["token"])

    def oauth_code(self, **options: Any) -> dict[str, Any]:
        """Mint an authorization code without the consent page (see the OAuth routes)."""
        result: dict[str, Any] = self._call("POST", "/_sandbox/oauth/code", options)
        return result

    def patch_object(self, object_type: str, object_id: str | int, properties: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a person in HubSpot's UI would: last-modified moves, webhooks fire."""
        result: dict[str, Any] = self._call(
            "PATCH", f"/_sandbox/objects/{object_type}/{object_id}", {"properties": properties}
        )
        return result

    def archive_object(self, object_type: str, object_id: str | int) -> None:
        self._call("POST", f"/_sandbox/objects/{object_type}/{object_id}/archive")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sandbox/stats")
        return result

    def truth(self, object_type: str) -> list[dict[str, Any]]:
        """Every record of the type, archived ones too, with all properties and associations."""
        result: dict[str, Any] = self._call("GET", f"/_sandbox/truth/{object_type}")
        records: list[dict[str, Any]] = result["results"]
        return records

    def tokens(self) -> Any:
        return self._call("GET", "/_sandbox/tokens")

    def webhooks(self) -> Any:
        return self._call("GET", "/_sandbox/webhooks")
