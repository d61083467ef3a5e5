"""PipedriveClient: the Pipedrive requests the CRM interface needs, over one httpx2 client.

Every request: credentials header (``x-api-token`` for an API token, else ``Authorization:
Bearer``) -> send -> 2xx: the ``data`` of Pipedrive's envelope -> 429: wait ``Retry-After``
(else ``x-ratelimit-reset``, else a backoff step) and retry, at most ``max_retries`` times
-> other errors: crm.errors (docs/PIPEDRIVE_API.md §8: ``{"success": false, "error": …}``).
Writes (create, patch) are not retried after a timeout: Pipedrive has no idempotency key.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Self

import httpx2

from crm import tls
from crm.errors import (
    AlreadyExists,
    HubSpotError,
    NeedsReconnect,
    NotFound,
    RateLimited,
    Unreachable,
    ValidationFailed,
)
from crm.interface import TokenSource

log = logging.getLogger("crm.pipedrive")

# Neutral object type -> Pipedrive's entity (API v2 path) and singular (fields, webhooks, URLs).
ENTITIES = {"contacts": "persons", "companies": "organizations", "deals": "deals"}
SINGULAR = {"persons": "person", "organizations": "organization", "deals": "deal"}
FIELDS_PATHS = {"persons": "personFields", "organizations": "organizationFields", "deals": "dealFields"}
PAGE_LIMIT = 500
RETRY_CAP_S = 30.0
# Burst limits are per token in a 2-second window (docs/PIPEDRIVE_API.md §6).
BURST_WINDOW_S = 2.0


class Usage:
    """What one client's requests cost: sent, retried, refused for the rate limit, and the
    burst window as Pipedrive's last ``x-ratelimit-limit`` / ``x-ratelimit-remaining`` said.

    Thread-safe: a sync run's heartbeat reads it while the pull sends (``PipedriveApi``'s
    ``crm.interface.ReportsUsage``). Numbers only; no header other than those two is kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = self.retries = self.rate_limited = 0
        self._limit: int | None = None
        self._remaining: int | None = None

    def sent(self, *, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            self.retries += int(retry)

    def answered(self, status: int, headers: Mapping[str, str]) -> None:
        limit, remaining = _int(headers.get("x-ratelimit-limit")), _int(headers.get("x-ratelimit-remaining"))
        with self._lock:
            self.rate_limited += int(status == 429)
            if limit is not None and remaining is not None:
                self._limit, self._remaining = limit, remaining

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "retries": self.retries, "rate_limited": self.rate_limited}

    def gauges(self) -> dict[str, dict[str, float]]:
        with self._lock:
            if self._limit is None or self._remaining is None:
                return {}
            used = max(0, self._limit - self._remaining)
            return {"burst": {"used": used, "limit": self._limit, "window_s": BURST_WINDOW_S}}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class ApiToken:
    """A Pipedrive personal API token (the counterpart of a HubSpot private app)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.portal_key = "pipedrive-token:" + hashlib.sha256(token.encode()).hexdigest()[:16]

    def access_token(self) -> str:
        return self._token

    def refresh_after_401(self, rejected: str) -> str:
        raise NeedsReconnect("Pipedrive refused the API token (401); check it in Pipedrive's settings.")


class PipedriveClient:
    """Typed access to one Pipedrive company; thread-safe through httpx2's pool.

    Args:
        base_url: the company's API domain (``https://acme.pipedrive.com``, or a sandbox URL).
        tokens: an ``ApiToken`` (sent as ``x-api-token``) or an OAuth token source (Bearer).
    """

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        transport: httpx2.BaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
    ) -> None:
        self.tokens = tokens
        self.max_retries = max(0, max_retries)
        self.usage = Usage()
        self._http = httpx2.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=httpx2.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": "crm-dashboard/1"},
            follow_redirects=False,
            trust_env=False,
            verify=tls.context(trust_env=False),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- records (API v2) -------------------------------------------------------------

    def list_page(
        self, entity: str, *, cursor: str | None = None, limit: int = 100, **filters: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of live records and the next cursor (None on the last page)."""
        params = {"limit": str(max(1, min(limit, PAGE_LIMIT))), **filters}
        if cursor:
            params["cursor"] = cursor
        body = self._call("GET", f"/api/v2/{entity}", params=params)
        extra = body.get("additional_data") or {}
        following = extra.get("next_cursor") if isinstance(extra, dict) else None
        return list(body.get("data") or []), (str(following) if following else None)

    def iter_records(self, entity: str, **filters: str) -> Iterator[list[dict[str, Any]]]:
        """Every page of records matching ``filters`` (e.g. ``updated_since``)."""
        cursor: str | None = None
        while True:
            records, following = self.list_page(entity, cursor=cursor, limit=PAGE_LIMIT, **filters)
            yield records
            if following is None or following == cursor:
                return
            cursor = following

    def get_many(self, entity: str, ids: list[str]) -> list[dict[str, Any]]:
        """The live records with these ids (100 per request); unknown ids are left out."""
        found: list[dict[str, Any]] = []
        numeric = [i for i in dict.fromkeys(ids) if i.isdigit()]
        for start in range(0, len(numeric), 100):
            chunk = ",".join(numeric[start : start + 100])
            for page in self.iter_records(entity, ids=chunk):
                found.extend(page)
        return found

    def create(self, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        data = self._call("POST", f"/api/v2/{entity}", json=dict(body), retry=False).get("data")
        return dict(data or {})

    def update(self, entity: str, record_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        data = self._call("PATCH", f"/api/v2/{entity}/{record_id}", json=dict(body)).get("data")
        return dict(data or {})

    def search_exact(self, entity: str, term: str, field: str) -> list[dict[str, Any]]:
        """Items whose ``field`` is exactly ``term`` (e.g. a person's email)."""
        params = {"term": term, "fields": field, "exact_match": "true", "limit": "100"}
        data = self._call("GET", f"/api/v2/{entity}/search", params=params).get("data") or {}
        return [dict(i.get("item") or {}) for i in data.get("items") or []]

    # -- notes (API v1) and activities (API v2): the timeline (pdtimeline) -----------------

    def notes_page(
        self, filters: Mapping[str, str], *, start: int = 0, limit: int = PAGE_LIMIT
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of notes (v1 offset paging) and the next ``start`` (None on the last page)."""
        params = {"start": str(max(0, start)), "limit": str(max(1, min(limit, PAGE_LIMIT))), **filters}
        body = self._call("GET", "/api/v1/notes", params=params)
        extra = body.get("additional_data") or {}
        paging = extra.get("pagination") if isinstance(extra, dict) else None
        following = (
            paging.get("next_start")
            if isinstance(paging, dict) and paging.get("more_items_in_collection")
            else None
        )
        return list(body.get("data") or []), (int(following) if isinstance(following, int) else None)

    def add_note(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a note (v1); never retried (Pipedrive has no idempotency key)."""
        return dict(self._call("POST", "/api/v1/notes", json=dict(body), retry=False).get("data") or {})

    def add_activity(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an activity (v1, ``HH:MM`` times in UTC); never retried."""
        return dict(self._call("POST", "/api/v1/activities", json=dict(body), retry=False).get("data") or {})

    def note(self, note_id: str) -> dict[str, Any] | None:
        """One note (v1), or None when Pipedrive has no such note (deleted)."""
        try:
            return dict(self._call("GET", f"/api/v1/notes/{note_id}").get("data") or {}) or None
        except NotFound:
            return None

    # -- definitions (v1 fields and users; v2 pipelines and stages) ------------------------

    def fields(self, entity: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/v1/{FIELDS_PATHS[entity]}").get("data") or [])

    def create_field(self, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        data = self._call("POST", f"/api/v1/{FIELDS_PATHS[entity]}", json=dict(body), retry=False).get("data")
        return dict(data or {})

    def users(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/users").get("data") or [])

    def me(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/v1/users/me").get("data") or {})

    def pipelines(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v2/pipelines").get("data") or [])

    def stages(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v2/stages").get("data") or [])

    def add_webhook(
        self, url: str, *, user: str, password: str, action: str = "*", obj: str = "*"
    ) -> dict[str, Any]:
        """Subscribe ``url`` to events (webhooks v2, HTTP Basic credentials on every delivery)."""
        body = {
            "subscription_url": url,
            "event_action": action,
            "event_object": obj,
            "http_auth_user": user,
            "http_auth_password": password,
            "version": "2.0",
        }
        return dict(self._call("POST", "/api/v1/webhooks", json=body, retry=False).get("data") or {})

    def webhooks(self) -> list[dict[str, Any]]:
        """The company's registered webhooks (passwords masked)."""
        return list(self._call("GET", "/api/v1/webhooks").get("data") or [])

    def delete_webhook(self, webhook_id: str) -> bool:
        """Remove a webhook; False when Pipedrive has no such webhook (gone already)."""
        try:
            self._call("DELETE", f"/api/v1/webhooks/{webhook_id}")
        except NotFound:
            return False
        return True

    # -- internals ---------------------------------------------------------------------------

    def _headers(self, token: str) -> dict[str, str]:
        if isinstance(self.tokens, ApiToken):
            return {"x-api-token": token}
        return {"Authorization": f"Bearer {token}"}

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        attempt = 0
        refreshed: str | None = None
        while True:
            token = refreshed or self.tokens.access_token()
            self.usage.sent(retry=attempt > 0)
            try:
                response = self._http.request(
                    method, path, params=params, json=json, headers=self._headers(token)
                )
            except httpx2.TransportError as exc:
                never_sent = isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout))
                if (retry or never_sent) and attempt < self.max_retries:
                    attempt += 1
                    time.sleep(min(0.2 * 2**attempt, RETRY_CAP_S))
                    continue
                raise Unreachable(
                    f"Could not reach Pipedrive for {method} {path} ({type(exc).__name__})"
                ) from None
            status = response.status_code
            self.usage.answered(status, response.headers)
            if status < 300:
                try:
                    data = response.json()
                except ValueError:
                    data = {}
                return data if isinstance(data, dict) else {"data": data}
            if status == 401 and refreshed is None:
                refreshed = self.tokens.refresh_after_401(token)
                continue
            if status == 429 and attempt < self.max_retries:
                attempt += 1
                time.sleep(_wait_s(response, attempt))
                continue
            if status >= 500 and retry and attempt < self.max_retries:
                attempt += 1
                time.sleep(min(0.2 * 2**attempt, RETRY_CAP_S))
                continue
            raise _error(method, path, response)


def _wait_s(response: httpx2.Response, attempt: int) -> float:
    for name in ("retry-after", "x-ratelimit-reset"):
        value = response.headers.get(name)
        if value is not None:
            try:
                return min(max(float(value), 0.0), RETRY_CAP_S)
            except ValueError:
                pass
    return float(min(0.5 * 2**attempt, RETRY_CAP_S))


def _error(method: str, path: str, response: httpx2.Response) -> HubSpotError:
    """Pipedrive's error body as a crm.errors error (the tree's CRM errors carry any CRM's)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    text = str(body.get("error") or f"Pipedrive answered {method} {path} with HTTP {response.status_code}")
    status = response.status_code
    if status == 401:
        raise NeedsReconnect(f"Pipedrive refused the credentials: {text}")
    if status == 404:
        return NotFound(text, status_code=404, body=body)
    if status == 409:
        return AlreadyExists(text, status_code=409, body=body)
    if status == 429:
        return RateLimited(text, retry_after=_wait_s(response, 0), body=body)
    if status == 400:
        return ValidationFailed(text, status_code=400, body=body)
    return HubSpotError(text, status_code=status, body=body)
