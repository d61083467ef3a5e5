"""The sandbox-only admin API under ``/_sandbox/``, and ``PipedriveAdmin``, its Python client.

Routes (no auth; loopback only by intent), the same shape as the HubSpot sandbox's:

    POST   /_sandbox/reset                     re-seed: seed, persons, organizations, deals, users,
                                               anchor_date; tokens/webhooks/config true also resets those
    GET    /_sandbox/config                    the current settings (client secret left out)
    POST   /_sandbox/config                    change settings; unknown keys or wrong types 400
    POST   /_sandbox/api-token                 mint a user's API token ({"user_id"} optional)
    POST   /_sandbox/oauth/code                mint an authorization code without the consent page
    POST   /_sandbox/oauth/expire              expire every access token (to test refresh)
    PATCH  /_sandbox/objects/{type}/{id}       edit as if in Pipedrive's UI: update_time moves, webhooks fire
                                               (type: persons, organizations, deals, notes, activities)
    DELETE /_sandbox/objects/{type}/{id}       delete as if in Pipedrive's UI
    GET    /_sandbox/stats                     requests per route, responses per status, 429s, tokens spent
    GET    /_sandbox/truth/{type}              every record, deleted ones too, in the API v2 shape
                                               (notes: v1 shape with is_deleted)
    GET    /_sandbox/webhooks                  registered webhooks and every delivery attempt
    POST   /_sandbox/webhooks/flush            wait until queued deliveries are done
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import httpx2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import tls
from crm.sandbox.pipedrive import interactions
from crm.sandbox.pipedrive.models import ENTITY_TYPES, EntityType, Note, render
from crm.sandbox.pipedrive.objects import apply_update, delete_record
from crm.sandbox.pipedrive.validation import Invalid
from crm.sandbox.pipedrive.wire import bad_request, not_found, read_json, state_of

SECRET_SETTINGS = ("client_secret",)
# What the admin API edits, deletes and tells the truth of besides records (pdtimeline).
TIMELINE_KINDS = ("notes", "activities")


class PipedriveAdmin:
    """A small synchronous client for the admin API, used by tests and benchmarks.

    Every method raises ``httpx2.HTTPStatusError`` when the sandbox refuses the call.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx2.Client(
            base_url=self.url, timeout=timeout, trust_env=False, verify=tls.context(trust_env=False)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self, **options: Any) -> dict[str, int]:
        """Re-seed, e.g. ``reset(seed=7, persons=40, tokens=True, webhooks=True, config=True)``; the counts."""
        result: dict[str, int] = self._call("POST", "/_sandbox/reset", options)
        return result

    def configure(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_sandbox/config", changes)
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sandbox/config")
        return result

    def api_token(self, user_id: int | None = None) -> str:
        body = {} if user_id is None else {"user_id": user_id}
        return str(self._call("POST", "/_sandbox/api-token", body)["api_token"])

    def oauth_code(self, redirect_uri: str | None = None) -> dict[str, Any]:
        body = {} if redirect_uri is None else {"redirect_uri": redirect_uri}
        result: dict[str, Any] = self._call("POST", "/_sandbox/oauth/code", body)
        return result

    def expire_access_tokens(self) -> int:
        return int(self._call("POST", "/_sandbox/oauth/expire")["expired"])

    def patch_object(self, object_type: str, object_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a person in Pipedrive's UI would (body as API v2 PATCH takes it)."""
        result: dict[str, Any] = self._call("PATCH", f"/_sandbox/objects/{object_type}/{object_id}", changes)
        return result

    def delete_object(self, object_type: str, object_id: int) -> None:
        self._call("DELETE", f"/_sandbox/objects/{object_type}/{object_id}")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sandbox/stats")
        return result

    def truth(self, object_type: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/_sandbox/truth/{object_type}")["results"]
        return result

    def webhooks(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sandbox/webhooks")
        return result

    def flush_webhooks(self, timeout: float = 10.0) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_sandbox/webhooks/flush", {"timeout": timeout})
        return result


# ---------------------------------------------------------------------------------------- routes


def _body(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("send a JSON object")
    return raw


async def reset(request: Request) -> Response:
    state = state_of(request)
    body = _body(await read_json(request))
    try:
        return JSONResponse(state.reset(body))
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def _public_config(request: Request) -> dict[str, Any]:
    body = dataclasses.asdict(state_of(request).config)
    for key in SECRET_SETTINGS:
        body.pop(key, None)
    return body


async def get_config(request: Request) -> Response:
    return JSONResponse(_public_config(request))


async def configure(request: Request) -> Response:
    state = state_of(request)
    body = _body(await read_json(request))
    with state.lock:
        probe = dataclasses.replace(state.config)
        try:
            probe.update(body)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        state.config.update(body)
    return JSONResponse(_public_config(request))


async def create_api_token(request: Request) -> Response:
    state = state_of(request)
    body = _body(await read_json(request))
    user_id = body.get("user_id", state.users[0].id)
    if not isinstance(user_id, int) or state.user(user_id) is None:
        raise bad_request(f"no user with id {user_id!r}")
    return JSONResponse({"api_token": state.auth.mint_api_token(user_id), "user_id": user_id})


async def create_code(request: Request) -> Response:
    state = state_of(request)
    body = _body(await read_json(request))
    redirect_uri = body.get("redirect_uri", state.config.redirect_uris[0])
    if redirect_uri not in state.config.redirect_uris:
        raise bad_request("redirect_uri is not one of the app's registered redirect URIs")
    code = state.auth.mint_code(state.users[0].id, redirect_uri)
    return JSONResponse({"code": code, "redirect_uri": redirect_uri})


async def expire_tokens(request: Request) -> Response:
    return JSONResponse({"expired": state_of(request).auth.expire_access_tokens()})


def _entity(request: Request) -> EntityType:
    name = request.path_params["objectType"]
    if name not in ENTITY_TYPES:
        raise bad_request(f"object type must be one of {', '.join(ENTITY_TYPES)}")
    entity: EntityType = name
    return entity


async def patch_object(request: Request) -> Response:
    state = state_of(request)
    if request.path_params["objectType"] in TIMELINE_KINDS:
        return await _patch_timeline(request)
    entity = _entity(request)
    body = await read_json(request)
    record = state.records.live(entity, request.path_params["objectId"])
    if record is None:
        raise not_found(entity.rstrip("s"))
    try:
        data = apply_update(state, entity, record, body, user_id=state.users[0].id, source="app")
    except Invalid as exc:
        raise bad_request(str(exc)) from None
    return JSONResponse(data)


async def delete_object(request: Request) -> Response:
    state = state_of(request)
    kind = request.path_params["objectType"]
    if kind in TIMELINE_KINDS:
        item = interactions.find(state, kind, request.path_params["objectId"])
        interactions.delete_item(state, item, user_id=state.users[0].id, source="app")
        return JSONResponse({"id": item.id})
    entity = _entity(request)
    record = state.records.live(entity, request.path_params["objectId"])
    if record is None:
        raise not_found(entity.rstrip("s"))
    delete_record(state, entity, record, user_id=state.users[0].id, source="app")
    return JSONResponse({"id": record.id})


async def get_stats(request: Request) -> Response:
    state = state_of(request)
    return JSONResponse({**state.stats.snapshot(), "budget_spent_today": state.limits.budget_spent})


async def _patch_timeline(request: Request) -> Response:
    """A note (v1 PUT body) or activity (v2 PATCH body) edited as if in Pipedrive's UI."""
    state = state_of(request)
    kind = request.path_params["objectType"]
    body = await read_json(request)
    item = interactions.find(state, kind, request.path_params["objectId"])
    user = state.users[0].id
    if isinstance(item, Note):
        return JSONResponse(interactions.change_note(state, item, body, user_id=user, source="app"))
    return JSONResponse(interactions.change_activity(state, item, body, user_id=user, source="app"))


async def get_truth(request: Request) -> Response:
    state = state_of(request)
    if request.path_params["objectType"] in TIMELINE_KINDS:
        return JSONResponse({"results": interactions.truth(state, request.path_params["objectType"])})
    entity = _entity(request)
    with state.lock:
        results = [render(entity, r, state.fields) for r in state.records.records[entity].values()]
    return JSONResponse({"results": results})


async def list_webhooks(request: Request) -> Response:
    hub = state_of(request).webhooks
    company_id = state_of(request).config.company_id
    return JSONResponse({"webhooks": [w.describe(company_id) for w in hub.listed()], "deliveries": hub.deliveries(),
                         **hub.status()})  # fmt: skip


async def flush_webhooks(request: Request) -> Response:
    hub = state_of(request).webhooks
    body = _body(await read_json(request))
    timeout = body.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise bad_request("timeout must be a number of seconds")
    flushed = await run_in_threadpool(hub.flush, min(max(float(timeout), 0.0), 60.0))
    return JSONResponse({"flushed": flushed, **hub.status()})


def routes() -> list[BaseRoute]:
    return [
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/config", configure, methods=["POST"]),
        Route("/_sandbox/api-token", create_api_token, methods=["POST"]),
        Route("/_sandbox/oauth/code", create_code, methods=["POST"]),
        Route("/_sandbox/oauth/expire", expire_tokens, methods=["POST"]),
        Route("/_sandbox/objects/{objectType}/{objectId:int}", patch_object, methods=["PATCH"]),
        Route("/_sandbox/objects/{objectType}/{objectId:int}", delete_object, methods=["DELETE"]),
        Route("/_sandbox/stats", get_stats, methods=["GET"]),
        Route("/_sandbox/truth/{objectType}", get_truth, methods=["GET"]),
        Route("/_sandbox/webhooks", list_webhooks, methods=["GET"]),
        Route("/_sandbox/webhooks/flush", flush_webhooks, methods=["POST"]),
    ]
