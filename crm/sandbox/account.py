"""Account info: ``GET /account-info/v3/details`` and its date-versioned twins."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox.wire import authorize, sandbox_state, versioned


async def get_details(request: Request) -> Response:
    # Any valid token may read the account's own details.
    authorize(request)
    config = sandbox_state(request).config
    return JSONResponse(
        {
            "portalId": config.portal_id,
            "accountType": "STANDARD",
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": config.ui_domain,
            "dataHostingLocation": "na1",
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route(p, get_details, methods=["GET"])
        for p in versioned("/account-info/v3/details", "/account-info/{version}/details")
    ]
