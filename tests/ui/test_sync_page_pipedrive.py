"""The Sync page on a Pipedrive connection: its status, counts, history and estimates in Pipedrive's
words and figures, and Verify in Pipedrive's words."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from uikit import Portal, plain, texts, wait_until

from crm import connections, store, webhooks
from crm.errors import WebhookRejected
from crm.pipedrive_auth import connect_api_token
from crm.sandbox.pipedrive import PipedriveConfig, PipedriveServer, serve
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.store import syncstate
from crm.sync import run_sync

COMPANY = {"seed": 5, "persons": 14, "organizations": 4, "deals": 6, "users": 3}


@pytest.fixture(scope="module")
def pd_server() -> Iterator[PipedriveServer]:
    server = serve(PipedriveConfig(**COMPANY))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def company(pd_server: PipedriveServer) -> Iterator[PipedriveAdmin]:
    with PipedriveAdmin(pd_server.url) as admin:
        admin.reset(**COMPANY, tokens=True, webhooks=True, config=True)
        yield admin


@pytest.fixture
def sales(portal: Portal, company: PipedriveAdmin) -> tuple[Portal, connections.Connection]:
    """The app's only connection: a Pipedrive company connected by API token and synced once."""
    conn, _ = connect_api_token(portal.settings, company.api_token(), base_url=company.url, name="Sales")
    assert run_sync(portal.settings.for_connection(conn), kind="full", trigger="test")["state"] == "succeeded"
    return portal, conn


def _live(records: list[dict]) -> int:
    return sum(1 for r in records if not r.get("archived") and not r.get("is_deleted"))


@contextmanager
def _running_elsewhere(settings, progress: dict) -> Iterator[None]:
    """A run the CLI holds, with ``progress`` as its last heartbeat; it succeeds on exit."""
    owner = syncstate.new_owner()
    with store.open(settings) as db:
        run_id = db.syncstate.start_run(kind="full", trigger="cli", started_by="cli", owner=owner)
        assert run_id is not None
        db.syncstate.heartbeat(run_id, owner, progress)
    try:
        yield
    finally:
        with store.open(settings) as db:
            db.syncstate.finish_run(run_id, owner, state="succeeded")


def _latest_run(settings) -> dict | None:
    with store.open(settings) as db:
        return db.syncstate.latest_run()


def test_the_sync_page_of_a_pipedrive_connection_shows_its_status_counts_and_history_in_pipedrives_words(
    sales: tuple[Portal, connections.Connection], company: PipedriveAdmin
) -> None:
    portal, conn = sales
    at = portal.page("sync")
    at.run()

    assert not at.exception
    shown = texts(at)
    assert f"Connected to company {conn.account_id}" in shown
    people, organizations, deals = (_live(company.truth(e)) for e in ("persons", "organizations", "deals"))
    logged = _live(company.truth("notes")) + _live(company.truth("activities"))
    assert logged > 0
    assert [(m.label, m.value) for m in at.metric] == [
        ("People", str(people)),
        ("Organizations", str(organizations)),
        ("Deals", str(deals)),
        ("Users", str(COMPANY["users"])),
        ("Notes and activities", str(logged)),
    ]
    history = next(d.value for d in at.dataframe if "State" in d.value.columns)
    assert list(history["State"]) == ["succeeded"]
    assert (history["People"].iloc[0], history["Deals"].iloc[0]) == (people, deals)
    assert history["Notes and activities"].iloc[0] == logged
    assert not {"Contacts", "Tickets", "Interactions"} & set(history.columns)
    assert "no webhooks are registered at Pipedrive for this company" in shown
    assert "HubSpot" not in shown and "portal" not in shown


def test_refused_deliveries_for_a_pipedrive_company_show_on_its_sync_page_with_pipedrives_advice(
    sales: tuple[Portal, connections.Connection],
) -> None:
    portal, conn = sales
    meta = {"company_id": conn.account_id, "entity": "person", "action": "change", "entity_id": "1"}
    forged = base64.b64encode(b"crm-guess:guessed").decode()
    with pytest.raises(WebhookRejected):
        webhooks.receive_from(
            portal.settings, "pipedrive", method="POST", uri="/pipedrive/webhook",
            headers={"Authorization": f"Basic {forged}"}, body=json.dumps({"meta": meta}).encode(),
        )  # fmt: skip
    at = portal.page("sync")
    at.run()

    assert not at.exception
    shown = texts(at)
    assert "1 webhook request refused (" in shown
    assert "Pipedrive delivers with Basic credentials this connection no longer holds" in shown
    assert "python -m crm.subscriptions register <connection>" in shown and "PIPEDRIVE_WEBHOOK_URL" in shown
    assert "HubSpot" not in shown and "HUBSPOT" not in shown


def test_a_pipedrive_connection_is_estimated_from_its_last_full_resync(
    sales: tuple[Portal, connections.Connection],
) -> None:
    portal, conn = sales
    last = _latest_run(portal.settings.for_connection(conn))
    assert last is not None and last["kind"] == "full" and last["requests"] > 0
    at = portal.page("sync")
    at.run()

    assert not at.exception
    [estimate] = [plain(c.value) for c in at.caption if c.value.startswith("Full re-sync:")]
    # The same records are cached as that run read, so its figures are the estimate as they are.
    assert estimate.startswith(f"Full re-sync: about {last['requests']:,} requests and ")
    assert "for 24 records (from the last full re-sync)" in estimate
    assert "Pipedrive allowed 80 requests per 2 s" in estimate  # the sandbox's API-token burst
    assert "daily budget" not in estimate


def test_verify_on_a_pipedrive_connection_finds_a_person_changed_behind_the_caches_back_and_fixes_it(
    sales: tuple[Portal, connections.Connection], company: PipedriveAdmin
) -> None:
    portal, conn = sales
    at = portal.page("sync")
    at.run()
    assert not at.exception
    person = sorted(company.truth("persons"), key=lambda p: p["id"])[3]
    company.patch_object("persons", person["id"], {"name": "Renamed In Pipedrive"})  # no webhooks here
    shown = texts(at)
    assert "Compare the cache with Pipedrive: counts per type" in shown
    assert "This check makes about 6 requests (people 2, organizations 2, deals 2) and at most 6." in shown
    assert "Verify is not offered" not in shown

    at.button(key="verify_run").click().run()
    assert not at.exception
    differences = next(d.value for d in at.dataframe if "Difference" in d.value.columns)
    assert list(zip(differences["Type"], differences["Record"], differences["Difference"], strict=True)) == [
        ("people", str(person["id"]), "changed in Pipedrive since it was cached")
    ]
    assert "Fixing makes about 1 request." in texts(at)  # the person; its organization is on it
    at.button(key="verify_fix").click().run()
    assert not at.exception
    with store.open(portal.settings.for_connection(conn)) as db:
        assert db.queries.get_record("contacts", str(person["id"]))["name"] == "Renamed In Pipedrive"

    at.button(key="verify_run").click().run()
    assert "The cache matches Pipedrive (6 requests)." in texts(at)
    assert "HubSpot" not in texts(at)


def test_a_pipedrive_connection_never_fully_synced_says_no_estimate_exists_yet(
    portal: Portal, company: PipedriveAdmin
) -> None:
    connect_api_token(portal.settings, company.api_token(), base_url=company.url, name="Sales")
    at = portal.page("sync")
    at.run()

    assert not at.exception
    [estimate] = [plain(c.value) for c in at.caption if c.value.startswith("Full re-sync:")]
    assert estimate.startswith("Full re-sync: no estimate for Pipedrive until a full re-sync has run")
    assert "requests and" not in estimate


def test_sync_now_on_a_pipedrive_connection_runs_in_the_background_and_lands_in_its_history(
    sales: tuple[Portal, connections.Connection], company: PipedriveAdmin
) -> None:
    portal, conn = sales
    chosen = portal.settings.for_connection(conn)
    company.patch_object("persons", int(company.truth("persons")[0]["id"]), {"name": "Renamed In Pipedrive"})
    at = portal.page("sync")
    at.run()
    at.button(key="sync_now").click().run()

    assert not at.exception
    assert any("Sync started" in t.value for t in at.toast)
    wait_until(lambda: (_latest_run(chosen) or {}).get("trigger") == "ui", what="the run to start")
    wait_until(lambda: _latest_run(chosen)["state"] != "running", what="the background sync")
    at.run()
    history = next(d.value for d in at.dataframe if "State" in d.value.columns)
    assert list(history["Kind"]) == ["incremental", "full"] and list(history["State"]) == ["succeeded"] * 2
    with store.open(chosen) as db:
        names, _ = db.queries.query_records("contacts", limit=1000)
    assert "Renamed In Pipedrive" in set(names["name"])


def test_a_running_pipedrive_sync_shows_pipedrives_burst_window_and_no_hubspot_gauges(
    sales: tuple[Portal, connections.Connection],
) -> None:
    portal, conn = sales
    chosen = portal.settings.for_connection(conn)
    burst = {"used": 30, "limit": 40, "window_s": 2.0}  # as PipedriveApi.rate_gauges reports it
    progress = {
        "phase": "records",
        "done": 8,
        "total": 24,
        "requests": 6,
        "counts": {"budgets": {"burst": burst}},
    }
    with _running_elsewhere(chosen, progress):
        at = portal.page("sync")
        at.run()
        assert not at.exception
        bars = [str(b.proto.text) for b in at.get("progress")]

    gauges = [text for text in bars if text.startswith(("Burst", "Search", "Daily"))]
    assert gauges == ["Burst: 30 of 40 per 2 s"]


def test_a_running_pipedrive_full_pull_shows_each_type_read_side_by_side_in_pipedrives_words(
    sales: tuple[Portal, connections.Connection],
) -> None:
    portal, conn = sales
    chosen = portal.settings.for_connection(conn)
    progress = {  # as the generic pull reports three types walked at once, organizations done
        "phase": "records",
        "object_type": None,
        "done": 150,
        "total": 330,
        "counts": {
            "modes": {"contacts": "full", "companies": "full", "deals": "full", "notes": "full"},
            "records": {"contacts": 120, "companies": 30, "notes": 12},
            "expected": {"contacts": 300, "companies": 30},
            "seconds": {"companies": 1.5},
        },
    }
    with _running_elsewhere(chosen, progress):
        at = portal.page("sync")
        at.run()
        assert not at.exception
        bars = [str(b.proto.text) for b in at.get("progress")]
        shown = texts(at)

    assert "Reading records: 150 of 330 records" in bars
    assert "People 120 of 300 · Organizations 30, done · Deals 0 · Notes 12" in shown
