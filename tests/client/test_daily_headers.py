"""The client reads HubSpot's daily-limit headers and never retries a DAILY 429 (loopback sandbox)."""

from __future__ import annotations

import time

import pytest

from crm.errors import DailyBudgetSpent, DailyLimitReached
from crm.hubspot import HubSpotClient


def test_the_daily_headers_set_the_limit_and_what_is_left(client: HubSpotClient, sandbox):
    sandbox.configure(daily_limit=1000)
    sandbox.daily(used=100)  # other apps of the portal spent 100 today

    client.list_page("contacts", properties=["email"])
    client.search("contacts", limit=1)  # counts, but reports no headers

    daily = client.limits.daily.snapshot()
    assert (daily["source"], daily["limit"], daily["allowance"]) == ("headers", 1000, 500)
    assert daily["used"] == 2
    assert daily["remaining"] == 898 == 1000 - sandbox.daily()["used"]


def test_without_daily_headers_the_limit_stays_unknown(client: HubSpotClient, sandbox):
    sandbox.configure(daily_limit=0)  # HubSpot sends OAuth apps no daily headers

    client.list_page("contacts", properties=["email"])

    daily = client.limits.daily.snapshot()
    assert (daily["source"], daily["limit"], daily["remaining"], daily["used"]) == ("unknown", None, None, 1)
    assert not client.limits.daily.spent()


def test_a_daily_429_is_not_retried_and_says_when_the_day_turns(client: HubSpotClient, sandbox):
    sandbox.configure(daily_limit=50)
    sandbox.daily(used=50)

    started = time.monotonic()
    with pytest.raises(DailyLimitReached) as caught:
        client.list_page("contacts", properties=["email"])

    assert time.monotonic() - started < 1.0
    assert client.stats.snapshot()["requests"] == 1 and client.stats.snapshot()["retries"] == 0
    assert caught.value.resume_at == client.limits.daily.next_reset()
    assert "daily request limit" in str(caught.value)
    assert client.limits.daily.spent()


def test_a_client_held_to_the_daily_budget_refuses_to_send_past_it(client: HubSpotClient, sandbox):
    sandbox.configure(daily_limit=10)
    sandbox.daily(used=0)
    client.within_daily_budget = True  # as a sync sets it; 50% of 10 is 5

    for _ in range(5):
        client.list_page("contacts", properties=["email"], limit=1)
    with pytest.raises(DailyBudgetSpent):
        client.list_page("contacts", properties=["email"], limit=1)

    assert sandbox.daily()["used"] == 5
    client.within_daily_budget = False  # an edit pushed by hand still goes out
    client.list_page("contacts", properties=["email"], limit=1)
    assert sandbox.daily()["used"] == 6
