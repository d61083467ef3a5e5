"""A Pipedrive connection synced through the generic pull equals the sandbox's truth."""

from __future__ import annotations

from crm import store
from crm.config import Settings
from crm.interface import Option, Property
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.runner import run_sync
from tests.pdsync.pdtruth import custom_differences, differences, truth

TYPES = ("contacts", "companies", "deals")


def test_a_full_pull_equals_the_sandboxs_truth_with_links_owners_and_stages(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    run = run_sync(pd_settings, kind="full", api=pd_api)

    assert run["state"] == "succeeded", run.get("error")
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []
        assert custom_differences(pd_settings, company, object_type) == []
    # The run also counts the notes and activities it read, by kind (the Sync page's history).
    assert {t: run["counts"]["records"][t] for t in TYPES} == {t: len(truth(company, t)) for t in TYPES}
    with store.open(pd_settings) as db:
        assert len(db.queries.owner_ids()) == company.config()["users"]
        stages = {s["id"] for p in db.queries.pipelines("deals") for s in p.get("stages", [])}
        assert {str(d["stage_id"]) for d in company.truth("deals")} <= stages


def test_a_several_option_field_is_stored_as_the_editing_grid_and_validation_read_it(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    """A Pipedrive "set" field is stored as an enumeration with the checkbox field type and
    options in the store's shape, as a HubSpot multi-checkbox is (what validation and the
    grid read), not under a type of its own that nothing reads."""
    options = (Option("1", "Chess"), Option("2", "Sailing"))
    made = pd_api.create_property(
        "contacts", Property(name="", label="Hobbies", type="multi", options=options)
    )
    assert run_sync(pd_settings, kind="full", api=pd_api)["state"] == "succeeded"
    with store.open(pd_settings) as db:
        hobbies = db.queries.property_defs("contacts")[made.name]
    assert (hobbies["type"], hobbies["field_type"]) == ("enumeration", "checkbox")
    assert [(o["label"], o["display_order"]) for o in hobbies["options"]] == [("Chess", 0), ("Sailing", 1)]


def test_an_incremental_pull_brings_edits_creations_and_deleted_deals(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    run_sync(pd_settings, kind="full", api=pd_api)
    persons = [p for p in company.truth("persons") if p.get("org_id")]
    deals = company.truth("deals")
    company.patch_object("persons", persons[0]["id"], {"name": "Renamed In The UI"})
    company.patch_object("persons", persons[1]["id"], {"org_id": None})
    company.patch_object("deals", deals[0]["id"], {"title": "Bigger deal", "value": 999})
    created = pd_api.batch_create("contacts", [{"name": "New Person", "email": "new.person@example.com"}])
    company.delete_object("deals", deals[1]["id"])

    run = run_sync(pd_settings, kind="incremental", api=pd_api)

    assert run["state"] == "succeeded", run.get("error")
    # Notes and activities join the modes by kind (crm.sync.listpull_interactions).
    assert {t: run["counts"]["modes"][t] for t in TYPES} == {t: "incremental" for t in TYPES}
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []
    assert created.records[0].id in truth(company, "contacts")
    assert run["counts"]["archived"]["deals"] == 1


def test_a_deleted_person_leaves_the_cache_at_the_next_full_pull(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    """Pipedrive lists no deleted persons, so an incremental pull cannot see the deletion
    (README: the generic pull's limits); the next full pull flags what it did not see."""
    run_sync(pd_settings, kind="full", api=pd_api)
    gone = company.truth("persons")[3]["id"]
    company.delete_object("persons", gone)

    run_sync(pd_settings, kind="incremental", api=pd_api)
    assert differences(pd_settings, company, "contacts") == [f"contacts {gone} cached but not live"]

    run = run_sync(pd_settings, kind="full", api=pd_api)
    assert differences(pd_settings, company, "contacts") == []
    assert run["counts"]["archived"]["contacts"] == 1
