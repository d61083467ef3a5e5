"""Helpers every route module shares: the state, auth and scope checks, and JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError

if TYPE_CHECKING:
    from crm.sandbox.state import SandboxState

P = TypeVar("P")

# Date-versioned path segments served beside v3/v4 (HUBSPOT_API.md §11).
API_VERSIONS = ("2025-09", "2026-03", "2026-09")


def versioned(path: str, dated: str) -> list[str]:
    """``path`` and its date-versioned twins, ``dated`` filled in with each of ``API_VERSIONS``.

    For example ``versioned("/crm/v3/owners", "/crm/owners/{version}")``.
    """
    return [path] + [dated.format(version=v) for v in API_VERSIONS]


# Where the gate leaves the portal a request is for (scope["state"][PORTAL_KEY]).
PORTAL_KEY = "sandbox_portal"


def sandbox_state(request: Request) -> SandboxState:
    """The portal the request is for: the token's (CRM routes) or ``?portal_id`` (admin routes)."""
    portal = request.scope.get("state", {}).get(PORTAL_KEY)
    if portal is not None:
        chosen: SandboxState = portal
        return chosen
    state: SandboxState = request.app.state.sandbox
    return state


def find_portal(portals: Mapping[int, P], raw: Any) -> P:
    """The portal named by an admin call's ``portal_id``; 400 when not a number, 404 when unknown."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).strip().isdigit():
        detail = f"portal_id must be a portal's number, not {raw!r}"
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail=detail))
    portal = portals.get(int(raw))
    if portal is None:
        served = ", ".join(str(p) for p in portals)
        text = msg.UNKNOWN_PORTAL.format(portal_id=raw, served=served)
        raise SandboxHTTPError(404, msg.crm_error(text, msg.OBJECT_NOT_FOUND))
    return portal


def body_portal(request: Request, body: dict[str, Any]) -> SandboxState:
    """An admin call's portal: ``portal_id`` taken out of the body, else ``?portal_id``, else the default."""
    state = sandbox_state(request)
    if "portal_id" in body:
        return find_portal(state.portals, body.pop("portal_id"))
    return state


def authorize(request: Request, any_of: list[str] | None = None) -> Any:
    """Check the bearer token (401) and, when ``any_of`` is given, its scopes (403)."""
    state = sandbox_state(request)
    ctx = state.auth.authenticate(request.headers.get("authorization"))
    if any_of:
        state.auth.require_scopes(ctx, any_of=any_of)
    return ctx


def bad_request(message: str, **kw: Any) -> SandboxHTTPError:
    return SandboxHTTPError(400, msg.crm_error(message, msg.VALIDATION_ERROR, **kw))


_NO_BODY = object()


async def _json_body(request: Request) -> Any:
    """The body parsed as JSON, or ``_NO_BODY``; 415 for a non-JSON content type, 400 when malformed."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise SandboxHTTPError(
            415, msg.crm_error(msg.WRONG_CONTENT_TYPE.format(content_type=media), msg.UNSUPPORTED_MEDIA_TYPE)
        )
    raw = await request.body()
    if not raw.strip():
        return _NO_BODY
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(msg.MALFORMED_JSON.format(detail=str(exc))) from None


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); 415 for a non-JSON content type, 400 when malformed."""
    body = await _json_body(request)
    if body is _NO_BODY:
        return {}
    if not isinstance(body, dict):
        raise bad_request(msg.BODY_NOT_OBJECT)
    return body


async def read_json_any(request: Request) -> Any:
    """Like ``read_json`` but any JSON value is allowed (some v4 bodies are arrays); None when empty."""
    body = await _json_body(request)
    return None if body is _NO_BODY else body


def query_list(request: Request, name: str) -> list[str]:
    """A list query parameter, sent comma-separated or repeated (HubSpot takes both)."""
    return [
        item.strip()
        for value in request.query_params.getlist(name)
        for item in value.split(",")
        if item.strip()
    ]


def query_int(request: Request, name: str, default: int, *, maximum: int) -> int:
    """A positive integer parameter, clamped to ``maximum``; 400 when not a number."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(msg.INVALID_LIMIT) from None
    if value < 1:
        raise bad_request(msg.INVALID_LIMIT)
    return min(value, maximum)


def query_bool(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"
