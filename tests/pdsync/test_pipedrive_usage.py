"""A Pipedrive run counts its requests, retries and 429s, and reports Pipedrive's burst window,
as a HubSpot run does (``crm.interface.ReportsUsage``): the history and gauges are not zeros.

On SQLite only: the subject is the client's request and 429 counts and the budget it reports,
not the cache. The 429 test's window is 1 s, not Pipedrive's 2 s (Retry-After is whole seconds,
at least 1): the same 429s and waits in about half the time (15 s -> 8 s).
"""

from __future__ import annotations

from crm.config import Settings
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.runner import run_sync
from tests.pgcluster import sqlite_only

pytestmark = sqlite_only


def _api_calls(company: PipedriveAdmin) -> dict[str, int]:
    """What the sandbox answered on its API (not its admin routes), by route."""
    return {route: n for route, n in company.stats()["requests"].items() if "/_sandbox/" not in route}


def test_a_pipedrive_run_counts_every_request_it_sent_and_reports_the_burst_window(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    before = sum(_api_calls(company).values())

    run = run_sync(pd_settings, kind="full", api=pd_api)

    assert run["state"] == "succeeded"
    assert run["requests"] == sum(_api_calls(company).values()) - before > 0
    assert (run["retries"], run["rate_limited"]) == (0, 0)
    burst = run["counts"]["budgets"]["burst"]
    assert (burst["limit"], burst["window_s"]) == (80, 2.0)  # the sandbox's API-token burst per 2 s
    assert 0 <= burst["used"] <= 80
    assert set(run["counts"]["budgets"]) == {"burst"}  # no daily figure Pipedrive does not send


def test_429s_over_pipedrives_burst_limit_are_counted_as_rate_limited_and_retried(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    company.configure(api_token_burst=4, burst_window_s=1.0)

    run = run_sync(pd_settings, kind="full", api=pd_api)

    assert run["state"] == "succeeded"
    refused = company.stats()["rate_limited"]
    assert run["rate_limited"] == refused > 0
    assert run["retries"] >= refused
    assert run["counts"]["budgets"]["burst"]["limit"] == 4
