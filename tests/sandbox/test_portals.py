"""One sandbox serving two portals (101, the default, and 202) over loopback.

Each portal has its own records, tokens, rate-limit budget and webhook deliveries; a token
belongs to one portal and only ever sees that portal's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from sandbox_checks import WebhookInbox, assert_crm_error, receive_webhooks

from crm.sandbox import SandboxState
from crm.sandbox.__main__ import parse_args
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import SandboxConfig
from tests.conftest import SMALL_PORTAL

A, B = 101, 202


def client(admin: SandboxAdmin, token: str) -> httpx2.Client:
    return httpx2.Client(base_url=admin.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def api_a(two_portals: SandboxAdmin) -> Iterator[httpx2.Client]:
    with client(two_portals, two_portals.private_app_token(portal_id=A)) as api:
        yield api


@pytest.fixture
def api_b(two_portals: SandboxAdmin) -> Iterator[httpx2.Client]:
    with client(two_portals, two_portals.private_app_token(portal_id=B)) as api:
        yield api


def contact_ids(api: httpx2.Client) -> set[str]:
    response = api.get("/crm/v3/objects/contacts", params={"limit": 100})
    assert response.status_code == 200, response.text
    return {record["id"] for record in response.json()["results"]}


def test_each_token_sees_its_own_portals_account_and_records(two_portals, api_a, api_b):
    assert api_a.get("/account-info/v3/details").json()["portalId"] == A
    assert api_b.get("/account-info/v3/details").json()["portalId"] == B

    ids_a, ids_b = contact_ids(api_a), contact_ids(api_b)
    assert ids_a == {r["id"] for r in two_portals.truth("contacts", portal_id=A)}
    assert ids_b == {r["id"] for r in two_portals.truth("contacts", portal_id=B)}
    assert len(ids_a) == len(ids_b) == SMALL_PORTAL["contacts"]
    assert not ids_a & ids_b
    emails_a = {r["properties"]["email"] for r in two_portals.truth("contacts", portal_id=A)}
    emails_b = {r["properties"]["email"] for r in two_portals.truth("contacts", portal_id=B)}
    assert emails_a != emails_b


def test_a_token_of_one_portal_cannot_read_a_record_of_the_other(two_portals, api_a, api_b):
    record_b = two_portals.truth("contacts", portal_id=B)[0]["id"]

    assert api_b.get(f"/crm/v3/objects/contacts/{record_b}").status_code == 200
    assert_crm_error(api_a.get(f"/crm/v3/objects/contacts/{record_b}"), 404, "OBJECT_NOT_FOUND")
    patched = api_a.patch(f"/crm/v3/objects/contacts/{record_b}", json={"properties": {"jobtitle": "Spy"}})
    assert_crm_error(patched, 404, "OBJECT_NOT_FOUND")
    assert two_portals.truth("contacts", portal_id=B)[0]["properties"].get("jobtitle") != "Spy"


def test_a_record_created_in_one_portal_exists_only_there(two_portals, api_b):
    created = api_b.post("/crm/v3/objects/contacts", json={"properties": {"email": "only-in-b@example.com"}})

    assert created.status_code == 201, created.text
    in_b = {r["properties"].get("email") for r in two_portals.truth("contacts", portal_id=B)}
    in_a = {r["properties"].get("email") for r in two_portals.truth("contacts", portal_id=A)}
    assert "only-in-b@example.com" in in_b and "only-in-b@example.com" not in in_a


def test_the_default_portal_keeps_the_one_portal_data_and_the_other_is_seeded_from_its_id(two_portals):
    pinned = {**SMALL_PORTAL, "anchor_date": "2026-01-15"}
    alone = SandboxState(SandboxConfig(**pinned, portal_id=A))
    alone_store = alone.objects.types["contacts"]
    alone_emails = [alone_store.raw(alone_store.records[i], "email") for i in alone_store.order]

    two_portals.reset(portal_id=A, anchor_date="2026-01-15")
    two_portals.reset(portal_id=B, anchor_date="2026-01-15")
    first_b = [r["properties"]["email"] for r in two_portals.truth("contacts", portal_id=B)]
    two_portals.reset(portal_id=B)

    assert [r["properties"]["email"] for r in two_portals.truth("contacts", portal_id=A)] == alone_emails
    assert [r["properties"]["email"] for r in two_portals.truth("contacts", portal_id=B)] == first_b
    assert first_b != alone_emails
    alone.close()


def test_reset_takes_portal_id_in_the_body_and_reseeds_that_portal_only(two_portals):
    response = httpx2.post(f"{two_portals.url}/_sandbox/reset", json={"portal_id": B, "contacts": 3})

    assert response.status_code == 200, response.text
    assert response.json()["contacts"] == 3
    assert len(two_portals.truth("contacts", portal_id=B)) == 3
    assert len(two_portals.truth("contacts", portal_id=A)) == SMALL_PORTAL["contacts"]


def test_private_app_token_takes_portal_id_in_the_body(two_portals):
    response = httpx2.post(f"{two_portals.url}/_sandbox/private-app-token", json={"portal_id": B})

    assert response.status_code == 200, response.text
    assert response.json()["portal_id"] == B
    with client(two_portals, response.json()["token"]) as api:
        assert api.get("/account-info/v3/details").json()["portalId"] == B
    assert len(two_portals.tokens(portal_id=B)["tokens"]) == 1
    assert two_portals.tokens(portal_id=A)["tokens"] == []


@pytest.mark.parametrize(
    ("call", "status", "words"),
    [
        (lambda admin: admin.reset(portal_id=999), 404, "serves 101, 202"),
        (lambda admin: admin.truth("contacts", portal_id=999), 404, "no portal 999"),
        (
            lambda admin: admin._call("POST", "/_sandbox/private-app-token", {"portal_id": "abc"}),
            400,
            "portal_id",
        ),
        (lambda admin: admin.configure(extra_portal_ids=[303]), 400, "fixed when the sandbox starts"),
    ],
)
def test_an_unknown_or_malformed_portal_is_refused_with_a_clear_message(two_portals, call, status, words):
    with pytest.raises(httpx2.HTTPStatusError) as caught:
        call(two_portals)

    assert caught.value.response.status_code == status
    assert words in caught.value.response.json()["message"]


def test_admin_calls_without_portal_id_act_on_the_first_portal(two_portals):
    portals = two_portals.portals()

    assert [(p["portalId"], p["default"]) for p in portals] == [(A, True), (B, False)]
    assert portals[0]["hubDomain"] != portals[1]["hubDomain"]
    assert two_portals.truth("contacts") == two_portals.truth("contacts", portal_id=A)
    record = two_portals.truth("contacts", portal_id=B)[0]
    assert two_portals.patch_object("contacts", record["id"], {"jobtitle": "Edited in B"}, portal_id=B)
    with pytest.raises(httpx2.HTTPStatusError):
        two_portals.patch_object("contacts", record["id"], {"jobtitle": "Edited in A"})


def test_shared_settings_change_in_every_portal_and_hub_domain_in_one(two_portals):
    two_portals.configure(token_ttl=120)
    two_portals.configure(in_portal=B, hub_domain="brand-b.example.com")

    assert two_portals.config(portal_id=A)["token_ttl"] == two_portals.config(portal_id=B)["token_ttl"] == 120
    assert two_portals.config(portal_id=B)["hub_domain"] == "brand-b.example.com"
    assert two_portals.config(portal_id=A)["hub_domain"] != "brand-b.example.com"
    assert (two_portals.config(portal_id=A)["portal_id"], two_portals.config(portal_id=B)["portal_id"]) == (
        A,
        B,
    )


def test_a_portal_can_be_renumbered_but_not_onto_another_portal(two_portals):
    two_portals.configure(in_portal=B, portal_id=303)

    assert [p["portalId"] for p in two_portals.portals()] == [A, 303]
    with client(two_portals, two_portals.private_app_token(portal_id=303)) as api:
        assert api.get("/account-info/v3/details").json()["portalId"] == 303
    with pytest.raises(httpx2.HTTPStatusError) as caught:
        two_portals.configure(in_portal=303, portal_id=A)
    assert "already serves portal 101" in caught.value.response.json()["message"]
    two_portals.reset(config=True)
    assert [p["portalId"] for p in two_portals.portals()] == [A, B]


def test_each_portal_has_its_own_burst_budget(two_portals, api_a, api_b):
    two_portals.configure(burst_limit=3)

    statuses_a = [api_a.get("/crm/v3/owners").status_code for _ in range(4)]
    response_b = api_b.get("/crm/v3/owners")

    assert statuses_a == [200, 200, 200, 429]
    assert response_b.status_code == 200
    assert response_b.headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert two_portals.stats(portal_id=A)["burst_rate_limited"] == 1
    assert two_portals.stats(portal_id=B)["burst_rate_limited"] == 0


def test_fail_next_hits_only_its_portal(two_portals, api_a, api_b):
    two_portals.fail_next("/crm/v3/owners", status=503, portal_id=B)

    assert api_a.get("/crm/v3/owners").status_code == 200
    assert api_b.get("/crm/v3/owners").status_code == 503


@pytest.fixture
def inbox(two_portals: SandboxAdmin) -> Iterator[WebhookInbox]:
    """A loopback receiver both portals deliver to (the app's one webhook URL)."""
    with receive_webhooks(two_portals) as inbox:
        yield inbox


def test_webhooks_of_each_portal_carry_its_portal_id(two_portals, inbox):
    record_a = two_portals.truth("contacts", portal_id=A)[0]["id"]
    record_b = two_portals.truth("contacts", portal_id=B)[0]["id"]

    two_portals.patch_object("contacts", record_a, {"jobtitle": "In A"}, portal_id=A)
    two_portals.patch_object("contacts", record_b, {"jobtitle": "In B"}, portal_id=B)
    assert two_portals.flush_webhooks(portal_id=A)["flushed"]
    assert two_portals.flush_webhooks(portal_id=B)["flushed"]

    changes = {(e["portalId"], str(e["objectId"]), e["propertyValue"]) for e in inbox.events}
    assert changes == {(A, record_a, "In A"), (B, record_b, "In B")}
    assert [d["event_count"] for d in two_portals.webhooks(portal_id=B)["deliveries"]] == [1]
    assert [d["event_count"] for d in two_portals.webhooks(portal_id=A)["deliveries"]] == [1]


def test_the_command_line_takes_repeated_portal_ids_the_first_being_the_default():
    _, config = parse_args(["--portal-id", "101", "--portal-id", "202", "--portal-id", "303"])

    assert (config.portal_id, config.extra_portal_ids) == (101, (202, 303))
    assert parse_args([])[1].extra_portal_ids == ()
    with pytest.raises(SystemExit):
        parse_args(["--portal-id", "101", "--portal-id", "101"])
