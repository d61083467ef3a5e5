"""HubSpotClient against the loopback sandbox: objects, batch, search, definitions."""

from __future__ import annotations

import uuid

import pytest

from crm.errors import AlreadyExists, NotFound, ValidationFailed
from crm.hubspot import LAST_MODIFIED, HubSpotClient, Record
from crm.hubspot.models import inline_associations_from_wire, iso_to_ms

CONTACT_PROPS = ["email", "firstname", "lastname", "jobtitle", "lastmodifieddate"]


def truth_by_id(sandbox, object_type: str) -> dict[str, dict]:
    return {str(r["id"]): r for r in sandbox.truth(object_type)}


def live_ids(sandbox, object_type: str) -> set[str]:
    return {i for i, r in truth_by_id(sandbox, object_type).items() if not r.get("archived")}


def test_paging_walks_every_contact_once_and_translates_wire_names(client: HubSpotClient, sandbox):
    pages = list(client.iter_pages("contacts", properties=CONTACT_PROPS))
    records = [r for page in pages for r in page.records]
    assert [r.id for r in records] == sorted({r.id for r in records}, key=int)
    assert {r.id for r in records} == live_ids(sandbox, "contacts")
    assert pages[-1].next_after is None and all(p.next_after for p in pages[:-1])
    truth = truth_by_id(sandbox, "contacts")
    for record in records:
        assert "hs_object_id" not in record.properties
        assert record.properties["email"] == truth[record.id]["properties"].get("email")
        assert record.created_at and record.updated_at and not record.archived


def test_archived_listing_returns_only_archived_records(client: HubSpotClient, sandbox):
    victim = sorted(live_ids(sandbox, "contacts"), key=int)[3]
    sandbox.archive_object("contacts", victim)
    archived = [
        r for page in client.iter_pages("contacts", properties=["email"], archived=True) for r in page.records
    ]
    assert [r.id for r in archived] == [victim] and archived[0].archived
    live = [r.id for page in client.iter_pages("contacts", properties=["email"]) for r in page.records]
    assert victim not in live


def test_hundreds_of_properties_never_overflow_the_url(client: HubSpotClient, sandbox):
    sandbox.configure(max_url_length=8_192)
    created = client.create_property(
        "contacts",
        {
            "name": "zz_last_custom",
            "label": "Last custom",
            "type": "string",
            "field_type": "text",
            "group_name": "contactinformation",
        },
    )
    first_id = min(live_ids(sandbox, "contacts"), key=int)
    client.batch_update("contacts", [{"id": first_id, "properties": {"zz_last_custom": "far down the list"}}])
    # 400 names of ~40 characters: about 16,000 characters if they all went into the query string.
    padding = [f"custom_property_number_{i:03d}_with_a_long_name" for i in range(400)]
    properties = ["email", *padding, created["name"]]
    before = sandbox.stats()
    page = client.list_page("contacts", properties=properties, limit=100)
    after = sandbox.stats()
    record = next(r for r in page.records if r.id == first_id)
    assert record.properties["zz_last_custom"] == "far down the list"
    assert record.properties["email"] == truth_by_id(sandbox, "contacts")[first_id]["properties"]["email"]
    assert _count_status(after, 414) == _count_status(before, 414)
    # One list call plus one batch read, however many chunks the names would need.
    assert _total_requests(after) - _total_requests(before) == 2
    one = client.get_object("contacts", first_id, properties=properties)
    assert one.properties["zz_last_custom"] == "far down the list"


def test_get_object_by_id_or_email_and_not_found(client: HubSpotClient, sandbox):
    truth = truth_by_id(sandbox, "contacts")
    record_id = sorted(live_ids(sandbox, "contacts"), key=int)[5]
    email = truth[record_id]["properties"]["email"]
    by_id = client.get_object("contacts", record_id, properties=["email", "firstname"])
    by_email = client.get_object("contacts", email, properties=["email"], id_property="email")
    assert by_id.id == by_email.id == record_id and by_id.properties["email"] == email
    with pytest.raises(NotFound) as caught:
        client.get_object("contacts", "999999999", properties=["email"])
    assert caught.value.status_code == 404 and caught.value.correlation_id


def test_batch_read_leaves_unknown_ids_out(client: HubSpotClient, sandbox):
    ids = sorted(live_ids(sandbox, "contacts"), key=int)[:3]
    records = client.batch_read("contacts", [*ids, "888888888"], properties=["email"])
    assert sorted(r.id for r in records) == sorted(ids)


def test_batch_update_applies_good_inputs_and_names_the_bad_field(client: HubSpotClient, sandbox):
    good, bad = sorted(live_ids(sandbox, "contacts"), key=int)[:2]
    result = client.batch_update(
        "contacts",
        [
            {"id": good, "properties": {"jobtitle": "Chief Tester"}},
            {"id": bad, "properties": {"email": "not an email"}},
        ],
    )
    assert [r.id for r in result.records] == [good]
    assert result.records[0].properties["jobtitle"] == "Chief Tester"
    assert len(result.errors) == 1
    error = result.errors[0]
    assert isinstance(error, ValidationFailed) and "email" in error.field_errors
    assert error.body["context"]["objectWriteTraceId"] == [bad]
    truth = truth_by_id(sandbox, "contacts")
    assert truth[good]["properties"]["jobtitle"] == "Chief Tester"
    assert truth[bad]["properties"]["email"] != "not an email"


def test_batch_upsert_on_email_creates_once_and_updates_after(client: HubSpotClient, sandbox):
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    first = client.batch_upsert(
        "contacts", [{"id": email, "properties": {"firstname": "Ada"}}], id_property="email"
    )
    again = client.batch_upsert(
        "contacts", [{"id": email, "properties": {"firstname": "Ada B."}}], id_property="email"
    )
    assert first.created_ids == [first.records[0].id] and again.created_ids == []
    assert again.records[0].id == first.records[0].id
    matches = [r for r in sandbox.truth("contacts") if r["properties"].get("email") == email]
    assert len(matches) == 1 and matches[0]["properties"]["firstname"] == "Ada B."


def test_batch_create_reports_a_bad_input_alone(client: HubSpotClient, sandbox):
    good = f"good-{uuid.uuid4().hex[:8]}@example.com"
    result = client.batch_create(
        "contacts",
        [
            {"properties": {"email": good, "firstname": "Grace"}},
            {"properties": {"email": "broken@", "firstname": "Bad"}, "object_write_trace_id": "row-2"},
        ],
    )
    assert [r.properties.get("email") for r in result.records] == [good]
    assert len(result.errors) == 1 and result.errors[0].body["context"]["objectWriteTraceId"] == ["row-2"]
    assert isinstance(result.errors[0], ValidationFailed) and "email" in result.errors[0].field_errors


def test_batch_archive_removes_records_from_lists(client: HubSpotClient, sandbox):
    ids = sorted(live_ids(sandbox, "deals"), key=int)[:2]
    client.batch_archive("deals", ids)
    assert not set(ids) & live_ids(sandbox, "deals")


def test_search_filters_and_pages(client: HubSpotClient, sandbox):
    truth = truth_by_id(sandbox, "contacts")
    target = sorted(live_ids(sandbox, "contacts"), key=int)[7]
    email = truth[target]["properties"]["email"]
    page = client.search(
        "contacts",
        filter_groups=[{"filters": [{"property_name": "email", "operator": "EQ", "value": email}]}],
        properties=["email"],
    )
    assert [r.id for r in page.records] == [target] and page.total == 1 and page.next_after is None
    first = client.search("contacts", sorts=["-createdate"], properties=["email"], limit=10)
    assert first.total == len(live_ids(sandbox, "contacts")) and len(first.records) == 10 and first.next_after


def test_modified_since_walks_past_the_result_cap_in_order_without_duplicates(client: HubSpotClient, sandbox):
    # A cap of 7 instead of 10,000: the same re-anchoring, exercised on a small portal.
    client.search_cap = 7
    prop = LAST_MODIFIED["contacts"]
    batches = list(client.iter_modified_since("contacts", 0, properties=["email"]))
    records: list[Record] = [r for batch in batches for r in batch]
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids))
    assert set(ids) == live_ids(sandbox, "contacts")
    stamps = [iso_to_ms(r.properties[prop]) for r in records]
    assert stamps == sorted(stamps)


def test_a_record_modified_mid_walk_does_not_make_another_one_vanish(client: HubSpotClient, sandbox):
    # Offsets shift when a record moves to the end of the results; the walk must notice.
    client.search_page_size = 5
    walk = client.iter_modified_since("contacts", 0, properties=["jobtitle"])
    first = next(walk)
    sandbox.patch_object("contacts", first[0].id, {"jobtitle": "Moved to the end"})
    records = first + [r for batch in walk for r in batch]
    assert {r.id for r in records} == live_ids(sandbox, "contacts")
    assert [r for r in records if r.id == first[0].id][-1].properties["jobtitle"] == "Moved to the end"


def test_modified_since_sees_only_later_changes(client: HubSpotClient, sandbox):
    ids = sorted(live_ids(sandbox, "contacts"), key=int)
    newest = max(iso_to_ms(r["properties"]["lastmodifieddate"]) for r in sandbox.truth("contacts"))
    sandbox.patch_object("contacts", ids[0], {"jobtitle": "Changed in HubSpot"})
    sandbox.patch_object("contacts", ids[1], {"jobtitle": "Also changed"})
    changed = [
        r
        for batch in client.iter_modified_since("contacts", newest + 1, properties=["jobtitle"])
        for r in batch
    ]
    assert sorted(r.id for r in changed) == sorted(ids[:2])
    assert {r.properties["jobtitle"] for r in changed} == {"Changed in HubSpot", "Also changed"}


def test_associations_match_the_portal_and_empty_means_none(client: HubSpotClient, sandbox):
    truth = truth_by_id(sandbox, "contacts")
    ids = sorted(live_ids(sandbox, "contacts"), key=int)
    found = client.read_associations("contacts", "companies", ids)
    assert set(found) == set(ids)
    for contact_id in ids:
        expected = {
            str(a["id"] if isinstance(a, dict) else a) for a in _assoc(truth[contact_id], "companies")
        }
        assert {to_id for to_id, _ in found[contact_id]} == expected
        assert all(isinstance(type_id, int) for _, type_id in found[contact_id])
    lonely = [i for i in ids if not found[i]]
    assert lonely, "the seed should leave some contacts without a company"


def test_properties_pipelines_owners_and_account(client: HubSpotClient, sandbox):
    props = {p["name"]: p for p in client.list_properties("contacts")}
    assert props["email"]["type"] == "string" and props["email"]["hubspot_defined"]
    assert props["lifecyclestage"]["options"] and "display_order" in props["lifecyclestage"]["options"][0]
    definition = {
        "name": f"pronouns_{uuid.uuid4().hex[:6]}",
        "label": "Pronouns",
        "type": "enumeration",
        "field_type": "select",
        "group_name": "contactinformation",
        "options": [{"label": "she/her", "value": "she_her", "display_order": 0}],
    }
    made = client.create_property("contacts", definition)
    assert made["options"][0]["value"] == "she_her" and not made["hubspot_defined"]
    with pytest.raises(AlreadyExists):
        client.create_property("contacts", definition)
    pipelines = client.list_pipelines("deals")
    default = next(p for p in pipelines if p["id"] == "default")
    stages = {s["id"]: s for s in default["stages"]}
    assert stages["closedwon"]["probability"] == 1.0 and stages["closedwon"]["is_closed"] is True
    assert (
        stages["appointmentscheduled"]["probability"] == 0.2
        and stages["appointmentscheduled"]["is_closed"] is False
    )
    owners = list(client.iter_owners())
    assert len(owners) == 4 and all(o["id"] and o["email"] and isinstance(o["user_id"], int) for o in owners)
    account = client.account_info()
    assert account["portal_id"] == 62515 and account["ui_domain"] and account["time_zone"]


def _assoc(record: dict, to_type: str) -> list:
    associations = record.get("associations") or {}
    value = associations.get(to_type) or []
    if isinstance(value, dict):
        value = value.get("results") or value.get("ids") or []
    return list(value)


def _count_status(stats: dict, status: int) -> int:
    return int(stats["responses"].get(str(status), 0))


def _total_requests(stats: dict) -> int:
    """API requests served (the admin calls of the test itself left out)."""
    return sum(int(n) for route, n in stats["requests"].items() if "/_sandbox/" not in route)


def test_a_list_page_carries_associations_inline_matching_the_v4_read(client: HubSpotClient, sandbox):
    page = client.list_page("deals", properties=["dealname"], associations=["contacts", "companies"])
    ids = [r.id for r in page.records]
    assert ids and not page.unread
    for to_type in ("contacts", "companies"):
        assert {i: sorted(p) for i, p in page.associations[to_type].items()} == {
            i: sorted(p) for i, p in client.read_associations("deals", to_type, ids).items()
        }
    contacts = client.list_page("contacts", properties=["email"], associations=["companies"])
    linked = contacts.associations["companies"]
    assert linked == client.read_associations("contacts", "companies", [r.id for r in contacts.records])
    assert any(linked.values()) and not all(linked.values())  # no company: an empty list, not a gap


def test_inline_associations_hubspot_could_not_give_whole_are_left_for_a_v4_read():
    items = [
        {"id": "1", "associations": {"companies": {"results": [{"id": "9", "type": "contact_to_company"}]}}},
        {  # more than fit inline
            "id": "2",
            "associations": {
                "companies": {
                    "results": [{"id": "8", "type": "contact_to_company"}],
                    "paging": {"next": {"after": "1"}},
                }
            },
        },
        {
            "id": "3",
            "associations": {"companies": {"results": [{"id": "7", "type": "partner_of"}]}},
        },  # a label
        {"id": "4"},  # no company at all
    ]
    found, unread = inline_associations_from_wire("contacts", items, ["companies"])
    assert unread == {"2", "3"}
    assert found["companies"]["1"] == [("9", 1)] and found["companies"]["4"] == []
