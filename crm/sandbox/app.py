"""The sandbox ASGI app: every area's routes, HubSpot-style errors, and the gate in front.

The gate (``SandboxGate``, the outermost layer) gives every response an
``X-HubSpot-Correlation-Id``, answers 414 past ``max_url_length``, sleeps out the configured
latency (an ``asyncio.sleep`` per request, so slow requests never hold each other up), and
for CRM and journal paths injects faults and applies the burst, search and daily limits. Admin routes
(``/_sandbox/``) skip all of that.

Errors: handlers raise ``SandboxHTTPError``; Starlette's 404/405 and any unexpected
exception are turned into the same CRM dialect here, so no traceback ever reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import urllib.parse
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm.sandbox import (
    account,
    admin,
    associations,
    conversations,
    daily,
    journal,
    merges,
    owners,
    pipelines,
    properties,
    transcripts,
)
from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.limits import retry_after_header
from crm.sandbox.oauth.routes import routes as oauth_routes
from crm.sandbox.objects import routes as objects
from crm.sandbox.state import SandboxState, Stats
from crm.sandbox.webhooks import routes as webhook_routes
from crm.sandbox.wire import PORTAL_KEY, find_portal

logger = logging.getLogger("crm.sandbox")

CRM_PREFIXES = ("/crm/", "/account-info/", "/conversations/", "/webhooks-journal/", "/webhooks/v4/")
ADMIN_PREFIX = "/_sandbox/"


class DroppedConnection(Exception):
    """Raised in place of a response when the server under us gives no socket to close."""


def _with_correlation(body: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    # The OAuth token dialect ({error, error_description, ...}) has no correlationId.
    if "error" in body and "category" not in body:
        return body
    return {**body, "correlationId": correlation_id}


def _correlation_id(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", "") or uuid.uuid4())


def error_response(
    status: int, body: dict[str, Any], correlation_id: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(_with_correlation(body, correlation_id), status_code=status, headers=headers)


async def _sandbox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SandboxHTTPError)
    return error_response(exc.status, exc.body, _correlation_id(request), exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    cid = _correlation_id(request)
    if exc.status_code == 405:
        body = msg.crm_error(msg.WRONG_METHOD.format(method=request.method), msg.METHOD_NOT_ALLOWED)
    elif exc.status_code == 404:
        body = msg.crm_error(msg.UNKNOWN_PATH, msg.OBJECT_NOT_FOUND)
    else:
        body = msg.crm_error(str(exc.detail), msg.VALIDATION_ERROR)
    return error_response(exc.status_code, body, cid, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(500, msg.crm_error(msg.INTERNAL, msg.INTERNAL_ERROR), _correlation_id(request))


class SandboxApp(Starlette):
    """Starlette with the gate outside its own error middleware."""

    def __init__(self, state: SandboxState, routes: list[BaseRoute]) -> None:
        super().__init__(
            routes=routes,
            exception_handlers={
                SandboxHTTPError: _sandbox_error,
                HTTPException: _http_error,
                Exception: _unexpected,
            },
        )
        self.state.sandbox = state

    def build_middleware_stack(self) -> ASGIApp:
        return SandboxGate(super().build_middleware_stack(), self.state.sandbox)


class SandboxGate:
    """Correlation ids, URL length, latency, faults, rate limits and stats (module docstring)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state
        self._jitter = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = str(uuid.uuid4())
        scope_state = scope.setdefault("state", {})
        scope_state["correlation_id"] = cid
        extra = [(b"x-hubspot-correlation-id", cid.encode())]
        seen: dict[str, int] = {}
        portal = self.state
        counted: Stats | None = None  # the portal whose in-flight count this request holds
        in_flight_key = f"{scope['method']} {scope['path']}"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            # One portal (the usual case) needs no lookup; several are told apart per request.
            several = len(self.state.portals) > 1 or b"portal_id" in scope.get("query_string", b"")
            picked = self._portal(scope) if several else portal
            if isinstance(picked, SandboxHTTPError):
                verdict: Response | str | None = error_response(picked.status, picked.body, cid)
            else:
                portal = scope_state[PORTAL_KEY] = picked
                counted = portal.stats
                counted.started(in_flight_key)
                verdict = await self._gate(scope, portal, extra)
            if verdict == "drop":
                await self._drop(send)
                seen["status"] = 0
            elif isinstance(verdict, Response):
                await verdict(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except DroppedConnection:
            raise
        except Exception:
            # Starlette has already answered with our 500 body when it could; this catches the
            # rest (and the re-raise Starlette does after answering) without a traceback leak.
            logger.exception("sandbox request failed: %s %s", scope["method"], scope["path"])
            if "status" not in seen:
                body = msg.crm_error(msg.INTERNAL, msg.INTERNAL_ERROR)
                await error_response(500, body, cid)(scope, receive, send_with_headers)
        finally:
            if counted is not None:
                counted.ended(in_flight_key)
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            portal.stats.record(f"{scope['method']} {template}", seen.get("status") or None)

    def _portal(self, scope: Scope) -> SandboxState | SandboxHTTPError:
        """The portal of the bearer token (CRM routes) or of ``?portal_id`` (admin routes).

        An unknown token goes to the default portal, which answers 401 as ever.
        """
        portals = self.state.portals
        if scope["path"].startswith(ADMIN_PREFIX):
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            raw = query.get("portal_id")
            try:
                return find_portal(portals, raw[0]) if raw else self.state
            except SandboxHTTPError as exc:
                return exc
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").strip().partition(" ")
                token = token.strip()
                if scheme.lower() == "bearer" and token:
                    for portal in portals.values():
                        if portal.auth.is_known_access_token(token):
                            return portal
                break
        return self.state

    async def _gate(
        self, scope: Scope, state: SandboxState, extra: list[tuple[bytes, bytes]]
    ) -> Response | str | None:
        """A response to send instead of the route's, "drop", or None to go on to the route."""
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX):
            return None
        config = state.config
        cid = scope["state"]["correlation_id"]
        query = scope.get("query_string", b"")
        length = len(scope.get("raw_path") or path.encode()) + (len(query) + 1 if query else 0)
        if length > config.max_url_length:
            body = msg.crm_error(
                msg.URL_TOO_LONG.format(length=length, limit=config.max_url_length), msg.URI_TOO_LONG
            )
            return error_response(414, body, cid)
        delay_ms = config.latency_ms + (
            self._jitter.uniform(0, config.jitter_ms) if config.jitter_ms > 0 else 0.0
        )
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        if not path.startswith(CRM_PREFIXES):
            return None

        method: str = scope["method"]
        fault = state.faults.pick(method, path)
        if fault is not None:
            state.stats.count_fault(fault)
            if fault == "drop":
                return "drop"
            if fault == "slow":
                await asyncio.sleep(config.slow_ms / 1000)
            elif fault == "429":
                headers = {
                    "X-HubSpot-RateLimit-Max": str(config.burst_limit),
                    "X-HubSpot-RateLimit-Remaining": "0",
                    "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(config.burst_window_s * 1000)),
                }
                if config.retry_after:
                    headers["Retry-After"] = retry_after_header(1.0)
                return error_response(429, msg.rate_limit_error(msg.TEN_SECONDLY_ROLLING), cid, headers)
            else:
                texts = {"500": msg.INTERNAL, "502": msg.BAD_GATEWAY, "503": msg.UNAVAILABLE}
                category = msg.INTERNAL_ERROR if fault == "500" else msg.SERVICE_UNAVAILABLE
                return error_response(int(fault), msg.crm_error(texts[fault], category), cid)

        if method == "POST" and path.endswith("/search"):
            # Search has its own per-second budget and sends no rate-limit headers.
            allowed, _, wait = state.limits.take_search()
            if not allowed:
                state.stats.count_limited(search=True)
                headers = {"Retry-After": retry_after_header(wait)} if config.retry_after else {}
                return error_response(429, msg.rate_limit_error(msg.SECONDLY), cid, headers)
            if not state.daily.take()[0]:
                return error_response(429, daily.daily_limit_error(), cid, state.daily.headers(0))
            return None
        allowed, remaining, wait = state.limits.take_burst()
        limit_headers = {
            "X-HubSpot-RateLimit-Max": str(config.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(config.burst_window_s * 1000)),
        }
        if not allowed:
            state.stats.count_limited(search=False)
            if config.retry_after:
                limit_headers["Retry-After"] = retry_after_header(wait)
            return error_response(429, msg.rate_limit_error(msg.TEN_SECONDLY_ROLLING), cid, limit_headers)
        allowed_today, remaining_today = state.daily.take()
        if not allowed_today:
            return error_response(429, daily.daily_limit_error(), cid, state.daily.headers(0))
        limit_headers.update(state.daily.headers(remaining_today))
        extra += [(k.lower().encode(), v.encode()) for k, v in limit_headers.items()]
        return None

    async def _drop(self, send: Send) -> None:
        """Close the connection without a byte of response, as a dying proxy would."""
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            # In-process (ASGI transport): there is no socket, so fail the request loudly.
            raise DroppedConnection("sandbox dropped the connection")
        transport.abort()
        # Tell uvicorn the peer is gone so it does not try to answer with its own 500.
        if cycle is not None and hasattr(cycle, "disconnected"):
            cycle.disconnected = True


def build_routes(state: SandboxState) -> list[BaseRoute]:
    table: list[BaseRoute] = []
    table += admin.routes()
    table += list(oauth_routes(state))
    table += list(webhook_routes(state))
    table += objects.routes()
    table += associations.routes()
    table += properties.routes()
    table += pipelines.routes()
    table += owners.routes()
    table += account.routes()
    table += conversations.routes()
    table += transcripts.routes()
    table += merges.routes()
    table += journal.routes()
    table += daily.routes()
    return table


def build_app(state: SandboxState) -> SandboxApp:
    return SandboxApp(state, build_routes(state))
