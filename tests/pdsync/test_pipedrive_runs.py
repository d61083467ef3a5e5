"""Pipedrive runs through the runner: resumes, rate limits, errors, history, Sync all.

Each runs on both backends (resume state and history are the cache's), except the pull over
the burst limit, on SQLite only: its subject is the client waiting out 429s, which the cache
takes no part in. Its window is 1 s, not Pipedrive's 2 s (a 429's Retry-After is whole
seconds, at least 1): the same waits, twice as many per second (15 s -> 9 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx2
import pytest

from crm import store
from crm.config import Settings
from crm.crms import provider_for
from crm.errors import CrmError, RateLimited, Unreachable
from crm.interface import INTERACTION_KINDS, Page
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.listpull import ListPuller
from crm.sync.runner import SyncRunner, run_sync
from crm.sync.runstate import Progress
from crm.sync.several import sync_all
from tests.pdsync.conftest import open_api
from tests.pdsync.pdtruth import differences
from tests.pgcluster import sqlite_only

TYPES = ("contacts", "companies", "deals")


class SmallPages:
    """A PipedriveApi whose list pages hold ``limit`` records and whose ``fail_at``-th list
    call for persons fails with ``error``, as the client raises once its own retries are spent
    (counted per type: the pull walks the types at once, so their calls interleave)."""

    def __init__(self, api: PipedriveApi, *, limit: int, fail_at: int = 0, error: Exception | None = None):
        self.api, self.limit, self.fail_at, self.error = api, limit, fail_at, error
        self.calls: list[tuple[str, str | None]] = []

    def __getattr__(self, name: str) -> Any:
        # One walk per type, as small pages make it (no WindowedList: windows would read
        # the real API's pages; windowed walks have their own tests).
        if name in ("list_windows", "list_window_page"):
            raise AttributeError(name)
        return getattr(self.api, name)

    def list_page(
        self, object_type: str, *, properties: Sequence[str], cursor: str | None = None, limit: int = 100
    ) -> Page:
        self.calls.append((object_type, cursor))
        if object_type == "contacts" and len(self.persons()) == self.fail_at and self.error is not None:
            raise self.error
        return self.api.list_page(object_type, properties=properties, cursor=cursor, limit=self.limit)

    def persons(self) -> list[str | None]:
        """The cursors the persons' list calls were made with, in order."""
        return [cursor for object_type, cursor in self.calls if object_type == "contacts"]


def test_a_full_pull_still_rate_limited_after_the_clients_retries_resumes_at_its_first_uncommitted_page(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    # 40 persons in pages of 10: the walk fails on its third page, as the client raises
    # RateLimited once its own waits are spent.
    error = RateLimited("Request over limit", retry_after=2.0)
    cut = SmallPages(pd_api, limit=10, fail_at=3, error=error)
    with pytest.raises(type(error)):
        run_sync(pd_settings, kind="full", api=cut)
    with store.open(pd_settings) as db:
        failed = db.syncstate.latest_run()
        assert failed is not None and failed["state"] == "failed"
        assert failed["error"].startswith(type(error).__name__)
        assert len(db.queries.record_stamps("contacts")) == 20

    again = SmallPages(pd_api, limit=10)
    run = run_sync(pd_settings, kind="incremental", api=again)

    assert run["state"] == "succeeded"
    assert run["counts"]["modes"]["contacts"] == "resume"
    persons = again.persons()
    assert len(persons) == 2 and persons[0] == cut.persons()[2]  # pages 3 and 4 only
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


class DroppingNetwork(httpx2.HTTPTransport):
    """Real loopback HTTP whose connections are refused, once ``down``, for the persons list
    walk's pages (not the reads by id or by update time)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.person_pages: list[str | None] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        listing = not {"ids", "updated_since"} & set(request.url.params.keys())
        if request.url.path == "/api/v2/persons" and listing:
            if self.down:
                raise httpx2.ConnectError("connection refused", request=request)
            self.person_pages.append(request.url.params.get("cursor"))
            if len(self.person_pages) == 2:
                self.down = True  # the network drops after the second page
        return super().handle_request(request)


def test_a_network_drop_mid_walk_loses_nothing_and_the_next_run_goes_on_from_the_saved_cursor(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    network = DroppingNetwork()
    client = PipedriveClient(company.url, ApiToken(company.api_token()), transport=network, max_retries=1)
    api = SmallPages(PipedriveApi(client), limit=10)
    try:
        with pytest.raises(Unreachable):
            run_sync(pd_settings, kind="full", api=api)
        with store.open(pd_settings) as db:
            assert len(db.queries.record_stamps("contacts")) == 20
        network.down = False
        run = run_sync(pd_settings, kind="incremental", api=api)
    finally:
        client.close()

    assert run["state"] == "succeeded"
    # Pages 1 and 2 before the drop; after it, page 3 (from the saved cursor) and page 4.
    assert len(network.person_pages) == 4 and network.person_pages[2] == api.persons()[2]
    assert network.person_pages[2] is not None
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


@sqlite_only
def test_a_pull_over_pipedrives_burst_limit_waits_and_finishes(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    company.configure(api_token_burst=4, burst_window_s=1.0)

    run = run_sync(pd_settings, kind="full", api=pd_api)

    assert run["state"] == "succeeded", run.get("error")
    assert company.stats()["rate_limited"] > 0
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


def test_a_refused_token_fails_the_run_with_needs_reconnect_in_its_history(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    api = open_api(pd_settings, company, token="not-a-token")
    try:
        with pytest.raises(CrmError):
            run_sync(pd_settings, kind="full", api=api)
    finally:
        api.close()
    with store.open(pd_settings) as db:
        history = db.syncstate.run_history()
    assert [r["state"] for r in history] == ["failed"]
    assert history[0]["error"].startswith("NeedsReconnect")


def test_a_background_run_leaves_its_progress_and_history_for_the_sync_page(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    runner = SyncRunner(pd_settings, client_factory=lambda chosen: open_api(chosen, company))
    assert runner.start("full", started_by="test")
    assert runner.wait(timeout=60)

    assert runner.last_error is None
    with store.open(pd_settings) as db:
        run = db.syncstate.latest_run()
        assert db.syncstate.last_success() is not None
    assert run is not None and run["state"] == "succeeded" and run["started_by"] == "test"
    assert run["phase"] == "done"
    assert run["done"] == sum(run["counts"]["records"].values()) > 0
    # Beside the types, the notes and activities read, by kind (the history's column).
    assert set(TYPES) <= set(run["counts"]["records"]) <= set(TYPES) | set(INTERACTION_KINDS)


def test_sync_all_includes_a_pipedrive_connection_and_its_first_run_is_called_full(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    """The Sync page's *Sync all* asks for an incremental sync; a connection never synced
    reads everything, and its history says so ("Full re-sync"); the next one is incremental."""
    account = str(company.config()["company_id"])
    with store.open(pd_settings) as db:
        conn = db.connections.add(crm="pipedrive", account_id=account, name="Sandbox", base_url=company.url)

    def sync_everything() -> None:
        outcomes = sync_all(
            pd_settings,
            kind="incremental",
            connections=[conn],
            client_factory=lambda chosen: open_api(chosen, company),
        )
        assert [o.ok for o in outcomes] == [True], [o.error for o in outcomes]

    sync_everything()
    chosen = pd_settings.for_connection(conn)
    for object_type in TYPES:
        assert differences(chosen, company, object_type) == []
    sync_everything()
    with store.open(chosen) as db:
        history = db.syncstate.run_history()
    assert [(r["kind"], r["state"]) for r in history] == [("incremental", "succeeded"), ("full", "succeeded")]


def test_a_full_resync_cut_off_mid_walk_flags_nothing_deleted(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    run_sync(pd_settings, kind="full", api=pd_api)
    cut = SmallPages(pd_api, limit=10, fail_at=2, error=Unreachable("Could not reach Pipedrive"))
    with pytest.raises(Unreachable):
        run_sync(pd_settings, kind="full", api=cut)

    # Thirty persons were not seen again before the cut: all still live.
    with store.open(pd_settings) as db:
        assert len(db.queries.record_stamps("contacts")) == 40
    run = run_sync(pd_settings, kind="incremental", api=SmallPages(pd_api, limit=10))
    assert run["counts"]["modes"]["contacts"] == "resume"
    assert run["counts"]["expected"]["contacts"] == 40  # the cached records, for the progress bar
    assert run["counts"]["archived"].get("contacts", 0) == 0
    assert differences(pd_settings, company, "contacts") == []


def test_a_full_pull_reading_its_types_side_by_side_names_no_single_current_type(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    progress = Progress()
    named: set[str | None] = set()

    class Watched(SmallPages):
        def list_page(self, object_type: str, **kwargs: Any) -> Page:
            named.add(progress.snapshot()["object_type"])
            return super().list_page(object_type, **kwargs)

    with store.open(pd_settings) as db:
        run_id = db.syncstate.start_run(kind="full", trigger="test", started_by="test", owner="test")
    assert run_id is not None
    with open_api(pd_settings, company) as api:
        types = provider_for("pipedrive").object_types()
        ListPuller(store.target_of(pd_settings), Watched(api, limit=5), types, progress, run_id).run("full")

    assert named == {None}
    assert set(TYPES) <= set(progress.snapshot()["counts"]["records"]) <= set(TYPES) | set(INTERACTION_KINDS)
