"""Persons and organizations deleted in Pipedrive, which lists no deleted ones
(docs/PIPEDRIVE_API.md §3), leave the cache at an incremental pull once a deletion sweep is
due (crm.sync.sweep), over the real loopback sandbox, on both cache backends."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import pytest

from crm import store
from crm.config import Settings
from crm.errors import RateLimited, Unreachable
from crm.interface import Page
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import OBJECT_TYPES, PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.runner import run_sync
from crm.sync.runstate import Progress
from crm.sync.sweep import FULL_PULL, DeletionSweep, SweepPolicy, looked_for_lines, sweep_cost
from tests.pdsync.pdtruth import differences, truth

TYPES = ("contacts", "companies", "deals")
HOUR_MS = 3_600_000


def sweep_due(settings: Settings, *types: str) -> None:
    """The last look for deletions of ``types`` began five hours ago (the sweep runs every 4h)."""
    with store.open(settings) as db:
        for object_type in types:
            db.syncstate.record_sweep(object_type, int(time.time() * 1000) - 5 * HOUR_MS, how=FULL_PULL)


class Lists:
    """A PipedriveApi whose ``list_page`` calls are recorded (an incremental pull reads by update
    time, so its list calls are the sweep's), with pages of ``limit`` records if given, and
    ``on_page(object_type, page)`` called after each page is read."""

    def __init__(
        self,
        api: PipedriveApi,
        *,
        limit: int | None = None,
        on_page: Callable[[str, Page], None] | None = None,
    ) -> None:
        self.api, self.limit, self.on_page = api, limit, on_page
        self.calls: list[tuple[str, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def list_page(
        self, object_type: str, *, properties: Sequence[str], cursor: str | None = None, limit: int = 100
    ) -> Page:
        self.calls.append((object_type, cursor))
        page = self.api.list_page(
            object_type, properties=properties, cursor=cursor, limit=self.limit or limit
        )
        if self.on_page is not None:
            self.on_page(object_type, page)
        return page


def test_a_deleted_person_and_organization_leave_the_cache_at_an_incremental_pull_once_a_sweep_is_due(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    run_sync(pd_settings, kind="full", api=pd_api)
    person, org = company.truth("persons")[3]["id"], company.truth("organizations")[2]["id"]
    company.delete_object("persons", person)
    company.delete_object("organizations", org)
    sweep_due(pd_settings, "contacts", "companies")

    run = run_sync(pd_settings, kind="incremental", api=pd_api)

    assert run["state"] == "succeeded", run.get("error")
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []
    assert (run["counts"]["archived"]["contacts"], run["counts"]["archived"]["companies"]) == (1, 1)
    with store.open(pd_settings) as db:
        assert db.syncstate.sweep_of("contacts")["how"] == "sweep"
        lines = looked_for_lines(db, OBJECT_TYPES, "Pipedrive", pd_settings.deletion_sweep_s)
    assert (
        lines[0].startswith("Deleted people last looked for ")
        and "by a sweep of Pipedrive's list" in lines[0]
    )
    assert lines[2].startswith("Deleted deals: Pipedrive lists them; last asked ")


def deleted_after_a_full_pull(
    settings: Settings, company: PipedriveAdmin, api: PipedriveApi, index: int, *, due: bool
) -> int:
    """Sync in full, then delete the ``index``-th person in Pipedrive; its id. ``due``: the
    sweep falls due too."""
    run_sync(settings, kind="full", api=api)
    gone = int(company.truth("persons")[index]["id"])
    company.delete_object("persons", gone)
    if due:
        sweep_due(settings, "contacts")
    return gone


def no_sweep_keeps(settings: Settings, company: PipedriveAdmin, api: PipedriveApi, gone: int) -> None:
    """An incremental pull reads no list, and the deleted person stays cached."""
    counted = Lists(api)
    run = run_sync(settings, kind="incremental", api=counted)
    assert run["state"] == "succeeded", run.get("error")
    assert counted.calls == []
    assert differences(settings, company, "contacts") == [f"contacts {gone} cached but not live"]


def test_before_a_sweep_is_due_a_deleted_person_stays_and_no_list_is_read(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    gone = deleted_after_a_full_pull(pd_settings, company, pd_api, 5, due=False)

    no_sweep_keeps(pd_settings, company, pd_api, gone)

    with store.open(pd_settings) as db:
        assert db.syncstate.sweep_of("contacts")["how"] == FULL_PULL


def test_a_sweep_the_daily_budget_cannot_afford_is_skipped_and_says_so(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    # A day of 10 requests at 50%: the full pull spent more than that already.
    settings = dataclasses.replace(pd_settings, daily_limit=10)
    gone = deleted_after_a_full_pull(settings, company, pd_api, 1, due=True)

    no_sweep_keeps(settings, company, pd_api, gone)

    with store.open(settings) as db:
        look = db.syncstate.sweep_of("contacts")
        lines = looked_for_lines(db, OBJECT_TYPES, "Pipedrive", settings.deletion_sweep_s)
    assert look["how"] == FULL_PULL and "daily budget" in str(look["skipped_why"])
    assert "next sweep due now; skipped at " in lines[0] and "a sweep needs 1" in lines[0]


def test_a_person_created_and_cached_during_the_sweep_or_created_here_unpushed_is_not_flagged(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    deleted_after_a_full_pull(pd_settings, company, pd_api, 7, due=True)
    local = "local-queued-person"
    with store.open(pd_settings) as db:
        db.records.insert_local("contacts", local, {"name": "Queued Here"}, stamp="2026-01-01T00:00:00.000Z")
    made: list[str] = []

    def create_after_the_last_page(object_type: str, page: Page) -> None:
        # Created behind the walk, and cached as a webhook delivery writes it.
        if object_type == "contacts" and page.next_cursor is None and not made:
            created = pd_api.batch_create(
                "contacts", [{"name": "Mid Sweep", "email": "mid.sweep@example.com"}]
            )
            with store.open(pd_settings) as db:
                db.records.upsert_records("contacts", created.records)
            made.append(created.records[0].id)

    run = run_sync(pd_settings, kind="incremental", api=Lists(pd_api, on_page=create_after_the_last_page))

    assert run["state"] == "succeeded", run.get("error")
    assert made and made[0] in truth(company, "contacts")
    assert run["counts"]["archived"]["contacts"] == 1
    assert differences(pd_settings, company, "contacts") == [f"contacts {local} cached but not live"]


class DropsListPages(httpx2.HTTPTransport):
    """Real loopback HTTP whose connections are refused, once ``down``, for the list at
    ``path`` read whole (not the reads by update time or by ids); it goes down after
    ``pages`` such pages went through (0: down from the start)."""

    def __init__(self, path: str, *, pages: int) -> None:
        super().__init__()
        self.path, self.until = path, pages
        self.down = pages == 0
        self.pages = self.refused = 0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        listing = not {"ids", "updated_since"} & set(request.url.params.keys())
        if request.url.path == self.path and listing:
            if self.down:
                self.refused += 1
                raise httpx2.ConnectError("connection refused", request=request)
            self.pages += 1
            self.down = self.pages >= self.until
        return super().handle_request(request)


def test_a_network_drop_mid_sweep_flags_nothing_and_the_next_pull_sweeps_again(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    deleted_after_a_full_pull(pd_settings, company, pd_api, 2, due=True)
    network = DropsListPages("/api/v2/persons", pages=1)
    client = PipedriveClient(company.url, ApiToken(company.api_token()), transport=network, max_retries=1)
    api = Lists(PipedriveApi(client), limit=10)
    try:
        with pytest.raises(Unreachable):
            run_sync(pd_settings, kind="incremental", api=api)
        with store.open(pd_settings) as db:
            # One page of ten seen, then the drop: all 40 cached persons still live, the
            # deleted one too, and the sweep still due.
            assert len(db.queries.record_stamps("contacts")) == 40
            assert db.syncstate.sweep_of("contacts")["how"] == FULL_PULL
        network.down = False
        run = run_sync(pd_settings, kind="incremental", api=Lists(pd_api, limit=10))
    finally:
        client.close()

    assert network.pages == 1
    assert run["state"] == "succeeded", run.get("error")
    assert run["counts"]["archived"]["contacts"] == 1
    assert differences(pd_settings, company, "contacts") == []


def test_a_sweep_cut_by_a_rate_limit_flags_nothing_and_a_whole_one_costs_a_request_per_page(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    deleted_after_a_full_pull(pd_settings, company, pd_api, 4, due=True)
    policy = SweepPolicy(interval_s=3600)
    pages: list[Page] = []

    def limited_at_the_second_page(object_type: str, page: Page) -> None:
        pages.append(page)
        if len(pages) == 2:
            raise RateLimited("Request over limit", retry_after=2.0)  # the client's retries spent

    cut = DeletionSweep(
        Lists(pd_api, on_page=limited_at_the_second_page), policy, Progress(), lambda: None, page_limit=10
    )
    sweep = DeletionSweep(pd_api, policy, Progress(), lambda: None, page_limit=10)

    with store.open(pd_settings) as db:
        with pytest.raises(RateLimited):
            cut.after_incremental(db, "contacts", listed=False, began_ms=int(time.time() * 1000))
        cached = len(db.queries.record_stamps("contacts"))
        assert cached == 40 and sweep.due(db, "contacts")
        before = pd_api.request_stats()["requests"]
        flagged = sweep.after_incremental(db, "contacts", listed=False, began_ms=int(time.time() * 1000))
        spent = pd_api.request_stats()["requests"] - before

    assert flagged == 1
    assert spent == sweep_cost(cached, 10) == 4


class _NoCalls:
    """A CRM API no request may reach (the sweep is skipped before its walk)."""


def test_a_sweep_skipped_before_deletions_were_ever_looked_for_says_so(cache_target: str) -> None:
    # A cache fully pulled before sweeps existed has no look recorded: the first sweep is due,
    # and here the day's allowance (1 request at 0%) cannot afford it.
    sweep = DeletionSweep(
        _NoCalls(),  # type: ignore[arg-type]
        SweepPolicy(interval_s=3600, daily_limit=1, daily_share=0.0),
        Progress(),
        lambda: None,
        page_limit=500,
    )
    with store.open(cache_target) as db:
        assert sweep.after_incremental(db, "contacts", listed=False, began_ms=int(time.time() * 1000)) is None
        lines = looked_for_lines(db, OBJECT_TYPES, "Pipedrive", 3600)

    assert len(lines) == 1, lines
    assert lines[0].startswith("Deleted people ") and "never looked for" in lines[0]
    assert "next sweep due now; skipped at " in lines[0] and "a sweep needs 1" in lines[0]
