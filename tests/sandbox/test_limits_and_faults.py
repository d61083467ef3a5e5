"""Rate limits, latency and injected faults, as a client on loopback sees them."""

from __future__ import annotations

import concurrent.futures
import time

import httpx2
import pytest
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = "/crm/v3/objects/contacts/search"


def test_normal_responses_carry_rate_limit_headers_counting_down(api: httpx2.Client) -> None:
    first = api.get(CONTACTS, params={"limit": 1})
    second = api.get(CONTACTS, params={"limit": 1})
    assert first.headers["X-HubSpot-RateLimit-Max"] == "110"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert (
        int(second.headers["X-HubSpot-RateLimit-Remaining"])
        == int(first.headers["X-HubSpot-RateLimit-Remaining"]) - 1
    )


def test_burst_limit_answers_429_ten_secondly_rolling_with_retry_after(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    sandbox.configure(burst_limit=3)
    statuses = [api.get(CONTACTS, params={"limit": 1}).status_code for _ in range(3)]
    limited = api.get(CONTACTS, params={"limit": 1})
    assert statuses == [200, 200, 200]
    body = assert_crm_error(limited, 429)
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    assert sandbox.stats()["burst_rate_limited"] == 1


def test_retry_after_can_be_switched_off(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(burst_limit=1, retry_after=False)
    api.get(CONTACTS, params={"limit": 1})
    limited = api.get(CONTACTS, params={"limit": 1})
    assert limited.status_code == 429 and "Retry-After" not in limited.headers


def test_burst_window_rolls_and_admits_requests_again(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(burst_limit=2, burst_window_s=0.3)
    assert [api.get(CONTACTS).status_code for _ in range(3)] == [200, 200, 429]
    deadline = time.monotonic() + 5
    while api.get(CONTACTS).status_code == 429:
        assert time.monotonic() < deadline, "the window never rolled"


def test_admin_and_oauth_routes_are_not_rate_limited(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(burst_limit=1)
    for _ in range(3):
        sandbox.stats()
    assert api.get(CONTACTS).status_code == 200


def test_search_has_its_own_secondly_limit_without_rate_limit_headers(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    sandbox.configure(search_limit=2, burst_limit=1)
    ok = [api.post(SEARCH, json={}) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in ok[0].headers)
    limited = api.post(SEARCH, json={})
    body = assert_crm_error(limited, 429)
    assert body["policyName"] == "SECONDLY" and body["errorType"] == "RATE_LIMIT"
    assert "secondly" in body["message"]
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in limited.headers)
    # Searches did not spend the burst budget (limit 1): a list call still passes.
    assert api.get(CONTACTS).status_code == 200


def test_url_longer_than_the_limit_is_414(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(max_url_length=500)
    properties = ",".join(f"custom_property_{i}" for i in range(40))
    response = api.get(CONTACTS, params={"properties": properties})
    assert_crm_error(response, 414)
    assert api.get(CONTACTS, params={"properties": "email"}).status_code == 200


def test_latency_is_per_request_so_concurrent_requests_overlap(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    sandbox.configure(latency_ms=300)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: api.get(CONTACTS, params={"limit": 1}).status_code, range(8)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 8
    assert 0.3 <= elapsed < 8 * 0.3 / 2, f"8 requests of 300 ms took {elapsed:.2f} s"


@pytest.mark.parametrize(
    ("status", "category"),
    [(500, "INTERNAL_ERROR"), (502, "SERVICE_UNAVAILABLE"), (503, "SERVICE_UNAVAILABLE")],
)
def test_fail_next_serves_server_errors_in_hubspots_dialect(
    api: httpx2.Client, sandbox: SandboxAdmin, status: int, category: str
) -> None:
    sandbox.fail_next(CONTACTS, status=status, count=2)
    assert_crm_error(api.get(CONTACTS), status, category)
    assert_crm_error(api.get(CONTACTS), status, category)
    assert api.get(CONTACTS).status_code == 200


def test_fail_next_429_looks_like_a_burst_limit(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.fail_next("/crm/v3/objects/", status=429)
    body = assert_crm_error(api.get(CONTACTS), 429)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert sandbox.stats()["faults"] == {"429": 1}


def test_fail_next_only_matches_its_method_and_path(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.fail_next(SEARCH, status=503, method="POST")
    assert api.get(CONTACTS).status_code == 200
    assert api.post(SEARCH, json={}).status_code == 503


def test_dropped_connection_closes_the_socket_without_a_response(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    sandbox.fail_next(CONTACTS, status="drop")
    with pytest.raises(httpx2.RemoteProtocolError):
        api.get(CONTACTS)
    assert api.get(CONTACTS).status_code == 200


def test_slow_fault_delays_the_response(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(slow_ms=400)
    sandbox.fail_next(CONTACTS, status="slow")
    started = time.monotonic()
    assert api.get(CONTACTS).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_random_fault_rates_apply_to_crm_routes_only(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(faults={"503": 1.0})
    assert api.get(CONTACTS).status_code == 503
    assert sandbox.stats()["faults"]["503"] == 1
    sandbox.configure(faults={"503": 0.5, "429": 0.5})
    statuses = {api.get(CONTACTS).status_code for _ in range(30)}
    assert statuses == {429, 503}


def test_unknown_fault_kind_is_refused(sandbox: SandboxAdmin) -> None:
    with pytest.raises(httpx2.HTTPStatusError) as caught:
        sandbox.configure(faults={"418": 0.5})
    assert caught.value.response.status_code == 400
