"""Verify and Fix on a Pipedrive connection, through the CRM interface alone, over loopback:
what changed behind the cache's back is found and repaired, and every Pipedrive request is
counted against the budget shown beforehand."""

from __future__ import annotations

from typing import Any

from crm import store
from crm.config import Settings
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.runner import run_sync
from crm.sync.verify import estimate, estimate_fix, fix, verify
from tests.pdsync.pdtruth import differences, truth

TYPES = ("contacts", "companies", "deals")


def asked(company: PipedriveAdmin) -> int:
    """Requests the sandbox served on Pipedrive's API (its admin calls left out)."""
    requests: dict[str, int] = company.stats()["requests"]
    return sum(n for route, n in requests.items() if "/_sandbox/" not in route)


def found(result: Any, kind: str) -> dict[str, list[str]]:
    return {t: getattr(c, kind) for t, c in result.types.items() if getattr(c, kind)}


def test_a_freshly_synced_pipedrive_cache_verifies_clean_within_the_estimate(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    assert run_sync(pd_settings, kind="full", api=pd_api)["state"] == "succeeded"
    for full in (False, True):
        planned = estimate(pd_settings, full=full)
        before = asked(company)
        result = verify(pd_settings, full=full, api=pd_api)
        assert result.clean, {t: (c.missing, c.extra, c.stale) for t, c in result.types.items()}
        assert list(result.types) == list(TYPES) == list(planned)
        assert asked(company) - before == result.requests == result.estimate == sum(planned.values())
    people = result.types["contacts"]
    assert people.in_crm == people.cached == len(truth(company, "contacts"))


def test_a_person_changed_behind_the_caches_back_is_found_by_verify_and_fixed_by_fix(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    assert run_sync(pd_settings, kind="full", api=pd_api)["state"] == "succeeded"
    persons = sorted(company.truth("persons"), key=lambda p: p["id"])
    orgs = sorted(company.truth("organizations"), key=lambda o: o["id"])
    changed = persons[2]
    moved_to = next(o["id"] for o in orgs if o["id"] != changed.get("org_id"))
    # No webhooks are registered here: the cache hears nothing of these.
    company.patch_object("persons", changed["id"], {"name": "Changed In Pipedrive", "org_id": moved_to})
    deleted = sorted(company.truth("deals"), key=lambda d: d["id"])[0]
    company.delete_object("deals", deleted["id"])
    dropped = str(persons[5]["id"])
    with store.open(pd_settings) as db:
        db.records.delete_record("contacts", dropped)

    sample = verify(pd_settings, api=pd_api)  # the sample covers every cached record of a small company
    assert found(sample, "stale") == {"contacts": [str(changed["id"])]}
    assert found(sample, "extra") == {"deals": [str(deleted["id"])]}
    result = verify(pd_settings, full=True, api=pd_api)
    assert found(result, "stale") == {"contacts": [str(changed["id"])]}
    assert found(result, "extra") == {"deals": [str(deleted["id"])]}
    assert found(result, "missing") == {"contacts": [dropped]}

    before = asked(company)
    repaired = fix(pd_settings, result, api=pd_api)
    # A person's organization is on the person: re-reading it costs no association request.
    assert asked(company) - before == repaired.requests == estimate_fix(result) == 2
    assert repaired.complete
    assert repaired.fetched == {"contacts": 2} and repaired.removed == {"deals": 1}
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []
    with store.open(pd_settings) as db:
        assert db.queries.get_record("contacts", str(changed["id"]))["name"] == "Changed In Pipedrive"
        linked = db.queries.associated_records("contacts", str(changed["id"]), "companies")
        assert list(linked.index) == [str(moved_to)]
    assert verify(pd_settings, full=True, api=pd_api).clean


def test_the_budget_counts_pipedrives_requests_and_a_check_cut_short_reports_no_extra_record(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    assert run_sync(pd_settings, kind="full", api=pd_api)["state"] == "succeeded"
    company.delete_object("deals", sorted(company.truth("deals"), key=lambda d: d["id"])[0]["id"])

    before = asked(company)
    result = verify(pd_settings, full=True, budget=2, api=pd_api)

    assert asked(company) - before == result.requests == 2
    assert result.types["companies"].complete and not result.types["deals"].complete
    assert not result.complete and found(result, "extra") == {}
    assert (
        fix(pd_settings, verify(pd_settings, full=True, api=pd_api), budget=0, api=pd_api).complete is False
    )
