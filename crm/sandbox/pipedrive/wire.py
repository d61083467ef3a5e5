"""What every route module shares: the error exception, the success envelope, JSON bodies, queries."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from crm.sandbox.pipedrive import messages as msg
from crm.sandbox.pipedrive.models import parse_rfc3339

if TYPE_CHECKING:
    from crm.sandbox.pipedrive.auth import Principal
    from crm.sandbox.pipedrive.state import PipedriveState

MAX_LIMIT = 500


class PipedriveHTTPError(Exception):
    """Answer the current request with ``status`` and Pipedrive's JSON error ``body``."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body.get("error") or body.get("error_description") or status))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def bad_request(message: str) -> PipedriveHTTPError:
    return PipedriveHTTPError(400, msg.error(message))


def not_found(entity: str) -> PipedriveHTTPError:
    return PipedriveHTTPError(404, msg.error(msg.NOT_FOUND.format(entity=entity.capitalize())))


def ok(data: Any, additional: dict[str, Any] | None = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    return JSONResponse(body, status_code=status)


def offset_page(request: Request, items: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """One v1 page by ``start``/``limit`` and its ``additional_data.pagination``."""
    start = query_int(request, "start") or 0
    limit = query_limit(request)
    page = list(items[start : start + limit])
    more = len(items) > start + limit
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return page, {"pagination": pagination}


def state_of(request: Request) -> PipedriveState:
    state: PipedriveState = request.app.state.pipedrive
    return state


def principal_of(request: Request) -> Principal:
    """The caller the gate authenticated (every /api/ route has one)."""
    principal: Principal = request.scope["state"]["principal"]
    return principal


async def read_json(request: Request) -> Any:
    """The body parsed as JSON (``{}`` when empty); 400 when malformed."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request(msg.BAD_JSON) from None


def query_limit(request: Request, default: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(msg.BAD_LIMIT) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(msg.BAD_LIMIT)
    return limit


def query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(msg.BAD_ID.format(name=name)) from None
    if value < 0:
        raise bad_request(msg.BAD_ID.format(name=name))
    return value


def query_time(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    moment = parse_rfc3339(raw)
    if moment is None:
        raise bad_request(msg.BAD_TIME.format(name=name))
    return moment


def query_choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name) or default
    if value not in choices:
        raise bad_request(msg.BAD_CHOICE.format(name=name, choices=", ".join(choices)))
    return value


def encode_cursor(payload: dict[str, Any]) -> str:
    """An opaque cursor (Pipedrive's are opaque too; docs/PIPEDRIVE_API.md §3)."""
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(request: Request) -> dict[str, Any] | None:
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        raise bad_request(msg.BAD_CURSOR) from None
    if not isinstance(payload, dict):
        raise bad_request(msg.BAD_CURSOR)
    return payload
