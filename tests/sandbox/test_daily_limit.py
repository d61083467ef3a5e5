"""The portal's daily limit in the sandbox: HubSpot's headers, the DAILY 429, a new day."""

from __future__ import annotations

import httpx2
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

SEARCH = {"filterGroups": [], "limit": 1}


def test_no_daily_headers_while_the_limit_is_off(api: httpx2.Client) -> None:
    response = api.get("/crm/v3/objects/contacts")
    assert response.status_code == 200
    assert "X-HubSpot-RateLimit-Daily" not in response.headers
    assert response.headers["X-HubSpot-RateLimit-Max"]


def test_every_crm_response_reports_the_daily_budget(sandbox: SandboxAdmin, api: httpx2.Client) -> None:
    sandbox.configure(daily_limit=1000)
    sandbox.daily(used=0)
    first = api.get("/crm/v3/objects/contacts")
    second = api.get("/crm/v3/objects/companies")
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "1000"
    assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "999"
    assert second.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "998"
    # Search counts against the day but, like every rate-limit header, reports nothing.
    search = api.post("/crm/v3/objects/contacts/search", json=SEARCH)
    assert search.status_code == 200 and "X-HubSpot-RateLimit-Daily" not in search.headers
    assert sandbox.daily()["used"] == 3


def test_a_spent_day_answers_429_daily_until_the_day_turns(sandbox: SandboxAdmin, api: httpx2.Client) -> None:
    sandbox.configure(daily_limit=50)
    sandbox.daily(used=50)

    refused = api.get("/crm/v3/objects/contacts")

    body = assert_crm_error(refused, 429)
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "DAILY")
    assert body["message"] == "You have reached your daily limit." and body["requestId"]
    assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert_crm_error(api.post("/crm/v3/objects/contacts/search", json=SEARCH), 429)
    assert sandbox.daily()["used"] == 50  # refused requests do not count
    # The admin API and the token endpoint are not CRM calls and keep working.
    assert sandbox.private_app_token()

    sandbox.daily(used=0)  # a new day
    fresh = api.get("/crm/v3/objects/contacts")
    assert fresh.status_code == 200 and fresh.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "49"
