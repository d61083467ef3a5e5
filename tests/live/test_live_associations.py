"""Association changes arrive live, so a healthy live feed spares the incremental pull its
association re-reads; anything less than healthy keeps them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2

from crm import journal, store, sync
from crm.config import Settings
from crm.sandbox.admin import SandboxAdmin
from tests.webhooks.deliveries import wait_until

Make = Callable[[], journal.JournalPoller]


def association_reads(stats: dict[str, Any]) -> int:
    return sum(
        n for route, n in stats["requests"].items() if "/associations/" in route and "batch/read" in route
    )


def caught_up(poller: journal.JournalPoller, settings: Settings) -> None:
    def closed() -> bool:
        assert poller.tick()["polled"]
        return (journal.journal_status(settings)["gap"] or {}).get("state") == "closed"

    wait_until(closed, within=30, interval=0.3)


def changed_contacts(sandbox: SandboxAdmin, title: str) -> list[str]:
    ids = sorted((str(r["id"]) for r in sandbox.truth("contacts") if not r["archived"]), key=int)[20:23]
    for record_id in ids:
        sandbox.patch_object("contacts", record_id, {"jobtitle": title})
    return ids


def linked_companies(settings: Settings, contact: str) -> set[str]:
    with store.open(settings) as db:
        return set(db.queries.associated_records("contacts", contact, "companies").index)


def test_an_incremental_pull_leaves_associations_to_a_healthy_journal_and_reads_them_when_it_stops(
    sandbox: SandboxAdmin, synced: Settings, pollers: Make, sandbox_token: str
) -> None:
    poller = pollers()
    caught_up(poller, synced)
    ids = changed_contacts(sandbox, "Live")
    company = sorted((str(r["id"]) for r in sandbox.truth("companies")), key=int)[-1]
    response = httpx2.put(
        f"{sandbox.url}/crm/v4/objects/contacts/{ids[0]}/associations/default/companies/{company}",
        headers={"Authorization": f"Bearer {sandbox_token}"},
    )
    assert response.status_code < 300
    poller.tick()
    assert journal.associations_arrive_live(synced) == (True, "the journal is polled")

    before = sandbox.stats()
    healthy = sync.run_sync(synced, trigger="test")
    healthy_reads = association_reads(sandbox.stats()) - association_reads(before)

    assert healthy["counts"]["records"]["contacts"] >= 3
    assert healthy_reads == 0
    assert company in linked_companies(synced, ids[0])  # the journal brought it, not the pull

    poller.stop()  # nobody polls now: changes could sit unread in the journal
    live, why = journal.associations_arrive_live(synced)
    assert (live, why) == (False, "no process polls the journal")
    changed_contacts(sandbox, "Not live")
    before = sandbox.stats()
    sync.run_sync(synced, trigger="test")
    assert association_reads(sandbox.stats()) - association_reads(before) >= 1


def overview(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"mode": "webhooks", "enabled": True, "failed": 0, "last_error": None}
    return {**base, **fields}


def test_webhooks_count_as_healthy_only_once_one_arrived_and_none_was_refused_or_given_up() -> None:
    assert journal.live_health(overview(last_event_at=None)) == (False, "no webhook has arrived yet")
    assert journal.live_health(overview(last_event_at=1.0))[0] is True
    assert journal.live_health(overview(last_event_at=1.0, failed=2))[0] is False
    assert journal.live_health(overview(last_event_at=1.0, last_error="Unreachable"))[0] is False
    assert journal.live_health(overview(last_event_at=1.0, enabled=False))[0] is False
    assert journal.live_health(overview(last_event_at=1.0, rejected={"bad_signature": 1}))[0] is False
    assert journal.live_health(overview(last_event_at=1.0, rejected={"bad_signature": 0}))[0] is True
    assert journal.live_health({"mode": "off"})[0] is False


def test_a_journal_closing_a_gap_or_far_behind_is_not_healthy() -> None:
    polled = {"polling": True, "lag_s": 3.0, "gap": {"state": "closed"}, "last_error": None}
    assert journal.live_health(overview(mode="journal", journal=polled))[0] is True
    closing = {**polled, "gap": {"state": "closing"}}
    assert journal.live_health(overview(mode="journal", journal=closing))[0] is False
    behind = {**polled, "lag_s": journal.HEALTHY_LAG_S + 1}
    assert journal.live_health(overview(mode="journal", journal=behind))[0] is False
