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
    POST  /_sandbox/conversations/threads           a visitor writes in: a new thread (see conversations.py)
    GET   /_sandbox/conversations/threads           every thread, archived too, with its messages
    GET   /_sandbox/portals                         every portal served, the default first

Each route acts on one portal: ``?portal_id=`` (or ``"portal_id"`` in a JSON body) names it,
the default portal otherwise; an unknown portal gets 404. ``POST /_sandbox/config`` changes
shared settings in every portal and ``hub_domain`` in the named one only; there a
``"portal_id"`` in the body is the setting: it renumbers the portal ``?portal_id=`` names.

Added by other modules: ``/_sandbox/merge``, ``/_sandbox/gdpr-delete``,
``/_sandbox/objects/{objectType}/{id}/restore``, ``/_sandbox/stamp`` (merges.py),
``/_sandbox/daily`` (daily.py), ``/_sandbox/journal`` and ``/_sandbox/journal/age`` (journal.py).

The OAuth side adds its own routes (private-app token, codes, tokens, webhooks) in
``crm.sandbox.oauth.routes`` and ``crm.sandbox.webhooks``; the client below covers both.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import httpx2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox import tls
from crm.sandbox.config import SandboxConfig
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.limits import FailRule
from crm.sandbox.objects.routes import deletion_event, property_events
from crm.sandbox.objects.types import now_ms, resolve_type
from crm.sandbox.objects.validation import clean_values
from crm.sandbox.wire import bad_request, body_portal, read_json, sandbox_state

# Settings the admin API never reveals.
SECRET_SETTINGS = ("client_secret",)


class SandboxAdmin:
    """A small synchronous client for the admin API, used by tests and benchmarks.

    Every method raises ``httpx2.HTTPStatusError`` when the sandbox refuses the call.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx2.Client(base_url=self.url, timeout=timeout, verify=tls.context())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, portal_id: int | None = None) -> Any:
        params = {"portal_id": str(portal_id)} if portal_id is not None else None
        response = self._http.request(method, path, json=body, params=params)
        response.raise_for_status()
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # Every method takes ``portal_id`` (a sandbox may serve several portals); None means the
    # default portal, the first one the sandbox was started with.

    def portals(self) -> list[dict[str, Any]]:
        """Every portal served, the default first: ``portalId``, ``hubDomain``, ``default``, ``counts``."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/portals")
        portals: list[dict[str, Any]] = result["results"]
        return portals

    def reset(self, *, portal_id: int | None = None, **options: Any) -> dict[str, Any]:
        """Re-seed the portal, e.g. ``reset(seed=7, contacts=40, companies=0)``.

        Also accepts ``tokens=True``, ``webhooks=True`` and ``config=True`` (restore the
        settings the server started with: latency, faults, limits, webhook URL, ...; in every
        portal, since those settings are shared). Returns the record counts now in the portal.
        """
        result: dict[str, Any] = self._call("POST", "/_sandbox/reset", options, portal_id)
        return result

    def configure(self, *, in_portal: int | None = None, **changes: Any) -> dict[str, Any]:
        """Change sandbox settings (any ``SandboxConfig`` field); returns the portal's settings.

        ``hub_domain`` and ``portal_id`` (which renumbers the portal) are the portal's own,
        ``in_portal`` picks it (default: the first); every other setting changes in all portals.
        """
        result: dict[str, Any] = self._call("POST", "/_sandbox/config", changes, in_portal)
        return result

    def config(self, portal_id: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sandbox/config", None, portal_id)
        return result

    def fail_next(
        self,
        path: str,
        *,
        status: int | str = 500,
        count: int = 1,
        method: str | None = None,
        portal_id: int | None = None,
    ) -> None:
        """Make the portal's next ``count`` requests whose path starts with ``path`` fail.

        ``status`` is an HTTP status (429 comes with HubSpot's rate-limit body) or ``"drop"``
        (the connection is closed without a response).
        """
        body = {"path": path, "status": status, "count": count, "method": method}
        self._call("POST", "/_sandbox/fail-next", body, portal_id)

    def private_app_token(self, scopes: list[str] | None = None, *, portal_id: int | None = None) -> str:
        """Mint a private-app access token for the portal; all scopes unless ``scopes`` is given."""
        body = {} if scopes is None else {"scopes": scopes}
        result = self._call("POST", "/_sandbox/private-app-token", body, portal_id)
        if isinstance(result, str):
            return result
        return str(result.get("access_token") or result["token"])

    def oauth_code(self, *, portal_id: int | None = None, **options: Any) -> dict[str, Any]:
        """Mint an authorization code for the portal without the consent page (see the OAuth routes)."""
        result: dict[str, Any] = self._call("POST", "/_sandbox/oauth/code", options, portal_id)
        return result

    def patch_object(
        self,
        object_type: str,
        object_id: str | int,
        properties: dict[str, Any],
        *,
        portal_id: int | None = None,
    ) -> dict[str, Any]:
        """Change a record as a person in HubSpot's UI would: last-modified moves, webhooks fire."""
        result: dict[str, Any] = self._call(
            "PATCH", f"/_sandbox/objects/{object_type}/{object_id}", {"properties": properties}, portal_id
        )
        return result

    def archive_object(self, object_type: str, object_id: str | int, *, portal_id: int | None = None) -> None:
        self._call("POST", f"/_sandbox/objects/{object_type}/{object_id}/archive", None, portal_id)

    def stats(self, portal_id: int | None = None) -> dict[str, Any]:
        """The portal's requests and responses (admin and OAuth calls count to the default portal)."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/stats", None, portal_id)
        return result

    def truth(self, object_type: str, *, portal_id: int | None = None) -> list[dict[str, Any]]:
        """Every record of the type, archived ones too, with all properties and associations."""
        result: dict[str, Any] = self._call("GET", f"/_sandbox/truth/{object_type}", None, portal_id)
        records: list[dict[str, Any]] = result["results"]
        return records

    def threads(self, portal_id: int | None = None) -> list[dict[str, Any]]:
        """Every conversation thread, archived ones too, each with its ``messages``."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/conversations/threads", None, portal_id)
        threads: list[dict[str, Any]] = result["results"]
        return threads

    def start_thread(
        self, contact_id: str | int, text: str, channel_id: str = "1000", *, portal_id: int | None = None
    ) -> dict[str, Any]:
        """A visitor (the contact) writes in on ``channel_id``: a new thread, and its webhooks."""
        body = {"contactId": str(contact_id), "text": text, "channelId": channel_id}
        result: dict[str, Any] = self._call("POST", "/_sandbox/conversations/threads", body, portal_id)
        return result

    def tokens(self, portal_id: int | None = None) -> Any:
        return self._call("GET", "/_sandbox/tokens", None, portal_id)

    def webhooks(self, portal_id: int | None = None) -> Any:
        return self._call("GET", "/_sandbox/webhooks", None, portal_id)

    def flush_webhooks(self, timeout: float = 10.0, *, portal_id: int | None = None) -> Any:
        """Wait until every queued webhook of the portal has been delivered (or has failed for good)."""
        return self._call("POST", "/_sandbox/webhooks/flush", {"timeout": timeout}, portal_id)

    # --- merges, GDPR delete, restore, stamps, daily limit, journal ----------------------
    # (routes in crm/sandbox/merges.py, daily.py and journal.py)

    def merge(self, object_type: str, primary_id: str | int, merged_id: str | int) -> dict[str, Any]:
        """Merge as a person in HubSpot's UI would; returns the resulting record (a new id for
        contacts and companies unless ``merge_new_id`` is off)."""
        body = {
            "objectType": object_type,
            "primaryObjectId": str(primary_id),
            "objectIdToMerge": str(merged_id),
        }
        result: dict[str, Any] = self._call("POST", "/_sandbox/merge", body)
        return result

    def gdpr_delete(self, object_id: str | int, id_property: str | None = None) -> None:
        self._call("POST", "/_sandbox/gdpr-delete", {"objectId": str(object_id), "idProperty": id_property})

    def restore(self, object_type: str, object_id: str | int) -> dict[str, Any]:
        """Bring an archived record back from the recycle bin, as in HubSpot's UI."""
        result: dict[str, Any] = self._call("POST", f"/_sandbox/objects/{object_type}/{object_id}/restore")
        return result

    def stamp(
        self,
        object_type: str,
        timestamp: int | str,
        *,
        ids: list[str] | None = None,
        count: int | None = None,
    ) -> int:
        """Give records (``ids``, or the first ``count`` live ones) one last-modified millisecond."""
        body: dict[str, Any] = {"objectType": object_type, "timestamp": timestamp}
        body.update({"ids": ids} if ids is not None else {"count": count or 0})
        return int(self._call("POST", "/_sandbox/stamp", body)["stamped"])

    def daily(self, used: int | None = None) -> dict[str, Any]:
        """Today's daily-limit figures; ``used`` sets today's count first (0 starts a new day)."""
        if used is None:
            result: dict[str, Any] = self._call("GET", "/_sandbox/daily")
        else:
            result = self._call("POST", "/_sandbox/daily", {"used": used})
        return result

    def journal_entries(self) -> list[dict[str, Any]]:
        """Every journal entry still in retention, with its events."""
        return list(self._call("GET", "/_sandbox/journal")["results"])

    def age_journal(self, seconds: float) -> int:
        """Move every journal entry ``seconds`` into the past; returns how many are left."""
        return int(self._call("POST", "/_sandbox/journal/age", {"seconds": seconds})["entries"])

    def client_credentials_token(
        self, scopes: list[str] | None = None, *, version: str = "2026-03", client_secret: str | None = None
    ) -> str:
        """A webhooks-journal token from ``POST /oauth/{version}/token`` (client_credentials).

        ``client_secret`` defaults to the sandbox's default (the admin API never reveals it).
        """
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config()["client_id"],
            "client_secret": client_secret or SandboxConfig().client_secret,
        }
        if scopes is not None:
            form["scope"] = " ".join(scopes)
        response = self._http.post(f"/oauth/{version}/token", data=form)
        response.raise_for_status()
        return str(response.json()["access_token"])


# ---------------------------------------------------------------------------------------- routes


def _coerce(changes: dict[str, Any]) -> dict[str, Any]:
    """Check each setting's JSON type against its default, so a typo cannot break the sandbox."""
    defaults = SandboxConfig()
    coerced: dict[str, Any] = {}
    for key, value in changes.items():
        if not hasattr(defaults, key):
            raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail=f"unknown sandbox setting: {key}"))
        default = getattr(defaults, key)
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError
            elif isinstance(default, int):
                if isinstance(value, bool) or int(value) != value:
                    raise TypeError
                value = int(value)
            elif isinstance(default, float):
                if isinstance(value, bool):
                    raise TypeError
                value = float(value)
            elif isinstance(default, str):
                if not isinstance(value, str):
                    raise TypeError
            elif isinstance(default, (tuple, list)):
                numbers = bool(default) and not isinstance(default[0], str)  # webhook_retry_delays
                if isinstance(value, str) or not all(
                    (isinstance(v, (int, float)) and not isinstance(v, bool))
                    if numbers
                    else isinstance(v, str)
                    for v in value
                ):
                    raise TypeError
            elif isinstance(default, dict) and not isinstance(value, dict):
                raise TypeError
        except (TypeError, ValueError):
            raise bad_request(
                msg.ADMIN_UNKNOWN_SETTING.format(detail=f"{key}: {value!r} has the wrong type")
            ) from None
        coerced[key] = value
    return coerced


def _public_config(config: SandboxConfig) -> dict[str, Any]:
    body = dataclasses.asdict(config)
    for key in SECRET_SETTINGS:
        body.pop(key, None)
    return body


async def reset(request: Request) -> Response:
    body = await read_json(request)
    state = body_portal(request, body)
    try:
        counts = state.reset(body)
    except ValueError as exc:
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail=str(exc))) from None
    return JSONResponse(counts)


async def configure(request: Request) -> Response:
    # Here "portal_id" in the body is the setting (it renumbers the portal); ?portal_id= picks it.
    state = sandbox_state(request)
    body = await read_json(request)
    if "extra_portal_ids" in body:
        detail = "extra_portal_ids: fixed when the sandbox starts"
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail=detail))
    changes = _coerce(body)
    with state.lock:
        try:
            state.configure(changes)
        except (ValueError, TypeError) as exc:
            raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail=str(exc))) from None
        return JSONResponse(_public_config(state.config))


async def get_config(request: Request) -> Response:
    return JSONResponse(_public_config(sandbox_state(request).config))


async def fail_next(request: Request) -> Response:
    body = await read_json(request)
    state = body_portal(request, body)
    path, status = body.get("path"), body.get("status", 500)
    count = body.get("count", 1)
    if not isinstance(path, str) or not path.startswith("/"):
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail="path must start with /"))
    if str(status) not in ("429", "500", "502", "503", "slow", "drop"):
        raise bad_request(
            msg.ADMIN_UNKNOWN_SETTING.format(detail="status must be 429, 500, 502, 503, slow or drop")
        )
    if not isinstance(count, int) or count < 1:
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail="count must be a positive whole number"))
    method = body.get("method")
    state.faults.add_rule(
        FailRule(
            path=path, status=str(status), remaining=count, method=str(method).upper() if method else None
        )
    )
    return JSONResponse({"path": path, "status": str(status), "count": count, "method": method})


def _admin_record(request: Request) -> tuple[str, Any]:
    state = sandbox_state(request)
    object_type = resolve_type(request.path_params["objectType"])
    if object_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params["objectType"]))
    record = state.objects.find(object_type, request.path_params["objectId"])
    if record is None:
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return object_type, record


async def patch_object(request: Request) -> Response:
    """Edit a record as a person in HubSpot's UI: same validation, changeSource CRM_UI."""
    state = sandbox_state(request)
    body = await read_json(request)
    with state.lock:
        object_type, record = _admin_record(request)
        values, problems = clean_values(state, object_type, body.get("properties"), existing=record)
        if problems:
            raise SandboxHTTPError(400, msg.property_errors(problems))
        changed = state.objects.update(object_type, record, values, now_ms())
        result = state.objects.describe(object_type, record)
    events = property_events(object_type, record.id, changed, "CRM_UI")
    if events:
        state.webhooks.emit(events)
    return JSONResponse(result)


async def archive_object(request: Request) -> Response:
    state = sandbox_state(request)
    with state.lock:
        object_type, record = _admin_record(request)
        state.objects.archive(object_type, record, now_ms())
    state.webhooks.emit([deletion_event(object_type, record.id, "CRM_UI")])
    return Response(status_code=204)


async def get_stats(request: Request) -> Response:
    return JSONResponse(sandbox_state(request).stats.snapshot())


async def get_portals(request: Request) -> Response:
    """Every portal served, the default first, with its identity and record counts."""
    portals = sandbox_state(request).portals
    results = [
        {
            "portalId": p.config.portal_id,
            "hubDomain": p.config.hub_domain,
            "default": p.is_default,
            "counts": p.counts,
        }
        for p in portals.values()
    ]
    return JSONResponse({"results": results})


async def get_truth(request: Request) -> Response:
    state = sandbox_state(request)
    object_type = resolve_type(request.path_params["objectType"])
    if object_type is None:
        raise bad_request(msg.UNKNOWN_OBJECT_TYPE.format(name=request.path_params["objectType"]))
    with state.lock:
        store = state.objects.types[object_type]
        results = [state.objects.describe(object_type, store.records[i]) for i in store.order]
    return JSONResponse({"results": results})


def routes() -> list[BaseRoute]:
    return [
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/config", configure, methods=["POST"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/fail-next", fail_next, methods=["POST"]),
        Route("/_sandbox/objects/{objectType}/{objectId}", patch_object, methods=["PATCH"]),
        Route("/_sandbox/objects/{objectType}/{objectId}/archive", archive_object, methods=["POST"]),
        Route("/_sandbox/stats", get_stats, methods=["GET"]),
        Route("/_sandbox/portals", get_portals, methods=["GET"]),
        Route("/_sandbox/truth/{objectType}", get_truth, methods=["GET"]),
    ]
