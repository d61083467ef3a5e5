"""The daily budget against the sandbox's daily limit: a sync pauses at its share and resumes.

The sandbox counts every CRM request against ``daily_limit`` and reports it in HubSpot's
``X-HubSpot-RateLimit-Daily*`` headers; ``POST /_sandbox/daily`` turns its day. Our own day
turns at midnight, so the tests move the client's clock instead of waiting for it.

The budget's own tests run on SQLite only: their subject is counting requests against the day
and pausing and resuming at its turn (the first takes 20-35 s a backend), not the cache.
Resuming from saved positions on PostgreSQL is tests/sync/test_pull.py's and test_crash.py's;
the owed association reads a pause leaves, kept in the sync state, stay on both backends here.
The pulls of 900 and 4,000 contacts need more than HubSpot's burst window allows (110
requests per 10 s), so the sandbox's burst limit is raised for them: they waited out windows
(11.7 s -> 7.3 s a pause test) for a limit that is tests/client/test_limits.py's subject.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time

import pytest

from crm import oauth, store
from crm.__main__ import main as cli_main
from crm.errors import DailyBudgetSpent
from crm.hubspot import limits_for
from crm.sync import SyncRunner, pull, run_sync, runner
from crm.sync.pull import PULL_TYPES
from crm.sync.runner import DAILY_SPEND_KEY
from tests.pgcluster import sqlite_only
from tests.sync.synchelpers import crm_requests, differences, wait_for

PORTAL = {"seed": 21, "contacts": 900, "companies": 60, "deals": 120, "owners": 3}
# Big enough that a pause lands inside the contacts' ranges, not after them.
LARGER = {**PORTAL, "contacts": 4000, "deals": 300}


class Clock:
    """A wall clock the test moves forward (the budget's day follows it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _full_cost(sandbox, settings) -> int:
    """Requests a full sync of the portal costs with no daily limit (the first run's cache is dropped)."""
    sandbox.configure(daily_limit=0)
    before = crm_requests(sandbox.stats())
    assert run_sync(settings, kind="full")["state"] == "succeeded"
    cost = crm_requests(sandbox.stats()) - before
    with store.open(settings) as db:
        db.syncstate.forget_cursors()
        db.meta.put(DAILY_SPEND_KEY, None)
    return cost


@sqlite_only
def test_a_full_sync_pauses_at_its_share_of_the_daily_limit_and_resumes_the_next_day(
    sandbox, settings, db, monkeypatch
):
    sandbox.reset(**LARGER)
    sandbox.configure(burst_limit=5000)
    cost = _full_cost(sandbox, settings)
    # Half of this limit is half of what the pull needs: it takes two days or more (each run
    # starts with the same metadata reads, a large share of so small a pull).
    daily_limit = cost
    allowance = daily_limit // 2
    sandbox.configure(daily_limit=daily_limit)
    sandbox.daily(used=0)
    settings = dataclasses.replace(settings, daily_budget=0.5)
    clock = Clock(1_800_000_000.0)  # 2027-01-15 08:00 UTC
    budget = limits_for(oauth.token_source(settings).portal_key).daily
    monkeypatch.setattr(budget, "clock", clock)  # its day turns on the next count
    db.syncstate.forget_cursors()

    paused = run_sync(settings, kind="full")

    assert paused["state"] == "paused"
    assert "daily budget is spent" in paused["error"]
    assert f"of {allowance:,} requests" in paused["error"]
    # Not one request beyond this app's share: HubSpot's own count says so. (We count every
    # request sent; HubSpot does not count one it refused with a burst 429, so under load its
    # count can be lower by those.)
    assert paused["counts"]["budgets"]["daily"]["used"] == allowance
    assert allowance - paused["rate_limited"] <= sandbox.daily()["used"] <= allowance
    # The portal's account is on US/Eastern time: its day turns at 05:00 UTC.
    assert paused["counts"]["budgets"]["daily"]["time_zone"] == "US/Eastern"
    assert paused["counts"]["resume_at"] == pytest.approx(1_800_000_000.0 + 21 * 3600)
    unfinished = [t for t in PULL_TYPES if not db.syncstate.get_cursor(t)["full_complete"]]
    assert unfinished, "the pull paused with nothing left to do"

    # Another run the same day (the CLI, a scheduled slot) stops at once and spends nothing.
    used_today = sandbox.daily()["used"]
    again = run_sync(settings, kind="incremental")
    assert again["state"] == "paused" and sandbox.daily()["used"] == used_today
    out = io.StringIO()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", settings.access_token)
    monkeypatch.setenv("HUBSPOT_BASE_URL", settings.base_url)
    monkeypatch.setenv("CRM_DB", settings.db)
    assert cli_main(["sync"], out=out, err=io.StringIO()) == 1  # paused: finished with problems
    assert "daily budget is spent" in out.getvalue().splitlines()[-1]
    assert sandbox.daily()["used"] == used_today
    cli_main(["status"], out=out, err=io.StringIO())
    status = out.getvalue()
    assert "Last sync:   paused" in status
    assert "resumes after 2027-01-16 05:00 UTC" in status
    assert f"Daily budget: {allowance:,} of {allowance:,} requests used on 2027-01-15" in status

    # The day turns for HubSpot and for us: each next run goes on from the saved positions.
    spent = [used_today]
    runs = [paused]
    while runs[-1]["state"] == "paused" and len(runs) < 6:
        sandbox.daily(used=0)
        clock.now += 24 * 3600
        runs.append(run_sync(settings, kind="incremental"))
        spent.append(sandbox.daily()["used"])

    states = [r["state"] for r in runs]
    assert states[-1] == "succeeded" and set(states[:-1]) == {"paused"}, (cost, allowance, spent)
    assert differences(db, sandbox) == []
    # Each day goes on where the last stopped: every contact is read exactly once in all.
    # Pages whose associations the pause left unread are saved with their positions and
    # those reads owed (SyncState.owe_associations), so no page is read again.
    read = sum(r["counts"]["records"].get("contacts", 0) for r in runs)
    assert read == 4000, [r["counts"]["records"] for r in runs]
    # Every day stays within this app's share of it.
    assert max(spent) <= allowance, (spent, allowance)


@sqlite_only
def test_without_daily_headers_the_budget_is_unknown_and_a_sync_never_pauses(sandbox, settings):
    sandbox.reset(**PORTAL)
    sandbox.configure(daily_limit=0)  # as for OAuth apps: HubSpot sends no daily headers

    run = run_sync(settings, kind="full")

    assert run["state"] == "succeeded"
    daily = run["counts"]["budgets"]["daily"]
    assert (daily["source"], daily["limit"], daily["allowance"]) == ("unknown", None, None)
    assert daily["used"] >= run["requests"]


@sqlite_only
def test_without_daily_headers_a_configured_limit_is_counted_against(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    sandbox.configure(daily_limit=0)
    settings = dataclasses.replace(settings, daily_limit=100, daily_budget=0.4)
    before = crm_requests(sandbox.stats())

    run = run_sync(settings, kind="full")

    assert run["state"] == "paused"
    daily = run["counts"]["budgets"]["daily"]
    assert (daily["source"], daily["limit"], daily["allowance"], daily["used"]) == ("configured", 100, 40, 40)
    # The pull stops at 40; the one request beside them is the account-info read that
    # identifies the portal, sent before the portal (and so its budget) was known.
    assert crm_requests(sandbox.stats()) - before == 40 + 1
    assert json.loads(db.meta.get(DAILY_SPEND_KEY))["used"] == 40


@sqlite_only
def test_the_app_starts_a_paused_sync_again_once_the_day_has_turned(sandbox, settings, db, monkeypatch):
    monkeypatch.setattr(runner, "RESUME_GRACE_S", 0.0)
    app_runner = SyncRunner(settings)
    # A run that paused, its resume moment now (the day turned while the app kept running).
    app_runner._resume_later({"id": 7, "state": "paused", "counts": {"resume_at": time.time()}})

    wait_for(lambda: (run := db.syncstate.latest_run()) and run["trigger"] == "resume", timeout=120)
    # Read the run once the runner is done with it: between its last write and the lease's
    # release a reader may see it as running without a live lease, shown as interrupted.
    app_runner.wait(timeout=120)
    resumed = db.syncstate.latest_run()

    # Nothing was ever pulled in full here, so the resumed run reads everything: a full run.
    assert (resumed["trigger"], resumed["started_by"], resumed["kind"]) == (
        "resume",
        "daily budget",
        "full",
    )
    assert resumed["state"] == "succeeded"
    assert differences(db, sandbox) == []


@pytest.mark.parametrize(
    "portal",
    [PORTAL, LARGER],
    ids=["at-the-last-read", "mid-walk-with-pages-in-flight"],
)
def test_a_pause_that_stops_an_association_read_owes_it_and_the_next_run_reads_no_record_twice(
    sandbox, settings, db, monkeypatch, portal
):
    """The race the walkers' reserve cannot rule out: requests in flight on other threads
    spend what was kept for the association writer, so a read meets the pause: its last one
    (900 contacts, one chunk), or one while walkers still hand over pages (4,000)."""
    sandbox.reset(**portal)
    sandbox.configure(burst_limit=5000)
    # No associations inline on list pages: every contact's association read is the writer's.
    monkeypatch.setattr(pull, "INLINE_ASSOCIATION_TYPES", {})
    real = pull.Puller._read_associations
    stopped: list[str] = []

    def paused_once(self, db_, object_type, ids):
        if object_type == "contacts" and ids and not stopped:
            stopped.append(object_type)
            raise DailyBudgetSpent("The daily budget is spent.", resume_at=time.time())
        return real(self, db_, object_type, ids)

    monkeypatch.setattr(pull.Puller, "_read_associations", paused_once)
    first = run_sync(settings, kind="full")

    assert first["state"] == "paused" and stopped
    assert db.syncstate.get_cursor("contacts")["full_state"]["owed"]
    runs = [first]
    while runs[-1]["state"] == "paused" and len(runs) < 4:
        runs.append(run_sync(settings, kind="incremental"))
    assert runs[-1]["state"] == "succeeded"
    # Every contact read exactly once in all...
    assert sum(r["counts"]["records"].get("contacts", 0) for r in runs) == portal["contacts"]
    assert differences(db, sandbox) == []  # ...and the owed associations are in
    assert db.syncstate.get_cursor("contacts")["full_complete"]
