"""Notes and activities deleted in Pipedrive, which lists no deleted ones (docs/PIPEDRIVE_API.md
§9), leave the timeline at an incremental pull once a look for deletions is due, under the
record sweep's interval and budget (crm.sync.listpull_interactions, crm.sync.sweep), over the
real loopback sandbox."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from crm import store
from crm.config import Settings
from crm.errors import RateLimited, Unreachable
from crm.interface import Interaction
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import OBJECT_TYPES, PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.listpull_interactions import InteractionsPull, interaction_plans
from crm.sync.runner import run_sync
from crm.sync.runstate import Progress, feed_key
from crm.sync.sweep import FULL_PULL, DeletionSweep, SweepPolicy, looked_for_lines, sweep_cost
from tests.pdsync.test_deletion_sweep import DropsListPages
from tests.pdsync.test_pipedrive_timeline_pull import KINDS, differences
from tests.pgcluster import sqlite_only

HOUR_MS = 3_600_000
FEEDS = ("notes", "activities")


def looks_due(settings: Settings, *feeds: str) -> None:
    """The last look for deletions of ``feeds`` began five hours ago (looks run every 4h)."""
    with store.open(settings) as db:
        for feed in feeds:
            db.syncstate.record_sweep(feed_key(feed), int(time.time() * 1000) - 5 * HOUR_MS, how=FULL_PULL)


class Feeds:
    """A PipedriveApi whose feed reads are recorded (``reads``: feed and whether it was a full
    read), and ``after(feed, batch)`` called after each batch of a full read was taken."""

    def __init__(
        self, api: PipedriveApi, after: Callable[[str, list[Interaction]], None] | None = None
    ) -> None:
        self.api, self.after = api, after
        self.reads: list[tuple[str, bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def iter_interactions(self, feed: str, *, since_ms: int | None = None) -> Iterator[list[Interaction]]:
        self.reads.append((feed, since_ms is None))
        for batch in self.api.iter_interactions(feed, since_ms=since_ms):
            yield batch
            if since_ms is None and self.after is not None:
                self.after(feed, batch)


def synced_then_deleted(
    settings: Settings, company: PipedriveAdmin, api: PipedriveApi
) -> list[tuple[str, str]]:
    """Sync in full, then delete a note and an activity in Pipedrive; their (kind, id)."""
    assert run_sync(settings, kind="full", api=api)["state"] == "succeeded"
    note, activity = company.truth("notes")[2], company.truth("activities")[3]
    company.delete_object("notes", note["id"])
    company.delete_object("activities", activity["id"])
    return [("notes", str(note["id"])), (KINDS.get(activity["type"], "tasks"), str(activity["id"]))]


def archived(settings: Settings, items: list[tuple[str, str]]) -> list[int]:
    with store.open(settings) as db:
        return [db.interactions.get(kind, item)["archived"] for kind, item in items]  # type: ignore[index]


def test_a_deleted_note_and_activity_leave_the_timeline_at_an_incremental_pull_once_a_look_is_due(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    gone = synced_then_deleted(pd_settings, company, pd_api)
    looks_due(pd_settings, *FEEDS)
    feeds = Feeds(pd_api)

    run = run_sync(pd_settings, kind="incremental", api=feeds)

    assert run["state"] == "succeeded", run.get("error")
    assert differences(pd_settings, company) == []
    assert archived(pd_settings, gone) == [1, 1]
    # The full read was the look and the incremental read both: no read by update time besides.
    assert sorted(feeds.reads) == [("activities", True), ("notes", True)]
    with store.open(pd_settings) as db:
        lines = looked_for_lines(db, OBJECT_TYPES, "Pipedrive", pd_settings.deletion_sweep_s)
        plans = interaction_plans(db, pd_api, "incremental")
    assert plans == {"notes": "incremental", "activities": "incremental"}
    for feed in FEEDS:
        line = next(x for x in lines if x.startswith(f"Deleted {feed} last looked for "))
        assert "by a sweep of Pipedrive's list; next sweep due " in line and "due now" not in line

    # Not due again: the next incremental pull reads by update time only.
    again = Feeds(pd_api)
    assert run_sync(pd_settings, kind="incremental", api=again)["state"] == "succeeded"
    assert sorted(again.reads) == [("activities", False), ("notes", False)]


def test_a_look_the_daily_budget_cannot_afford_is_skipped_and_says_so(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    # A day of 10 requests at 50%: the full pull spent more than that already.
    settings = dataclasses.replace(pd_settings, daily_limit=10)
    gone = synced_then_deleted(settings, company, pd_api)
    looks_due(settings, *FEEDS)
    feeds = Feeds(pd_api)

    run = run_sync(settings, kind="incremental", api=feeds)

    assert run["state"] == "succeeded", run.get("error")
    assert sorted(feeds.reads) == [("activities", False), ("notes", False)]
    assert archived(settings, gone) == [0, 0]
    with store.open(settings) as db:
        look = db.syncstate.sweep_of(feed_key("notes"))
        lines = looked_for_lines(db, OBJECT_TYPES, "Pipedrive", settings.deletion_sweep_s)
    assert look["how"] == FULL_PULL and "daily budget" in str(look["skipped_why"])
    for feed in FEEDS:
        line = next(x for x in lines if x.startswith(f"Deleted {feed} last looked for "))
        assert "by a full pull; next sweep due now; skipped at " in line and "a sweep needs 1" in line


def test_a_note_cached_by_a_webhook_during_the_look_or_made_here_unpushed_is_not_flagged(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    gone = synced_then_deleted(pd_settings, company, pd_api)
    looks_due(pd_settings, "notes")
    local = "local-queued-note"
    with store.open(pd_settings) as db:
        db.interactions.insert_local(
            "notes",
            local,
            {"hs_note_body": "Queued here"},
            [("contacts", "1")],
            stamp="2026-01-01T00:00:00.000Z",
        )
    made: list[str] = []

    def webhook_after_the_last_batch(feed: str, batch: list[Interaction]) -> None:
        # Created behind the walk, and cached as the webhook worker reads it back.
        if feed == "notes" and not made:
            reply = httpx2.post(
                f"{company.url}/api/v1/notes",
                headers={"x-api-token": company.api_token()},
                json={"content": "<p>Mid look</p>", "person_id": 1},
            )
            made.append(str(reply.json()["data"]["id"]))
            with store.open(pd_settings) as db:
                db.interactions.upsert_interactions(pd_api.read_interactions("notes", made), kinds=("notes",))

    run = run_sync(pd_settings, kind="incremental", api=Feeds(pd_api, webhook_after_the_last_batch))

    assert run["state"] == "succeeded", run.get("error")
    assert made and run["counts"]["archived"]["notes"] == 1
    assert archived(pd_settings, [gone[0], ("notes", made[0]), ("notes", local)]) == [1, 0, 0]


def test_a_network_drop_mid_look_flags_nothing_and_the_next_pull_looks_again(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    gone = synced_then_deleted(pd_settings, company, pd_api)
    looks_due(pd_settings, *FEEDS)
    network = DropsListPages("/api/v2/activities", pages=0)
    client = PipedriveClient(company.url, ApiToken(company.api_token()), transport=network, max_retries=1)
    try:
        with pytest.raises(Unreachable):
            run_sync(pd_settings, kind="incremental", api=PipedriveApi(client))
        with store.open(pd_settings) as db:
            look = db.syncstate.sweep_of(feed_key("activities"))
            # Still an incremental pull next time (asked about the budget), not a full read.
            plans = interaction_plans(db, pd_api, "incremental")
        assert network.refused > 0 and archived(pd_settings, gone[1:]) == [0]
        assert look["how"] == FULL_PULL and plans["activities"] == "incremental"
        network.down = False
        run = run_sync(pd_settings, kind="incremental", api=PipedriveApi(client))
    finally:
        client.close()

    assert run["state"] == "succeeded", run.get("error")
    assert archived(pd_settings, gone) == [1, 1]
    assert differences(pd_settings, company) == []


@sqlite_only
def test_a_look_cut_by_a_rate_limit_flags_nothing_and_a_whole_one_costs_a_request_per_page(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    gone = synced_then_deleted(pd_settings, company, pd_api)[:1]
    looks_due(pd_settings, "notes")

    def limited(feed: str, batch: list[Interaction]) -> None:
        raise RateLimited("Request over limit", retry_after=2.0)  # the client's retries spent

    def pull(api: Any) -> None:
        sweep = DeletionSweep(api, SweepPolicy(interval_s=3600), Progress(), lambda: None, page_limit=500)
        InteractionsPull(pd_settings.db, api, Progress(), 0, check=lambda: None, sweep=sweep).pull(
            "notes", "incremental"
        )

    with pytest.raises(RateLimited):
        pull(Feeds(pd_api, limited))  # every live note read, but the walk did not reach its end
    assert archived(pd_settings, gone) == [0]
    with store.open(pd_settings) as db:
        assert db.syncstate.sweep_of(feed_key("notes"))["how"] == FULL_PULL
        cached = db.interactions.counts()["notes"]
    before = pd_api.request_stats()["requests"]
    pull(pd_api)
    spent = pd_api.request_stats()["requests"] - before

    assert archived(pd_settings, gone) == [1]
    assert spent == sweep_cost(cached, 500) == 1
