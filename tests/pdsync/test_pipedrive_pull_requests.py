"""What a Pipedrive pull costs in requests: links come with the list pages, types walk at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import pytest

from crm import store
from crm.config import Settings
from crm.errors import Unreachable
from crm.interface import Page
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import WINDOW_SEPARATOR, PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.listpull import WINDOWS
from crm.sync.runner import run_sync
from tests.pdsync.pdtruth import differences, truth

TYPES = ("contacts", "companies", "deals")
RECORD_LISTS = {"/api/v2/persons", "/api/v2/organizations", "/api/v2/deals"}
# Bound on how long a list request waits for the other types' first pages to be in flight.
TOGETHER_S = 10.0


class CountingNetwork(httpx2.HTTPTransport):
    """Real loopback HTTP that counts requests by kind and the most list requests in flight.

    With ``together`` set, each walk's first page request (per type and window) waits (at
    most TOGETHER_S) until that many are in flight, so a pull that walked the types or the
    windows one after another would show fewer in flight.
    """

    def __init__(self, *, together: int = 0) -> None:
        super().__init__()
        self.kinds: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.together = together
        self._first_seen: set[tuple[str, str | None, str | None]] = set()
        self._lock = threading.Condition()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        params = set(request.url.params.keys())
        listing = request.url.path in RECORD_LISTS
        # by ids: what associations() reads; sorted by update time or by status: the windows'
        # probe, the catch-up reads, deleted deals; else a walk's page (whole type or window).
        kind = (
            "by-ids"
            if "ids" in params
            else "other"
            if {"sort_by", "status"} & params or not listing
            else "list"
        )
        walk = (
            request.url.path,
            request.url.params.get("updated_since"),
            request.url.params.get("updated_until"),
        )
        with self._lock:
            self.kinds[kind] += 1
            if kind == "list":
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self._lock.notify_all()
                if self.together and walk not in self._first_seen:
                    self._first_seen.add(walk)
                    self._lock.wait_for(lambda: self.in_flight >= self.together, timeout=TOGETHER_S)
        try:
            return super().handle_request(request)
        finally:
            if kind == "list":
                with self._lock:
                    self.in_flight -= 1


def _api(company: PipedriveAdmin, network: CountingNetwork) -> PipedriveApi:
    return PipedriveApi(PipedriveClient(company.url, ApiToken(company.api_token()), transport=network))


def test_a_full_pull_of_pipedrive_reads_no_associations_and_still_caches_every_link(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    network = CountingNetwork()
    api = _api(company, network)
    try:
        run = run_sync(pd_settings, kind="full", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    # The persons' organizations and the deals' persons and organizations came with the pages.
    assert network.kinds["by-ids"] == 0
    # One page per window in this small company.
    assert network.kinds["list"] == len(TYPES) * WINDOWS
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


def test_an_incremental_pull_of_pipedrive_writes_a_changed_link_without_reading_associations(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    network = CountingNetwork()
    api = _api(company, network)
    try:
        run_sync(pd_settings, kind="full", api=api)
        person = next(p for p in company.truth("persons") if p.get("org_id"))
        other = next(o["id"] for o in company.truth("organizations") if o["id"] != person["org_id"])
        company.patch_object("persons", person["id"], {"org_id": other})
        deal = company.truth("deals")[0]
        company.patch_object("deals", deal["id"], {"person_id": None})

        run = run_sync(pd_settings, kind="incremental", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    assert network.kinds["by-ids"] == 0
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


def test_a_full_pull_walks_every_type_and_every_update_time_window_at_once(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    network = CountingNetwork(together=len(TYPES) * WINDOWS)
    api = _api(company, network)
    try:
        run = run_sync(pd_settings, kind="full", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    assert network.most_in_flight == len(TYPES) * WINDOWS
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


class Windows:
    """A PipedriveApi whose persons' window pages hold ``limit`` records, whose ``fail_at``-th
    such page fails with ``error``, and which can hold the first window's walk until told."""

    def __init__(
        self, api: PipedriveApi, *, limit: int = 500, fail_at: int = 0, error: Exception | None = None
    ) -> None:
        self.api, self.limit, self.fail_at, self.error = api, limit, fail_at, error
        self.pages: list[tuple[str, str | None, int]] = []  # persons: window, cursor, records
        self.calls = 0
        self.last_window_done = threading.Event()
        self.hold_first_window = False
        self.when_last_window_done: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def list_window_page(
        self,
        object_type: str,
        window: str,
        *,
        properties: Sequence[str],
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        if object_type != "contacts":
            return self.api.list_window_page(
                object_type, window, properties=properties, cursor=cursor, limit=limit
            )
        if self.hold_first_window and window.startswith(WINDOW_SEPARATOR):
            assert self.last_window_done.wait(TOGETHER_S)
        with self._lock:
            self.calls += 1
            failing = self.calls == self.fail_at and self.error is not None
        if failing and self.error is not None:
            raise self.error
        page = self.api.list_window_page(
            object_type, window, properties=properties, cursor=cursor, limit=self.limit
        )
        with self._lock:
            self.pages.append((window, cursor, len(page.records)))
        if window.endswith(WINDOW_SEPARATOR) and page.next_cursor is None:
            for then in self.when_last_window_done:
                then()
            self.last_window_done.set()
        return page


def test_a_windowed_full_pull_cut_off_resumes_each_window_at_its_first_uncommitted_page(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    cut = Windows(pd_api, limit=3, fail_at=5, error=Unreachable("Could not reach Pipedrive"))
    with pytest.raises(Unreachable):
        run_sync(pd_settings, kind="full", api=cut)
    with store.open(pd_settings) as db:
        committed = len(db.queries.record_stamps("contacts"))
        saved = db.syncstate.get_cursor("contacts")["full_state"]
    assert len(saved["walkers"]) == WINDOWS

    again = Windows(pd_api, limit=3)
    run = run_sync(pd_settings, kind="incremental", api=again)

    assert run["state"] == "succeeded", run.get("error")
    assert run["counts"]["modes"]["contacts"] == "resume"
    # Every window went on from its saved cursor: no committed person was read again.
    assert sum(n for _, _, n in again.pages) == len(truth(company, "contacts")) - committed
    firsts = {window: cursor for window, cursor, _ in reversed(again.pages)}
    assert firsts == {w["start"]: w["after"] for w in saved["walkers"] if not w["done"]}
    assert run["counts"]["archived"].get("contacts", 0) == 0
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


def test_a_person_edited_into_a_window_already_walked_is_not_flagged_deleted(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    run_sync(pd_settings, kind="full", api=pd_api)
    oldest = min(company.truth("persons"), key=lambda p: (p["update_time"], p["id"]))
    held = Windows(pd_api)
    held.hold_first_window = True
    # Edited once the last window's walk is over: it leaves the first window, not yet walked,
    # for the last, already walked, so neither walk sees it.
    held.when_last_window_done.append(
        lambda: company.patch_object("persons", oldest["id"], {"name": "Edited Mid Walk"})
    )

    run = run_sync(pd_settings, kind="full", api=held)

    assert run["state"] == "succeeded", run.get("error")
    assert run["counts"]["archived"].get("contacts", 0) == 0
    assert differences(pd_settings, company, "contacts") == []
    assert truth(company, "contacts")[str(oldest["id"])]["properties"]["name"] == "Edited Mid Walk"


def test_pipedrives_update_time_windows_hold_every_person_once_even_one_created_after_them(
    company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    windows = pd_api.list_windows("contacts", WINDOWS)
    created = pd_api.batch_create("contacts", [{"name": "Late Person", "email": "late.person@example.com"}])
    seen: list[str] = []
    for window in windows:
        cursor: str | None = None
        while True:
            page = pd_api.list_window_page("contacts", window, properties=[], cursor=cursor, limit=7)
            seen.extend(r.id for r in page.records)
            cursor = page.next_cursor
            if cursor is None:
                break

    assert len(windows) == WINDOWS
    assert sorted(seen) == sorted(truth(company, "contacts"))
    assert created.records[0].id in seen
