"""Journal mode end to end: the app polls HubSpot's webhooks journal, no webhooks, no sync."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from crm import journal, store
from crm.config import Settings
from crm.sandbox.admin import SandboxAdmin
from tests.webhooks.deliveries import wait_until

Make = Callable[[], journal.JournalPoller]


def cached(settings: Settings, object_type: str, record_id: str) -> dict[str, Any]:
    with store.open(settings) as db:
        return db.queries.get_record(object_type, record_id) or {}


def run_count(settings: Settings) -> int:
    with store.open(settings) as db:
        return len(db.syncstate.run_history(limit=100))


def gap(settings: Settings) -> dict[str, Any]:
    return journal.journal_status(settings)["gap"] or {}


def contact_ids(sandbox: SandboxAdmin) -> list[str]:
    return sorted((str(r["id"]) for r in sandbox.truth("contacts") if not r["archived"]), key=int)


def started(poller: journal.JournalPoller, settings: Settings) -> None:
    """Poll until the catch-up sync that a first start after a sync begins has finished."""

    def caught_up() -> bool:
        assert poller.tick()["polled"]
        return gap(settings).get("state") == "closed"

    wait_until(caught_up, within=30, interval=0.3)


def test_a_hubspot_edit_reaches_the_cache_through_the_journal_without_webhooks_or_a_sync(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make
) -> None:
    poller = journal.ensure_poller(synced)
    wait_until(lambda: gap(synced).get("state") == "closed", within=30)
    runs = run_count(synced)
    contact = contact_ids(sandbox)[5]

    sandbox.patch_object("contacts", contact, {"firstname": "Journalled", "jobtitle": "Poller"})

    wait_until(lambda: cached(synced, "contacts", contact).get("firstname") == "Journalled", within=15)
    assert cached(synced, "contacts", contact)["jobtitle"] == "Poller"
    assert run_count(synced) == runs  # no sync brought it
    deliveries = sandbox.webhooks()
    deliveries = deliveries.get("deliveries", deliveries) if isinstance(deliveries, dict) else deliveries
    assert not deliveries  # and no webhook either
    overview = journal.live_overview(synced)
    assert overview["mode"] == "journal" and overview["enabled"] is False
    status = overview["journal"]
    assert status["polling"] and poller.holds_lease
    assert status["lag_s"] is not None and status["lag_s"] < 30
    assert status["last_event"]["what"].startswith(f"contact {contact}:")


def test_an_offset_past_retention_is_reported_and_the_gap_closed_by_an_incremental_sync(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make, caplog: pytest.LogCaptureFixture
) -> None:
    first = pollers()
    started(first, synced)
    before, missed = contact_ids(sandbox)[1:3]
    sandbox.patch_object("contacts", before, {"jobtitle": "Seen live"})
    first.tick()
    assert cached(synced, "contacts", before)["jobtitle"] == "Seen live"
    first.stop()  # the app is off...

    sandbox.patch_object("contacts", missed, {"jobtitle": "Changed while away"})
    assert sandbox.age_journal(4 * 86_400) == 0  # ...for four days: the journal forgot it all
    runs = run_count(synced)

    with caplog.at_level(logging.WARNING, logger="crm.journal"):
        again = pollers()  # the app starts again
        assert again.tick()["polled"]
    assert any("out of retention" in r.getMessage() for r in caplog.records)
    assert "no longer holds" in gap(synced)["text"]
    wait_until(lambda: bool(again.tick()) and gap(synced).get("state") == "closed", within=30, interval=0.3)
    assert cached(synced, "contacts", missed)["jobtitle"] == "Changed while away"
    assert run_count(synced) == runs + 1
    assert gap(synced)["run_id"] is not None

    # Live again from the newest entry on.
    sandbox.patch_object("contacts", missed, {"jobtitle": "Live again"})
    again.tick()
    assert cached(synced, "contacts", missed)["jobtitle"] == "Live again"


def test_the_offset_is_kept_across_a_restart_and_no_entry_is_taken_twice(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make
) -> None:
    first = pollers()
    started(first, synced)
    one, two = contact_ids(sandbox)[7:9]
    sandbox.patch_object("contacts", one, {"jobtitle": "First"})
    assert first.tick()["entries"] == 1
    saved = journal.journal_status(synced)["offset"]
    received = journal.live_overview(synced)["received"]
    first.stop()

    sandbox.patch_object("contacts", two, {"jobtitle": "Second"})
    restarted = pollers()
    assert journal.journal_status(synced)["offset"] == saved
    result = restarted.tick()

    assert result["entries"] == 1  # only the entry written while it was off
    assert cached(synced, "contacts", two)["jobtitle"] == "Second"
    assert journal.live_overview(synced)["received"] == received + 1
    assert journal.journal_status(synced)["offset"] != saved


def test_one_process_polls_at_a_time_and_another_takes_over_when_it_stops(
    synced: Settings, pollers: Make
) -> None:
    first, second = pollers(), pollers()
    assert first.tick()["polled"]
    assert second.tick() == {"polled": False, "reason": "standby"}
    first.stop()
    assert second.tick()["polled"]
    assert first.tick() == {"polled": False, "reason": "standby"}


def test_a_refused_client_secret_is_shown_and_not_asked_again_at_every_poll(
    synced: Settings, pollers: Make
) -> None:
    poller = journal.JournalPoller(dataclasses.replace(synced, client_secret="not-the-secret"))
    try:
        result = poller.tick()
        assert result["polled"] is False and "HUBSPOT_CLIENT_SECRET" in result["error"]
        assert poller.tick() == {"polled": False, "reason": "backoff"}
        assert "HUBSPOT_CLIENT_SECRET" in journal.journal_status(synced)["last_error"]
        assert journal.journal_status(synced)["offset"] is None  # nothing was taken
    finally:
        poller.stop()


def test_an_association_made_in_hubspot_arrives_through_the_journal(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make, sandbox_token: str
) -> None:
    poller = pollers()
    started(poller, synced)
    contact = contact_ids(sandbox)[12]
    company = sorted((str(r["id"]) for r in sandbox.truth("companies")), key=int)[-1]
    with store.open(synced) as db:
        assert company not in set(db.queries.associated_records("contacts", contact, "companies").index)

    response = httpx2.put(
        f"{sandbox.url}/crm/v4/objects/contacts/{contact}/associations/default/companies/{company}",
        headers={"Authorization": f"Bearer {sandbox_token}"},
    )
    assert response.status_code < 300
    poller.tick()

    with store.open(synced) as db:
        assert company in set(db.queries.associated_records("contacts", contact, "companies").index)
