"""Merges, GDPR delete and restore in the sandbox, with HubSpot's effects and webhooks."""

from __future__ import annotations

import httpx2
from sandbox_checks import WebhookInbox, assert_crm_error

from crm.sandbox.admin import SandboxAdmin


def deal_with_contact(api: httpx2.Client, contact_id: str) -> str:
    deal = api.post(
        "/crm/v3/objects/deals", json={"properties": {"dealname": "Moves", "dealstage": "qualifiedtobuy"}}
    )
    assert deal.status_code == 201, deal.text
    api.put(f"/crm/v4/objects/deals/{deal.json()['id']}/associations/default/contacts/{contact_id}")
    return str(deal.json()["id"])


def contact(api: httpx2.Client, **properties: str) -> str:
    response = api.post("/crm/v3/objects/contacts", json={"properties": properties})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_merging_contacts_makes_a_new_record_that_both_old_ids_lead_to(api: httpx2.Client) -> None:
    primary = contact(api, email="keep@example.com", firstname="Keep")
    other = contact(api, email="gone@example.com", firstname="Gone", jobtitle="Pilot")
    deal = deal_with_contact(api, other)

    response = api.post(
        "/crm/v3/objects/contacts/merge", json={"primaryObjectId": primary, "objectIdToMerge": other}
    )

    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["id"] not in (primary, other)
    assert sorted(merged["properties"]["hs_merged_object_ids"].split(";")) == sorted([primary, other])
    read = api.get(
        f"/crm/v3/objects/contacts/{merged['id']}", params={"properties": "email,firstname,jobtitle"}
    )
    # The primary's values win; the other fills the gaps.
    props = read.json()["properties"]
    assert (props["email"], props["firstname"], props["jobtitle"]) == ("keep@example.com", "Keep", "Pilot")
    for old in (primary, other):
        assert api.get(f"/crm/v3/objects/contacts/{old}").json()["id"] == merged["id"]
    # Batch calls do not follow merged-away ids, and neither id is archived: they are gone.
    batch = api.post(
        "/crm/v3/objects/contacts/batch/read", json={"inputs": [{"id": other}], "properties": []}
    )
    assert batch.status_code == 207 and batch.json()["results"] == []
    archived = api.get("/crm/v3/objects/contacts", params={"archived": "true", "limit": 100}).json()[
        "results"
    ]
    assert not {primary, other} & {r["id"] for r in archived}
    # The other contact's deal moved to the result.
    links = api.get(f"/crm/v4/objects/deals/{deal}/associations/contacts").json()["results"]
    assert [str(link["toObjectId"]) for link in links] == [merged["id"]]


def test_merge_keeps_the_primary_id_when_configured_and_for_deals(
    sandbox: SandboxAdmin, api: httpx2.Client
) -> None:
    sandbox.configure(merge_new_id=False)
    primary = contact(api, email="a@example.com")
    other = contact(api, email="b@example.com")
    merged = api.post(
        "/crm/v3/objects/contacts/merge", json={"primaryObjectId": primary, "objectIdToMerge": other}
    )
    assert merged.json()["id"] == primary
    assert merged.json()["properties"]["hs_merged_object_ids"] == other
    sandbox.configure(merge_new_id=True)
    deals = [r["id"] for r in sandbox.truth("deals")[:2]]
    result = api.post(
        "/crm/v3/objects/deals/merge", json={"primaryObjectId": deals[0], "objectIdToMerge": deals[1]}
    )
    assert result.json()["id"] == deals[0]


def test_merge_fires_a_merge_webhook_with_the_ids(
    sandbox: SandboxAdmin, api: httpx2.Client, webhook_inbox: WebhookInbox
) -> None:
    companies = [r["id"] for r in sandbox.truth("companies")[:2]]
    merged = sandbox.merge("companies", companies[0], companies[1])
    sandbox.flush_webhooks()
    (event,) = [e for e in webhook_inbox.events if e["subscriptionType"] == "company.merge"]
    assert event["primaryObjectId"] == int(companies[0]) and event["mergedObjectIds"] == [int(companies[1])]
    assert event["newObjectId"] == int(merged["id"]) == event["objectId"]
    assert event["changeSource"] == "CRM_UI"


def test_merge_refuses_itself_and_unknown_ids(api: httpx2.Client) -> None:
    one = contact(api, email="self@example.com")
    same = api.post("/crm/v3/objects/contacts/merge", json={"primaryObjectId": one, "objectIdToMerge": one})
    assert_crm_error(same, 400, "VALIDATION_ERROR")
    unknown = api.post(
        "/crm/v3/objects/contacts/merge", json={"primaryObjectId": one, "objectIdToMerge": "999"}
    )
    assert_crm_error(unknown, 404, "OBJECT_NOT_FOUND")
    assert_crm_error(api.post("/crm/v3/objects/contacts/merge", json={}), 400, "VALIDATION_ERROR")


def test_gdpr_delete_removes_the_contact_for_good(
    sandbox: SandboxAdmin, api: httpx2.Client, webhook_inbox: WebhookInbox
) -> None:
    doomed = contact(api, email="forget@example.com")
    deal = deal_with_contact(api, doomed)

    response = api.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": doomed})

    assert response.status_code == 204
    assert_crm_error(api.get(f"/crm/v3/objects/contacts/{doomed}"), 404, "OBJECT_NOT_FOUND")
    assert_crm_error(api.get(f"/crm/v3/objects/contacts/{doomed}", params={"archived": "true"}), 404)
    assert api.get(f"/crm/v4/objects/deals/{deal}/associations/contacts").json()["results"] == []
    assert_crm_error(sandbox_restore(sandbox, doomed), 404)
    sandbox.flush_webhooks()
    assert [
        e["objectId"] for e in webhook_inbox.events if e["subscriptionType"] == "contact.privacyDeletion"
    ] == [int(doomed)]


def sandbox_restore(sandbox: SandboxAdmin, object_id: str) -> httpx2.Response:
    return httpx2.post(f"{sandbox.url}/_sandbox/objects/contacts/{object_id}/restore", timeout=30)


def test_gdpr_delete_by_unknown_email_succeeds_but_unknown_id_is_404(api: httpx2.Client) -> None:
    by_email = api.post(
        "/crm/v3/objects/contacts/gdpr-delete", json={"objectId": "nobody@example.com", "idProperty": "email"}
    )
    assert by_email.status_code == 204
    assert_crm_error(api.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": "999"}), 404)


def test_restore_brings_an_archived_record_back_with_its_associations(
    sandbox: SandboxAdmin, api: httpx2.Client, webhook_inbox: WebhookInbox
) -> None:
    back = contact(api, email="back@example.com")
    deal = deal_with_contact(api, back)
    before = api.get(f"/crm/v3/objects/contacts/{back}").json()["updatedAt"]
    api.delete(f"/crm/v3/objects/contacts/{back}")
    assert_crm_error(api.get(f"/crm/v3/objects/contacts/{back}"), 404)

    restored = sandbox.restore("contacts", back)

    assert restored["archived"] is False
    after = api.get(f"/crm/v3/objects/contacts/{back}").json()
    assert after["updatedAt"] >= before
    links = api.get(f"/crm/v4/objects/deals/{deal}/associations/contacts").json()["results"]
    assert [str(link["toObjectId"]) for link in links] == [back]
    sandbox.flush_webhooks()
    assert [e["objectId"] for e in webhook_inbox.events if e["subscriptionType"] == "contact.restore"] == [
        int(back)
    ]
    # A live record cannot be restored; nor can one past the recycle bin's window.
    assert_crm_error(sandbox_restore(sandbox, back), 404)
    api.delete(f"/crm/v3/objects/contacts/{back}")
    sandbox.configure(recycle_bin_days=0.0)
    assert_crm_error(sandbox_restore(sandbox, back), 404)


def test_restore_refuses_when_the_email_now_belongs_to_another_contact(
    sandbox: SandboxAdmin, api: httpx2.Client
) -> None:
    first = contact(api, email="twin@example.com")
    api.delete(f"/crm/v3/objects/contacts/{first}")
    contact(api, email="twin@example.com")
    assert_crm_error(sandbox_restore(sandbox, first), 409, "CONFLICT")
