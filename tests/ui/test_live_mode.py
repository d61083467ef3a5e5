"""The Sync page in demo mode with CRM_LIVE=journal: webhooks off, the journal polled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from uikit import Portal, texts, wait_until

from crm import journal, store
from crm.config import load_settings


@pytest.fixture
def journal_portal(portal: Portal) -> Iterator[Portal]:
    secrets = {**portal.secrets, "CRM_LIVE": "journal", "CRM_LIVE_POLL": "1"}
    settings = load_settings({}, secrets).for_sandbox(portal.sandbox.url)
    journal_mode = Portal(sandbox=portal.sandbox, secrets=secrets, settings=settings)
    portal.sandbox.configure(webhook_url="")
    journal_mode.connect()
    journal_mode.sync("full")
    yield journal_mode
    journal.stop_poller(settings)


def test_sync_page_shows_journal_mode_its_lag_and_the_merges_it_followed(journal_portal: Portal) -> None:
    settings = journal_portal.settings
    at = journal_portal.page("sync")
    at.run()  # the app starts its journal poller
    assert not at.exception
    wait_until(lambda: (journal.journal_status(settings)["gap"] or {}).get("state") == "closed",
               what="the poller's catch-up sync")  # fmt: skip
    contacts = sorted((str(r["id"]) for r in journal_portal.sandbox.truth("contacts")), key=int)
    merged = journal_portal.sandbox.merge("contacts", contacts[0], contacts[1])
    wait_until(lambda: bool(journal.live_overview(settings)["merge_notes"]), what="the merge")

    at.run()

    assert not at.exception
    shown = texts(at)
    assert "Live updates: journal, lag" in shown
    assert "Mode journal (CRM_LIVE): CRM_LIVE=journal." in shown
    assert "Merges followed (1)" in [e.label for e in at.expander]
    assert f"contact {contacts[0]}, {contacts[1]} merged into {merged['id']} in HubSpot" in shown


def test_sync_page_warns_while_a_gap_in_the_journal_is_being_closed(portal: Portal) -> None:
    # One poll at start, the next five minutes later: the gap stays open while the page is read.
    secrets = {**portal.secrets, "CRM_LIVE": "journal", "CRM_LIVE_POLL": "300"}
    settings = load_settings({}, secrets).for_sandbox(portal.sandbox.url)
    journal_mode = Portal(sandbox=portal.sandbox, secrets=secrets, settings=settings)
    portal.sandbox.configure(webhook_url="")
    journal_mode.connect()
    journal_mode.sync("full")
    with store.open(settings) as db:
        db.meta.put(journal.OFFSET, "an-offset-the-journal-forgot")  # as after days switched off
    try:
        at = journal_mode.page("sync")
        at.run()  # the app starts its poller, whose first poll finds the offset gone
        wait_until(lambda: (journal.journal_status(settings)["gap"] or {}).get("state") == "closing",
                   what="the poller to notice the gap")  # fmt: skip

        at.run()

        assert not at.exception
        [warning] = [w.value for w in at.warning if "no longer holds" in w.value]
        assert "incremental sync closes the gap" in warning
        assert "Closing a gap in live updates" in texts(at)
    finally:
        journal.stop_poller(settings)
