"""Which reads a set of events turns into (pure: no HubSpot, no cache)."""

from __future__ import annotations

from crm import webhooks


def test_many_events_about_one_record_become_one_read() -> None:
    plan = webhooks.plan_events(
        [
            {"subscriptionType": "contact.propertyChange", "objectId": 12, "propertyName": "email"},
            {"subscriptionType": "contact.propertyChange", "objectId": 12, "propertyName": "phone"},
            {"subscriptionType": "deal.deletion", "objectId": 7},
        ]
    )
    assert plan.reread == {"contacts": {"12"}, "deals": {"7"}}


def test_creation_also_reads_the_new_records_associations() -> None:
    plan = webhooks.plan_events([{"subscriptionType": "deal.creation", "objectId": 7}])
    assert plan.associations == {("deals", "contacts"): {"7"}, ("deals", "companies"): {"7"}}


def test_merge_sends_every_old_id_to_the_new_record_and_rereads_it() -> None:
    plan = webhooks.plan_events(
        [
            {
                "subscriptionType": "contact.merge",
                "objectId": 9,
                "primaryObjectId": 5,
                "mergedObjectIds": [6],
                "newObjectId": 9,
            }
        ]
    )
    assert plan.reread == {"contacts": {"9"}}
    assert plan.merges == {("contacts", "9"): {"5", "6"}}  # the primary's old id is gone too
    assert plan.archived == {}


def test_a_privacy_deletion_is_purged_without_reading_anything_back() -> None:
    plan = webhooks.plan_events([{"subscriptionType": "contact.privacyDeletion", "objectId": 12}])
    assert plan.purged == {"contacts": {"12"}}
    assert plan.reread == {} and plan.associations == {}


def test_association_change_rereads_from_the_side_the_cache_stores() -> None:
    plan = webhooks.plan_events(
        [
            {
                "subscriptionType": "company.associationChange",
                "objectId": 3,
                "associationType": "COMPANY_TO_CONTACT",
                "fromObjectId": 3,
                "toObjectId": 44,
                "associationRemoved": True,
            }
        ]
    )
    assert plan.associations == {("contacts", "companies"): {"44"}}
    assert plan.reread == {}


def test_generic_object_events_are_mapped_by_type_id() -> None:
    plan = webhooks.plan_events(
        [
            {"subscriptionType": "object.propertyChange", "objectTypeId": "0-2", "objectId": 8},
            {"subscriptionType": "object.propertyChange", "objectTypeId": "0-5", "objectId": 9},
            {"subscriptionType": "object.creation", "objectTypeId": "0-46", "objectId": 10},
            {"subscriptionType": "object.propertyChange", "objectTypeId": "0-999", "objectId": 11},
        ]
    )
    assert plan.reread == {"companies": {"8"}, "tickets": {"9"}, "notes": {"10"}}
    assert ("notes", "contacts") in plan.associations and ("notes", "tickets") in plan.associations


def test_a_ticket_association_change_rereads_the_tickets_side() -> None:
    plan = webhooks.plan_events(
        [
            {
                "subscriptionType": "ticket.associationChange",
                "objectId": 3,
                "associationType": "TICKET_TO_CONTACT",
                "fromObjectId": 3,
                "toObjectId": 44,
            }
        ]
    )
    assert plan.associations == {("tickets", "contacts"): {"3"}}


def test_planning_ignores_ids_that_are_not_hubspot_record_ids() -> None:
    plan = webhooks.plan_events(
        [
            {"subscriptionType": "contact.propertyChange", "objectId": 12},
            {"subscriptionType": "contact.propertyChange", "objectId": "../etc"},
            {"subscriptionType": "contact.propertyChange", "objectId": {"id": 1}},
            {"subscriptionType": "contact.merge", "objectId": 12, "mergedObjectIds": 13},
            {"subscriptionType": "deal.creation", "objectId": True},
        ]
    )
    assert plan.reread == {"contacts": {"12"}}
    assert plan.archived == {}
