"""The portal's daily request budget (docs/JOURNAL_AND_LIMITS_API.md §6).

HubSpot counts every API request of a portal against one daily limit shared by all its apps,
reports it in ``X-HubSpot-RateLimit-Daily`` and ``X-HubSpot-RateLimit-Daily-Remaining``, and
answers 429 with ``policyName: DAILY`` once it is spent. The day turns at midnight in the
account's time zone; the sandbox turns it at midnight UTC, and tests move it with
``POST /_sandbox/daily`` instead of waiting.

``config.daily_limit`` 0 switches the limit off (no headers), as for public OAuth apps.
A request refused by any limit does not count. Search requests count but carry no headers, like every
other rate-limit header on search.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.config import SandboxConfig
from crm.sandbox.wire import bad_request, read_json, sandbox_state

DAILY = "DAILY"
DAILY_MESSAGE = "You have reached your daily limit."


def daily_limit_error() -> dict[str, Any]:
    """The DAILY 429 body HUBSPOT_API.md §7 records (``requestId`` beside ``correlationId``)."""
    body = msg.rate_limit_error(DAILY)
    body["message"] = DAILY_MESSAGE
    body["requestId"] = str(uuid.uuid4())
    return body


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


class DailyBudget:
    """Requests used today against ``config.daily_limit``; thread-safe."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._day = _today()
        self.used = 0

    def _roll(self) -> None:
        day = _today()
        if day != self._day:
            self._day, self.used = day, 0

    def take(self) -> tuple[bool, int]:
        """Count one request: (allowed, remaining after it). Always allowed when the limit is off."""
        limit = self.config.daily_limit
        with self._lock:
            self._roll()
            if limit <= 0:
                return True, 0
            if self.used >= limit:
                return False, 0
            self.used += 1
            return True, limit - self.used

    def headers(self, remaining: int) -> dict[str, str]:
        if self.config.daily_limit <= 0:
            return {}
        return {
            "X-HubSpot-RateLimit-Daily": str(self.config.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(remaining),
        }

    def set_used(self, used: int) -> None:
        with self._lock:
            self._roll()
            self.used = max(0, used)

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._roll()
            limit = self.config.daily_limit
            return {
                "limit": limit,
                "used": self.used,
                "remaining": max(limit - self.used, 0) if limit > 0 else None,
                "day": self._day,
            }

    def reset(self) -> None:
        self.set_used(0)


# ---------------------------------------------------------------------------------- admin routes


async def get_daily(request: Request) -> Response:
    return JSONResponse(sandbox_state(request).daily.status())


async def set_daily(request: Request) -> Response:
    """``{"used": n}`` sets today's count (0 starts a new day), so tests need not spend it."""
    body = await read_json(request)
    used = body.get("used", 0)
    if not isinstance(used, int) or isinstance(used, bool) or used < 0:
        raise bad_request(msg.ADMIN_UNKNOWN_SETTING.format(detail="used must be a whole number, 0 or more"))
    state = sandbox_state(request)
    state.daily.set_used(used)
    return JSONResponse(state.daily.status())


def routes() -> list[BaseRoute]:
    return [
        Route("/_sandbox/daily", get_daily, methods=["GET"]),
        Route("/_sandbox/daily", set_daily, methods=["POST"]),
    ]
