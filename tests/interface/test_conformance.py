"""The CRM interface's conformance suite: every implementation passes it, against its sandbox.

Each test states one promise of ``crm.interface`` and checks it against the sandbox's own
truth (its admin API), over loopback HTTP. ``crm`` is a Harness (crm_harness.py), one per
CRM implementation.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from crm.errors import AlreadyExists, CrmError, NeedsReconnect, OAuthFlowError, WebhookRejected
from crm.interface import Crm, CrmApi, Identity, ObjectTypeInfo, Option, Property
from tests.interface.crm_harness import Bearer, Harness


def live_ids(crm: Harness, object_type: str) -> set[str]:
    return {rid for rid, row in crm.truth(object_type).items() if not row["archived"]}


def moment(text: str | None) -> datetime:
    assert text, "a record without updated_at"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fresh_email() -> str:
    return f"conformance-{uuid.uuid4().hex[:10]}@example.org"


def type_info(crm: Harness, name: str) -> ObjectTypeInfo:
    return next(info for info in crm.provider.object_types() if info.name == name)


def test_the_provider_and_its_api_implement_the_protocols(crm: Harness) -> None:
    assert isinstance(crm.provider, Crm)
    assert isinstance(crm.api, CrmApi)
    assert {"contacts", "companies", "deals"} <= {info.name for info in crm.provider.object_types()}


def test_identity_names_the_connected_account_its_ui_host_and_default_currency(crm: Harness) -> None:
    me = crm.api.identity()
    assert me.account_id == crm.account_id
    assert me.account_name.strip()
    assert me.ui_host == crm.ui_host
    # Both sandboxes' accounts are in US dollars (HubSpot's company currency, Pipedrive's user default).
    assert me.currency == "USD"


def test_following_list_cursors_yields_every_live_record_exactly_once(crm: Harness) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = crm.api.list_page("contacts", properties=[crm.key], cursor=cursor, limit=7)
        assert len(page.records) <= 7
        assert all(r.type == "contacts" for r in page.records)
        seen.extend(r.id for r in page.records)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages > 1
    assert len(seen) == len(set(seen))
    assert set(seen) == live_ids(crm, "contacts")


def test_reads_faster_than_the_burst_limit_all_succeed(crm: Harness) -> None:
    crm.tighten_burst(3, 0.5)
    wanted = sorted(live_ids(crm, "contacts"))[:2]

    reads = [crm.api.batch_read("contacts", wanted, properties=[crm.key]) for _ in range(8)]

    assert all(sorted(r.id for r in records) == wanted for records in reads)


def test_modified_since_returns_a_record_changed_after_the_moment_and_nothing_older(crm: Harness) -> None:
    record_id = sorted(live_ids(crm, "contacts"))[3]
    crm.touch("contacts", record_id, {crm.first_name: "Touched"})
    changed_at = moment(crm.truth("contacts")[record_id]["updated_at"])
    since_ms = int(changed_at.timestamp() * 1000) - 1000

    found = [
        r
        for batch in crm.api.iter_modified_since("contacts", since_ms, properties=[crm.first_name])
        for r in batch
    ]

    assert record_id in {r.id for r in found}
    assert next(r for r in found if r.id == record_id).properties[crm.first_name] == "Touched"
    assert all(moment(r.updated_at).timestamp() * 1000 >= since_ms for r in found)
    assert len({r.id for r in found}) < len(live_ids(crm, "contacts"))


def test_batch_read_returns_the_known_ids_with_their_values_and_leaves_unknown_ones_out(crm: Harness) -> None:
    truth = crm.truth("contacts")
    wanted = sorted(live_ids(crm, "contacts"))[:5]

    records = crm.api.batch_read("contacts", [*wanted, "999999999"], properties=[crm.key, crm.first_name])

    assert sorted(r.id for r in records) == wanted
    for r in records:
        assert r.properties[crm.key] == truth[r.id]["properties"].get(crm.key)
        assert r.properties[crm.first_name] == truth[r.id]["properties"].get(crm.first_name)


def test_created_records_exist_in_the_crm_with_the_values_sent(crm: Harness) -> None:
    emails = [fresh_email(), fresh_email()]

    result = crm.api.batch_create(
        "contacts", [{crm.key: email, crm.first_name: f"New {i}"} for i, email in enumerate(emails)]
    )

    assert not result.failures
    assert len(result.records) == 2
    truth = crm.truth("contacts")
    for record in result.records:
        assert truth[record.id]["properties"][crm.key] in emails


def test_an_update_changes_the_named_records_and_each_unknown_id_fails_alone(crm: Harness) -> None:
    first, second = sorted(live_ids(crm, "contacts"))[:2]

    result = crm.api.batch_update(
        "contacts",
        {
            first: {crm.first_name: "Ada"},
            "999999998": {crm.first_name: "Nobody"},
            second: {crm.first_name: "Grace"},
            "999999999": {crm.first_name: "Nobody either"},
        },
    )

    truth = crm.truth("contacts")
    assert truth[first]["properties"][crm.first_name] == "Ada"
    assert truth[second]["properties"][crm.first_name] == "Grace"
    assert sorted(f.ref for f in result.failures) == ["999999998", "999999999"]
    assert all(isinstance(f.error, CrmError) for f in result.failures)


def test_an_upsert_input_without_its_key_fails_alone(crm: Harness) -> None:
    email = fresh_email()

    result = crm.api.batch_upsert(
        "contacts", [{crm.first_name: "Keyless"}, {crm.key: email, crm.first_name: "Keyed"}], key=crm.key
    )

    assert [f.ref for f in result.failures] == ["input-0"]
    assert [r.properties[crm.key] for r in result.records] == [email]


def test_upserting_the_same_key_twice_leaves_one_record(crm: Harness) -> None:
    email = fresh_email()

    first = crm.api.batch_upsert("contacts", [{crm.key: email, crm.first_name: "Once"}], key=crm.key)
    second = crm.api.batch_upsert("contacts", [{crm.key: email, crm.first_name: "Twice"}], key=crm.key)

    assert first.created_ids == [first.records[0].id]
    assert second.created_ids == []
    assert second.records[0].id == first.records[0].id
    matching = [row for row in crm.truth("contacts").values() if row["properties"].get(crm.key) == email]
    assert len(matching) == 1
    assert matching[0]["properties"][crm.first_name] == "Twice"


def test_associations_name_the_linked_records_the_crm_holds(crm: Harness) -> None:
    truth = crm.truth("contacts")
    ids = sorted(live_ids(crm, "contacts"))[:10]

    links = crm.api.associations("contacts", "companies", ids)

    assert set(links) == set(ids)
    assert {rid: set(found) for rid, found in links.items()} == {
        rid: truth[rid]["links"].get("companies", set()) for rid in ids
    }
    assert any(links.values()), "the seeded contacts should have some companies"


def test_owners_are_every_active_owner_with_a_name(crm: Harness) -> None:
    owners = crm.api.owners()

    assert len(owners) == crm.owner_count
    assert len({o.id for o in owners}) == len(owners)
    assert all(o.name.strip() for o in owners)


def test_every_deal_stage_belongs_to_a_listed_pipeline_in_display_order(crm: Harness) -> None:
    info = type_info(crm, "deals")
    pipelines = crm.api.pipelines("deals")

    assert pipelines
    for pipeline in pipelines:
        orders = [s.display_order for s in pipeline.stages]
        assert orders == sorted(orders)
    stage_ids = {s.id for p in pipelines for s in p.stages}
    used = {row["properties"].get(info.stage) for row in crm.truth("deals").values()}
    assert used - {None} <= stage_ids


def test_a_created_custom_property_is_listed_with_its_options_and_cannot_be_created_twice(
    crm: Harness,
) -> None:
    prop = Property(
        name="conformance_tier",
        label="Tier",
        type="enumeration",
        options=(Option("gold", "Gold", 0), Option("silver", "Silver", 1)),
    )

    created = crm.api.create_property("contacts", prop)
    listed = {p.name: p for p in crm.api.properties("contacts")}

    # The CRM may name the field itself (Pipedrive: a hash key); the created name is the one to use.
    assert listed[created.name].custom
    assert listed[created.name].label == "Tier"
    assert listed[created.name].type == "enumeration"
    assert [o.label for o in listed[created.name].options] == ["Gold", "Silver"]
    assert not listed[crm.key].custom
    with pytest.raises(AlreadyExists):
        crm.api.create_property("contacts", prop)


def test_a_real_delivery_verifies_and_names_the_account_record_and_change(crm: Harness) -> None:
    record_id = sorted(live_ids(crm, "contacts"))[0]
    request, secret = crm.delivery("contacts", record_id, {crm.first_name: "Hooked"})

    events = crm.provider.read_webhook(request, secret=secret)

    mine = [e for e in events if e.object_id == record_id]
    assert mine
    assert {e.account_id for e in mine} == {crm.account_id}
    assert {e.object_type for e in mine} == {"contacts"}
    assert "updated" in {e.change for e in mine}
    assert all(e.occurred_at for e in mine)


def test_a_forged_delivery_is_rejected(crm: Harness) -> None:
    record_id = sorted(live_ids(crm, "contacts"))[1]
    request, secret = crm.delivery("contacts", record_id, {crm.first_name: "Hooked"})

    with pytest.raises(WebhookRejected):
        crm.provider.read_webhook(crm.forge(request), secret=secret)
    with pytest.raises(WebhookRejected):
        crm.provider.read_webhook(request, secret=secret + "-wrong")


def test_record_urls_point_at_the_crm_ui_and_refuse_a_hostile_host(crm: Harness) -> None:
    me = crm.api.identity()
    record_id = sorted(live_ids(crm, "contacts"))[0]

    assert crm.provider.record_url("contacts", record_id, account=me) == crm.expected_record_url(
        "contacts", record_id
    )
    for host in ("evil.example/x?", "javascript:alert(1)", "", "host with space.com"):
        hostile = Identity(account_id=me.account_id, account_name=me.account_name, ui_host=host)
        assert crm.provider.record_url("contacts", record_id, account=hostile) is None


def test_an_authorization_code_is_redeemed_once_for_tokens_that_open_the_account(crm: Harness) -> None:
    settings, code = crm.oauth()

    grant = crm.provider.exchange_code(settings, code)

    assert grant.access_token and grant.refresh_token
    assert grant.account_id in (None, crm.account_id)
    with crm.provider.open(settings, Bearer(grant.access_token), base_url=grant.api_base) as api:
        assert api.identity().account_id == crm.account_id
    with pytest.raises(OAuthFlowError):
        crm.provider.exchange_code(settings, code)


def test_a_refresh_gives_a_working_token_and_a_dead_refresh_token_means_reconnect(crm: Harness) -> None:
    settings, code = crm.oauth()
    grant = crm.provider.exchange_code(settings, code)
    assert grant.refresh_token

    fresh = crm.provider.refresh(settings, grant.refresh_token)

    with crm.provider.open(
        settings, Bearer(fresh.access_token), base_url=fresh.api_base or grant.api_base
    ) as api:
        assert api.identity().account_id == crm.account_id
    with pytest.raises(NeedsReconnect):
        crm.provider.refresh(settings, "not-a-refresh-token")
