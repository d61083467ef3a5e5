"""Pulling from the sandbox over loopback: full and incremental syncs end equal to HubSpot's truth.

Each runs on both backends, except those whose subject is the walkers' requests and timing
(parallel ranges, list and search at once, incremental cost, 10,000 changes in one window, a
resume by one list walker): those run on SQLite only (``sqlite_only``), the cache not their subject.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from crm import store
from crm.errors import CrmError, SyncBusy
from crm.hubspot import HubSpotClient, StaticToken
from crm.hubspot.provider import HubSpotApi
from crm.sync import SyncRunner, push, queue_edits, queue_new_contact, run_sync
from crm.sync.pull import PULL_TYPES
from tests.pgcluster import sqlite_only
from tests.sync.synchelpers import crm_requests, differences, wait_for

# Seeded timestamps lie before the anchor day; pinning it keeps every seeded record
# outside the incremental overlap whatever the time of day the suite runs.
ANCHOR = {"anchor_date": "2026-01-15"}


def test_full_sync_equals_the_sandbox_truth(sandbox, settings, db):
    sandbox.reset(seed=11, contacts=260, companies=30, deals=70, owners=5)
    run = run_sync(settings, kind="full")
    assert run["state"] == "succeeded"
    assert differences(db, sandbox) == []
    pulled = run["counts"]["records"]
    assert {t: pulled[t] for t in ("contacts", "companies", "deals")} == {
        "contacts": 260,
        "companies": 30,
        "deals": 70,
    }
    assert run["done"] == run["total"] == sum(pulled.values())
    assert db.queries.counts()["owners"] == 5
    assert db.queries.pipelines()[0]["stages"][0]["id"] == "appointmentscheduled"


def test_list_pages_carry_their_associations_so_a_list_walk_reads_none_apart(sandbox, settings, db):
    sandbox.reset(seed=11, contacts=260, companies=30, deals=70, owners=5)
    run = run_sync(settings, kind="full", walkers=1)
    assert run["state"] == "succeeded"
    assert differences(db, sandbox) == []
    # One list walk per type (no search walkers), every association inline: no v4 read at all.
    assert run["counts"]["requests_by_kind"]["assoc"] == 0
    assert run["counts"]["associations"] > 0


@sqlite_only
def test_full_pull_splits_each_type_into_parallel_id_ranges(sandbox, settings, another_cache):
    sandbox.configure(latency_ms=200, burst_limit=2000)
    at_once = {}
    for walkers in (1, 4):
        sandbox.reset(seed=3, contacts=1600, companies=0, deals=0, owners=2)  # (and its stats)
        run = run_sync(
            dataclasses.replace(settings, db=another_cache(f"w{walkers}")), kind="full", walkers=walkers
        )
        assert run["counts"]["records"]["contacts"] == 1600
        at_once[walkers] = sandbox.stats()["max_in_flight_by_path"]["GET /crm/v3/objects/contacts"]
    # 16 list pages one after another versus four ranges read at once: with 200 ms of latency
    # per request the sandbox sees the four walkers' list requests overlap, however busy the
    # machine is (a wall-clock ratio would measure the machine's load instead). Other types'
    # reads run beside them either way, so only the contacts list path is counted.
    assert at_once[4] >= at_once[1] + 2, at_once


@sqlite_only
@pytest.mark.hubspot_search_limit
def test_a_full_pull_reads_by_list_and_by_search_at_once(sandbox, settings, db):
    # Two budgets: list pages (100 records) on the burst limit, search pages (200
    # records) on search's own. A full pull that uses only one leaves half unused.
    sandbox.reset(seed=4, contacts=6000, companies=0, deals=0, owners=2, tickets=0, engagements=0)
    sandbox.configure(latency_ms=40)
    run = run_sync(settings, kind="full")
    kinds = run["counts"]["requests_by_kind"]
    requests = sandbox.stats()["requests"]
    lists = requests["GET /crm/v3/objects/{objectType}"]
    searches = requests["POST /crm/v3/objects/{objectType}/search"]
    assert run["counts"]["records"]["contacts"] == 6000
    assert differences(db, sandbox) == []
    # Besides pages of records: per type one list page finds the smallest id and one
    # lists the recycle bin, and one closing search catches up; contacts (the one type
    # with records) also has one search find its largest id.
    # (Every type the pull reads: contacts, companies, deals, tickets and five engagements.)
    record_lists, record_searches = lists - 2 * len(PULL_TYPES), searches - len(PULL_TYPES) - 1
    assert record_lists > 3 and record_searches > 3, (lists, searches, kinds)
    # Ranges are whole pages, so the pages hold the portal once, with no part-filled ones.
    assert record_lists * 100 + record_searches * 200 <= 6000 * 1.05, (lists, searches)


@sqlite_only
def test_incremental_sync_cost_grows_with_changes_not_with_portal_size(sandbox, settings, another_cache):
    sandbox.configure(**ANCHOR)
    spent = {}
    for size in (40, 600):
        sandbox.reset(seed=5, contacts=size, companies=size // 4, deals=size // 3, owners=3)
        sized = dataclasses.replace(settings, db=another_cache(str(size)))
        run_sync(sized, kind="full")
        ids = sorted(r["id"] for r in sandbox.truth("contacts"))[:3]
        for n, record_id in enumerate(ids):
            sandbox.patch_object("contacts", record_id, {"jobtitle": f"Changed {n}"})
        before = crm_requests(sandbox.stats())
        run = run_sync(sized)
        spent[size] = crm_requests(sandbox.stats()) - before
        assert run["counts"]["records"]["contacts"] == 3
        db = store.open(sized)
        assert db.queries.get_record("contacts", ids[2])["jobtitle"] == "Changed 2"
        db.close()
    assert spent[40] == spent[600], spent
    # More changes cost more: 450 changed contacts need extra search pages.
    changed = sorted(r["id"] for r in sandbox.truth("contacts"))[:450]
    with HubSpotClient(settings, StaticToken(settings.access_token)) as client:
        client.batch_update("contacts", [{"id": i, "properties": {"jobtitle": "Bulk"}} for i in changed])
    before = crm_requests(sandbox.stats())
    run_sync(sized)
    assert crm_requests(sandbox.stats()) - before > spent[600]


def test_remote_deletions_propagate_on_an_incremental_sync(sandbox, settings, db):
    run_sync(settings, kind="full")
    contact = sandbox.truth("contacts")[5]["id"]
    deal = sandbox.truth("deals")[2]["id"]
    sandbox.archive_object("contacts", contact)
    sandbox.archive_object("deals", deal)
    run = run_sync(settings)
    assert run["counts"]["archived"]["contacts"] == 1 and run["counts"]["archived"]["deals"] == 1
    assert db.queries.get_record("contacts", contact)["archived"] == 1
    assert differences(db, sandbox) == []


def test_a_record_modified_during_a_sync_is_not_missed_by_the_next(sandbox, settings, db):
    sandbox.configure(latency_ms=30, **ANCHOR)
    sandbox.reset(seed=9, contacts=800, companies=20, deals=20, owners=3)
    first = min(sandbox.truth("contacts"), key=lambda r: int(r["id"]))["id"]
    worker = threading.Thread(target=run_sync, args=(settings,), kwargs={"kind": "full"})
    worker.start()
    # Once the walkers have written records, the lowest id is behind them.
    wait_for(
        lambda: (
            (run := db.syncstate.latest_run()) and run["counts"].get("records", {}).get("contacts", 0) >= 200
        )
    )
    sandbox.patch_object("contacts", first, {"firstname": "Changed mid-sync"})
    worker.join(timeout=60)
    run_sync(settings)
    assert db.queries.get_record("contacts", first)["firstname"] == "Changed mid-sync"
    assert differences(db, sandbox) == []


def test_a_sync_through_a_fault_storm_ends_with_the_same_data(sandbox, settings, db, fast_client):
    sandbox.reset(seed=13, contacts=150, companies=20, deals=40, owners=3)
    sandbox.configure(
        slow_ms=300, faults={"429": 0.06, "500": 0.04, "502": 0.03, "503": 0.03, "drop": 0.03, "slow": 0.03}
    )
    for kind in ("full", "incremental"):
        for _attempt in range(6):  # a person pressing "Sync now" again after a failure
            try:
                run = run_sync(settings, kind=kind, client=fast_client)
                break
            except CrmError as exc:  # the storm may exhaust retries; the next try goes on
                print(f"sync attempt failed: {exc}")
        assert run["state"] == "succeeded"
    # Edits and new contacts pushed through the same storm, "Push" pressed until done.
    contacts = [r["id"] for r in sandbox.truth("contacts")][:20]
    queue_edits(settings, "contacts", {rid: {"jobtitle": f"Storm {rid}"} for rid in contacts}, by="kim")
    for n in range(5):
        queue_new_contact(settings, {"email": f"storm-{n}@example.com", "firstname": "Storm"}, by="kim")
    for _attempt in range(8):
        try:
            push(settings, by="kim", api=HubSpotApi(fast_client))
        except CrmError as exc:
            print(f"push attempt failed: {exc}")
        if db.outbox.outbox_counts()["pending"] == 0:
            break
    stats = sandbox.stats()
    assert sum(stats["faults"].values()) > 0
    sandbox.configure(faults={})
    run_sync(settings, client=fast_client)
    assert db.outbox.outbox_counts()["pending"] == db.outbox.outbox_counts()["failed"] == 0
    assert differences(db, sandbox) == []
    emails = [(r["properties"].get("email") or "").lower() for r in sandbox.truth("contacts")]
    assert len(emails) == len(set(emails)) == 155
    assert all(f"storm-{n}@example.com" in emails for n in range(5))
    ids = db.conn.execute("SELECT id FROM contacts").fetchall()
    assert len(ids) == len(set(ids)) == 155


def test_two_concurrent_sync_requests_make_one_run(sandbox, settings, db):
    sandbox.configure(latency_ms=60)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def request() -> None:
        barrier.wait()
        try:
            run_sync(settings, kind="full")
            outcomes.append("ran")
        except SyncBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["busy", "ran"]
    assert db.conn.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 1


def test_a_second_sync_now_joins_the_running_one(sandbox, settings, db):
    sandbox.configure(latency_ms=60)
    runner, other_tab = SyncRunner(settings), SyncRunner(settings)
    assert runner.start("full", started_by="kim@example.com")
    assert not other_tab.start()
    with pytest.raises(SyncBusy, match="kim@example.com"):
        run_sync(settings)
    shown = db.syncstate.latest_run()  # what the other tab shows: the running one's progress
    assert (shown["state"], shown["started_by"], shown["kind"]) == ("running", "kim@example.com", "full")
    assert runner.wait(timeout=60) and runner.last_error is None
    assert db.syncstate.latest_run()["state"] == "succeeded"
    assert not db.syncstate.is_sync_running()


def test_a_pull_keeps_pending_edits_and_turns_a_remote_change_into_a_conflict(sandbox, settings, db):
    run_sync(settings, kind="full")
    first, second = (r["id"] for r in sandbox.truth("contacts")[:2])
    queue_edits(
        settings,
        "contacts",
        {first: {"jobtitle": "Local title"}, second: {"phone": "+1 555 0100"}},
        by="kim@example.com",
    )
    sandbox.patch_object("contacts", first, {"lastname": "Remote-Lastname"})
    sandbox.patch_object("contacts", second, {"phone": "+1 555 0199"})
    run = run_sync(settings)
    assert run["counts"]["conflicts"] == 1
    mine = db.queries.get_record("contacts", first)
    assert (mine["jobtitle"], mine["lastname"]) == ("Local title", "Remote-Lastname")
    (conflict,) = db.outbox.conflicts_frame().to_dict("records")
    assert (conflict["record_id"], conflict["new_value"], conflict["remote_value"]) == (
        second,
        "+1 555 0100",
        "+1 555 0199",
    )
    assert db.queries.get_record("contacts", second)["phone"] == "+1 555 0100"


@pytest.mark.slow
@sqlite_only
def test_more_than_10000_changes_in_one_window_are_each_fetched_once(sandbox, settings, db):
    sandbox.configure(burst_limit=5000, **ANCHOR)
    sandbox.reset(seed=21, contacts=10_050, companies=0, deals=0, owners=2, tickets=0, engagements=0)
    run_sync(settings, kind="full")
    ids = [r["id"] for r in sandbox.truth("contacts")]
    with HubSpotClient(settings, StaticToken(settings.access_token)) as client:
        client.batch_update("contacts", [{"id": i, "properties": {"jobtitle": f"Title {i}"}} for i in ids])
    before = sandbox.stats()["requests"].get("POST /crm/v3/objects/{objectType}/search", 0)
    started = time.perf_counter()
    run = run_sync(settings)
    elapsed = time.perf_counter() - started
    searches = sandbox.stats()["requests"]["POST /crm/v3/objects/{objectType}/search"] - before
    assert run["counts"]["records"]["contacts"] == 10_050  # each changed record once
    assert run["counts"]["expected"]["contacts"] == 10_050  # search's total, past the cap
    # 200 per page; each re-anchored page re-reads one known record to check its place.
    # Plus one search per other type (all empty here).
    assert searches <= 10_050 // 195 + 1 + len(PULL_TYPES), searches
    assert differences(db, sandbox) == []
    print(f"incremental pull of 10,050 changes: {elapsed:.1f} s, {searches} searches")


def test_a_change_search_has_not_indexed_yet_is_caught_by_the_next_sync(sandbox, settings, db, fast_client):
    run_sync(settings, kind="full")
    # Longer than an incremental run takes, searches for nine types included (even at HubSpot's
    # 5 searches a second, which quick_search lifts here).
    sandbox.configure(index_lag_ms=5000)
    contact = sandbox.truth("contacts")[0]["id"]
    sandbox.patch_object("contacts", contact, {"jobtitle": "Lagging"})
    run_sync(settings)  # search does not show the change yet
    assert db.queries.get_record("contacts", contact)["jobtitle"] != "Lagging"

    def indexed() -> bool:
        page = fast_client.search(
            "contacts",
            filter_groups=[{"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": "Lagging"}]}],
            properties=["jobtitle"],
        )
        return page.total == 1

    wait_for(indexed, timeout=20, interval=0.2)
    run_sync(settings)  # the overlap reaches back past the previous run's start
    assert db.queries.get_record("contacts", contact)["jobtitle"] == "Lagging"


def test_pages_read_the_cache_while_a_sync_writes(sandbox, settings, db):
    sandbox.configure(latency_ms=20)
    sandbox.reset(seed=4, contacts=1500, companies=100, deals=200, owners=3)
    worker = threading.Thread(target=run_sync, args=(settings,), kwargs={"kind": "full"})
    worker.start()
    reads = 0
    while worker.is_alive():
        frame, total = db.queries.query_records("contacts", search="a", sort="lastname", limit=50)
        assert len(frame) <= 50 and total >= 0
        db.queries.counts()
        reads += 1
    worker.join()
    assert reads > 5 and db.syncstate.latest_run()["state"] == "succeeded"


# The resume from saved walker positions on both backends; resuming with one list walker
# (the walkers' logic, not the cache's) on SQLite only. At HubSpot's search pace: searches
# ten times faster ran the search walkers far ahead of the places saved when the takeover
# came (87 unsaved pages against the bound of 80 in 3 xdist workers).
@pytest.mark.hubspot_search_limit
@pytest.mark.parametrize(
    ("cache_target", "resume_walkers"),
    [("sqlite", 4), ("postgresql", 4), ("sqlite", 1)],
    ids=["sqlite-list-and-search", "postgresql-list-and-search", "sqlite-one-list-walker"],
    indirect=["cache_target"],
)
def test_a_run_that_lost_its_lease_stops_and_the_next_resumes_its_full_pull(
    sandbox, settings, db, resume_walkers
):
    # Resuming with one list walker makes it finish ranges that search walkers began.
    sandbox.configure(latency_ms=60, burst_limit=5000, **ANCHOR)
    sandbox.reset(seed=8, contacts=8000, companies=0, deals=0, owners=2)
    failures: list[BaseException] = []

    def first_run() -> None:
        try:
            run_sync(settings, kind="full")
        except CrmError as exc:
            failures.append(exc)

    worker = threading.Thread(target=first_run)
    worker.start()
    # Walkers save their place every 1,000 contacts (once their associations are read); the
    # takeover comes well before the end, or a fast run would finish first.
    wait_for(lambda: (run := db.syncstate.latest_run()) and run["done"] >= 3000)
    # Another process presumed this one dead and took the lease over.
    db.conn.execute(
        "UPDATE sync_lease SET owner = 'elsewhere:1:x', expires_at = ? WHERE name = 'sync'",
        (time.time() + 600,),
    )
    worker.join(timeout=60)
    assert failures and "lost its lease" in str(failures[0])
    cursor = db.syncstate.get_cursor("contacts")
    assert not cursor["full_complete"] and any(w["after"] for w in cursor["full_state"]["walkers"])
    assert db.conn.execute("SELECT count(*) FROM contacts WHERE archived = 1").fetchone()[0] == 0
    # What the first run saved bounds what the second may read again: how far it got before
    # the takeover depends on the machine's load, so the bound comes from its saved places.
    ids = sorted(int(r["id"]) for r in sandbox.truth("contacts"))
    unsaved_pages = sum(
        -(-_ids_left(ids, walker) // 100) + 1
        for walker in cursor["full_state"]["walkers"]
        if not walker["done"]
    )
    assert unsaved_pages < 80  # a fresh full pull of 8,000 contacts by list alone takes 80 pages
    db.conn.execute("UPDATE sync_lease SET expires_at = 0")
    before = sandbox.stats()["requests"].get("GET /crm/v3/objects/{objectType}", 0)
    run = run_sync(settings, walkers=resume_walkers)
    lists = sandbox.stats()["requests"]["GET /crm/v3/objects/{objectType}"] - before
    assert run["counts"]["modes"]["contacts"] == "resume"
    # The list route is shared by every type: each type the pull reads adds its look for the
    # smallest id and its recycle-bin page, and the resume its first look at the portal.
    assert lists <= unsaved_pages + 2 * len(PULL_TYPES) + 1
    assert differences(db, sandbox) == []


def _ids_left(ids: list[int], walker: dict) -> int:
    """How many of ``ids`` a saved walker has yet to read: from its position to its range's end."""
    after, start, end = walker.get("after"), walker.get("start"), walker.get("end")
    low = int(after) if after is not None and str(after).isdigit() else (start or 0)
    return sum(1 for i in ids if i >= low and (end is None or i < end))


def test_a_portal_with_many_custom_properties_syncs_them_all_without_414(sandbox, settings, db):
    sandbox.configure(burst_limit=5000)
    # 400 names of 40 characters: the property list alone is longer than any URL HubSpot takes.
    names = [f"custom_measure_with_a_long_name_{n:03d}" for n in range(400)]
    with HubSpotClient(settings, StaticToken(settings.access_token)) as client:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda name: client.create_property(
                        "contacts",
                        {
                            "name": name,
                            "label": name,
                            "type": "number",
                            "field_type": "number",
                            "group_name": "contactinformation",
                        },
                    ),
                    names,
                )
            )
        contact = sandbox.truth("contacts")[0]["id"]
        client.batch_update(
            "contacts", [{"id": contact, "properties": {n: str(i) for i, n in enumerate(names)}}]
        )
    run = run_sync(settings, kind="full")
    assert run["state"] == "succeeded"
    assert set(names) <= set(db.queries.synced_property_names("contacts"))
    assert db.queries.get_record("contacts", contact)[names[399]] == 399.0
    assert sandbox.stats()["responses"].get("414", 0) == 0
    assert differences(db, sandbox) == []
