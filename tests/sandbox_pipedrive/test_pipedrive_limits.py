"""API tokens, rate-limit headers, the 429 body, the search limit and the daily budget."""

from __future__ import annotations

import httpx2

from crm.sandbox.pipedrive.admin import PipedriveAdmin


def test_api_token_works_in_header_and_in_query(pipedrive: PipedriveAdmin) -> None:
    token = pipedrive.api_token()
    with httpx2.Client(base_url=pipedrive.url, trust_env=False) as client:
        assert client.get("/api/v2/persons", headers={"x-api-token": token}).status_code == 200
        assert client.get("/api/v2/persons", params={"api_token": token}).status_code == 200
        missing = client.get("/api/v2/persons")
    assert missing.status_code == 401
    assert missing.json() == {"success": False, "error": "unauthorized access", "errorCode": 401,
                              "error_info": missing.json()["error_info"], "data": None, "additional_data": None}  # fmt: skip


def test_every_response_carries_the_burst_headers(api: httpx2.Client) -> None:
    first = api.get("/api/v2/persons")
    second = api.get("/api/v2/persons")
    assert first.headers["x-ratelimit-limit"] == "80" and first.headers["x-ratelimit-reset"] == "2"
    assert int(second.headers["x-ratelimit-remaining"]) == int(first.headers["x-ratelimit-remaining"]) - 1


def test_over_the_burst_limit_answers_429_in_pipedrive_shape(
    api: httpx2.Client, pipedrive: PipedriveAdmin
) -> None:
    pipedrive.configure(api_token_burst=3, burst_window_s=30.0)
    statuses = [api.get("/api/v2/deals").status_code for _ in range(4)]
    limited = api.get("/api/v2/deals")
    assert statuses == [200, 200, 200, 429]
    assert limited.json()["success"] is False and limited.json()["error"] == "Request over limit"
    assert limited.headers["x-ratelimit-remaining"] == "0" and int(limited.headers["retry-after"]) >= 1
    assert pipedrive.stats()["rate_limited_by_kind"] == {"burst": 2}


def test_search_has_its_own_smaller_window(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    pipedrive.configure(search_burst=2, burst_window_s=30.0)
    searches = [api.get("/api/v2/persons/search", params={"term": "an"}).status_code for _ in range(3)]
    assert searches == [200, 200, 429]
    assert api.get("/api/v2/persons").status_code == 200


def test_each_token_has_its_own_window(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    pipedrive.configure(api_token_burst=1, burst_window_s=30.0)
    assert api.get("/api/v2/persons").status_code == 200
    assert api.get("/api/v2/persons").status_code == 429
    other = pipedrive.api_token()
    assert api.get("/api/v2/persons", headers={"x-api-token": other}).status_code == 200


def test_an_exhausted_daily_budget_answers_429(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    pipedrive.configure(daily_token_budget=25)
    assert [api.get("/api/v2/persons").status_code for _ in range(3)] == [200, 200, 429]
    assert api.get("/api/v2/persons").json()["success"] is False
    assert pipedrive.stats()["budget_spent_today"] == 20


def test_writes_count_down_x_daily_requests_left(api: httpx2.Client) -> None:
    before = int(api.get("/api/v2/persons/1").headers["x-daily-requests-left"])
    after = api.patch("/api/v2/persons/1", json={"job_title": "Buyer"}).headers["x-daily-requests-left"]
    assert int(after) == before - 1


def test_configured_latency_delays_api_calls_but_not_admin_calls(
    api: httpx2.Client, pipedrive: PipedriveAdmin
) -> None:
    pipedrive.configure(latency_ms=300)
    slow = api.get("/api/v2/persons/1")
    quick = pipedrive.config()
    assert slow.elapsed.total_seconds() >= 0.3 and quick["latency_ms"] == 300
