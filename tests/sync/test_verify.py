"""Reconcile against the sandbox over loopback: what differs is reported, fixed, and the
request budget shown beforehand is never exceeded.

Tests that start after a full sync of the small portal start on a copy of one made once per
session and backend (``synced``, tests/sync/conftest.py): the sync is not their subject.
"""

from __future__ import annotations

from crm.sync import run_sync
from crm.sync.verify import estimate, estimate_fix, fix, verify
from tests.sync.synchelpers import crm_requests, differences


def found(result, kind: str) -> dict[str, list[str]]:
    return {t: getattr(c, kind) for t, c in result.types.items() if getattr(c, kind)}


def live_ids(sandbox, object_type: str) -> list[str]:
    return sorted((r["id"] for r in sandbox.truth(object_type) if not r["archived"]), key=int)


def test_a_freshly_synced_cache_verifies_clean_by_sample_and_in_full(sandbox, settings, db, synced):
    for full in (False, True):
        result = verify(settings, full=full)
        assert result.clean, {t: (c.missing, c.extra, c.stale) for t, c in result.types.items()}
        contacts = result.types["contacts"]
        assert contacts.in_crm == contacts.cached == len(live_ids(sandbox, "contacts"))
        assert result.requests == result.estimate


def test_a_change_behind_the_apps_back_a_deletion_and_a_record_missing_from_the_cache_are_reported_and_fixed(
    sandbox, settings, db, synced
):
    changed, deleted, dropped = live_ids(sandbox, "contacts")[3:6]
    deal = live_ids(sandbox, "deals")[0]
    sandbox.patch_object("contacts", changed, {"jobtitle": "Changed in HubSpot"})  # no webhooks here
    sandbox.patch_object("deals", deal, {"dealname": "Renamed in HubSpot"})
    sandbox.archive_object("contacts", deleted)
    db.records.delete_record("contacts", dropped)

    for full in (True, False):  # a sample of a 40-contact portal covers all of it
        result = verify(settings, full=full)
        assert found(result, "stale") == {"contacts": [changed], "deals": [deal]}, full
        assert found(result, "extra") == {"contacts": [deleted]}, full
        assert found(result, "missing") == {"contacts": [dropped]}, full
        assert not result.clean

    before = crm_requests(sandbox.stats())
    repaired = fix(settings, result)
    assert crm_requests(sandbox.stats()) - before == repaired.requests <= estimate_fix(result)
    assert repaired.complete
    assert repaired.fetched == {"contacts": 2, "deals": 1} and repaired.removed == {"contacts": 1}
    assert db.queries.get_record("contacts", changed)["jobtitle"] == "Changed in HubSpot"
    assert db.queries.get_record("contacts", deleted)["archived"] == 1
    assert db.queries.get_record("contacts", dropped) is not None
    assert differences(db, sandbox) == []
    assert verify(settings, full=True).clean


def test_the_budget_caps_the_requests_and_a_cut_short_check_reports_nothing_it_did_not_walk(
    sandbox, settings, db
):
    sandbox.reset(seed=3, contacts=500, companies=20, deals=30, owners=2)
    run_sync(settings, kind="full")
    planned = estimate(settings, full=True)
    assert planned["contacts"] == 3  # 500 ids in pages of 200, known before any request

    before = crm_requests(sandbox.stats())
    result = verify(settings, full=True, budget=2)

    assert crm_requests(sandbox.stats()) - before == result.requests == 2
    assert not result.complete and not result.types["contacts"].complete
    # The 100 contacts past the walked pages are not reported as gone from HubSpot.
    assert found(result, "extra") == {} and found(result, "missing") == {}
    assert result.types["contacts"].checked == 400


def test_a_fix_stops_at_its_budget_and_keeps_an_extra_record_hubspot_still_has(sandbox, settings, db, synced):
    result = verify(settings, full=True)
    present = live_ids(sandbox, "companies")[0]
    result.types["companies"].extra.append(present)  # as a search that lagged would report it

    assert fix(settings, result, budget=0).complete is False
    repaired = fix(settings, result)
    assert repaired.kept == {"companies": 1} and repaired.removed == {}
    assert db.queries.get_record("companies", present)["archived"] == 0
