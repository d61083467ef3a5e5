"""The Pipedrive sandbox ASGI app: routes, Pipedrive-style errors, and the gate in front.

The gate (``PipedriveGate``, outermost) sleeps out ``latency_ms`` and, for ``/api/`` paths,
authenticates the caller (``x-api-token`` header, ``api_token`` query or OAuth Bearer;
401 otherwise), applies the per-token burst window (search has its own), spends the daily
token budget, and adds ``x-ratelimit-limit``, ``x-ratelimit-remaining``,
``x-ratelimit-reset`` and, for API tokens, ``x-daily-requests-left`` (docs/PIPEDRIVE_API.md
§6). Admin routes (``/_sandbox/``) skip all of it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm.sandbox.pipedrive import admin, interactions, metadata, oauth, objects
from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.auth import Principal
from crm.sandbox.pipedrive.state import PipedriveState
from crm.sandbox.pipedrive.wire import PipedriveHTTPError

logger = logging.getLogger("crm.sandbox.pipedrive")
ADMIN_PREFIX = "/_sandbox/"
API_PREFIX = "/api/"
# Token cost per request kind for API v2; v1 costs twice as much (UNCERTAIN, docs/PIPEDRIVE_API.md §6).
COSTS = {"get": 1, "list": 10, "search": 20, "write": 5, "delete": 3}


def request_cost(method: str, path: str) -> int:
    """What a request spends from the daily budget."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if method == "GET":
        kind = "search" if last == "search" else "get" if last.isdigit() or last == "me" else "list"
    else:
        kind = "delete" if method == "DELETE" else "write"
    return COSTS[kind] * (2 if path.startswith("/api/v1/") else 1)


async def _pipedrive_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PipedriveHTTPError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        body = msg.error(msg.WRONG_METHOD.format(method=request.method))
    elif exc.status_code == 404:
        body = msg.error(msg.UNKNOWN_PATH)
    else:
        body = msg.error(str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return JSONResponse(msg.error(msg.INTERNAL), status_code=500)


class PipedriveApp(Starlette):
    """Starlette with the gate outside its own error middleware."""

    def __init__(self, state: PipedriveState, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes, exception_handlers={
            PipedriveHTTPError: _pipedrive_error, HTTPException: _http_error, Exception: _unexpected,
        })  # fmt: skip
        self.state.pipedrive = state

    def build_middleware_stack(self) -> ASGIApp:
        return PipedriveGate(super().build_middleware_stack(), self.state.pipedrive)


class PipedriveGate:
    """Latency, authentication, rate limits, budget and stats (module docstring)."""

    def __init__(self, app: ASGIApp, state: PipedriveState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra: list[tuple[bytes, bytes]] = []
        seen: dict[str, int] = {}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            refusal = await self._gate(scope, extra)
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("pipedrive sandbox request failed: %s %s", scope["method"], scope["path"])
            if "status" not in seen:
                await JSONResponse(msg.error(msg.INTERNAL), status_code=500)(
                    scope, receive, send_with_headers
                )
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.state.stats.record(f"{scope['method']} {template}", seen.get("status"))

    async def _gate(self, scope: Scope, extra: list[tuple[bytes, bytes]]) -> Response | None:
        """A response to send instead of the route's, or None to go on to the route."""
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX):
            return None
        state, cfg = self.state, self.state.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if not path.startswith(API_PREFIX):
            return None
        request = Request(scope)
        api_token = request.query_params.get("api_token") or request.headers.get("x-api-token")
        principal = state.auth.authenticate(api_token, request.headers.get("authorization"))
        if principal is None:
            return JSONResponse(msg.unauthorized(), status_code=401)
        scope.setdefault("state", {})["principal"] = principal
        method: str = scope["method"]
        search = path.endswith("/search")
        allowed, limit, remaining, wait = state.limits.take(principal, search=search)
        reset = str(max(1, math.ceil(wait if not allowed else cfg.burst_window_s)))
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": reset,
        }
        if not allowed:
            state.stats.count_limited("search" if search else "burst")
            return _limited(msg.RATE_LIMITED, {**headers, "Retry-After": reset}, principal, state)
        cost = request_cost(method, path)
        if not state.limits.spend(cost):
            state.stats.count_limited("daily_budget")
            return _limited(msg.DAILY_BUDGET, headers, principal, state)
        state.stats.add_tokens(cost)
        if principal.kind == "api_token":
            left = (
                state.limits.write(principal)
                if method in ("POST", "PUT", "PATCH")
                else state.limits.writes_left(principal)
            )
            headers["x-daily-requests-left"] = str(left)
        extra += [(k.encode(), v.encode()) for k, v in headers.items()]
        return None


def _limited(message: str, headers: dict[str, str], principal: Principal, state: PipedriveState) -> Response:
    if principal.kind == "api_token":
        headers = {**headers, "x-daily-requests-left": str(state.limits.writes_left(principal))}
    return JSONResponse(msg.error(message), status_code=429, headers=headers)


def build_app(state: PipedriveState) -> PipedriveApp:
    routes: list[Any] = (
        admin.routes() + oauth.routes() + objects.routes() + metadata.routes() + interactions.routes()
    )
    return PipedriveApp(state, routes)
