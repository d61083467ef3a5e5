"""Two HubSpot portals connected at once (sandbox portals 101 and 202): no cross-talk."""

from __future__ import annotations

import json
import time

import pytest

from crm import connections, store, sync, webhooks
from crm.connections import Connection
from crm.sync.several import sync_all

EU, US = 101, 202


@pytest.fixture
def both_synced(two_portal_settings, connect_portal) -> tuple[Connection, Connection]:
    """Portals 101 and 202 connected through OAuth (in that order) and fully synced."""
    connect_portal(EU)
    connect_portal(US)
    eu, us = connections.list_connections(two_portal_settings)
    sync_all(two_portal_settings, kind="full")
    return eu, us


def _live_ids(admin, portal_id: int, object_type: str = "contacts") -> set[str]:
    return {str(r["id"]) for r in admin.truth(object_type, portal_id=portal_id) if not r.get("archived")}


def _cached_ids(settings, object_type: str = "contacts") -> set[str]:
    with store.open(settings) as db:
        frame, _ = db.queries.query_records(object_type, limit=10_000)
    return {str(i) for i in frame.index}


def _signed(settings, events: list[dict]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(events).encode()
    stamp = str(int(time.time() * 1000))
    signature = webhooks.signature_v3(
        client_secret=settings.client_secret,
        method="POST",
        uri=settings.webhook_url,
        body=body,
        timestamp=stamp,
    )
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}, body


def _change(portal_id: int, event_id: int, object_id: str) -> dict:
    return {
        "eventId": event_id,
        "subscriptionId": 7,
        "portalId": portal_id,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "contact.propertyChange",
        "objectId": int(object_id),
        "propertyName": "firstname",
        "propertyValue": "x",
    }


def test_two_portals_sync_each_into_its_own_connection_with_no_cross_talk(
    two_portals, two_portal_settings, connect_portal
):
    assert connect_portal(EU).portal_id == EU
    landed = connect_portal(US)
    eu, us = connections.list_connections(two_portal_settings)
    assert (landed.portal_id, landed.connection) == (US, us.id)
    assert (eu.account_id, us.account_id) == ("101", "202")

    outcomes = sync_all(two_portal_settings, kind="full")
    assert [o.ok for o in outcomes] == [True, True]
    for conn, portal in ((eu, EU), (us, US)):
        chosen = connections.settings_for(two_portal_settings, conn)
        for object_type in ("contacts", "companies", "deals"):
            assert _cached_ids(chosen, object_type) == _live_ids(two_portals, portal, object_type)
    assert not _live_ids(two_portals, EU) & _live_ids(two_portals, US)
    statuses = [connections.status(two_portal_settings, c) for c in (eu, us)]
    assert [(s.state, s.portal_id, s.last_run_state) for s in statuses] == [
        ("connected", EU, "succeeded"),
        ("connected", US, "succeeded"),
    ]


def test_an_edit_in_one_portal_is_pushed_to_that_portal_only(two_portals, two_portal_settings, both_synced):
    eu, us = both_synced
    us_settings = connections.settings_for(two_portal_settings, us)
    contact = sorted(_cached_ids(us_settings))[0]

    sync.queue_edits(us_settings, "contacts", {contact: {"jobtitle": "Head of US"}}, by="kim")
    assert connections.pending_edits(two_portal_settings, eu) == 0
    result = sync.push(us_settings)
    assert result["pushed"] == 1

    pushed = {str(r["id"]): r["properties"] for r in two_portals.truth("contacts", portal_id=US)}
    assert pushed[contact].get("jobtitle") == "Head of US"
    eu_titles = {r["properties"].get("jobtitle") for r in two_portals.truth("contacts", portal_id=EU)}
    assert "Head of US" not in eu_titles
    assert sync.push(connections.settings_for(two_portal_settings, eu))["pushed"] == 0


def test_a_webhook_from_each_portal_lands_in_its_own_connection(
    two_portals, two_portal_settings, both_synced
):
    eu, us = both_synced
    picks = {}
    for conn, portal, name in ((eu, EU, "Europa"), (us, US, "Columbia")):
        chosen = connections.settings_for(two_portal_settings, conn)
        picks[portal] = (chosen, sorted(_cached_ids(chosen))[0])
        two_portals.patch_object("contacts", picks[portal][1], {"firstname": name}, portal_id=portal)

    headers, body = _signed(
        two_portal_settings,
        [_change(EU, 1, picks[EU][1]), _change(US, 2, picks[US][1]), _change(303, 3, "5")],
    )
    delivered: list = []
    new = webhooks.receive(
        two_portal_settings, method="POST", headers=headers, body=body, delivered=delivered
    )
    assert new == 2 and {d.connection for d in delivered} == {eu.id, us.id}
    assert webhooks.refusals(two_portal_settings).counts() == {"unknown_portal": 1}

    for portal, name in ((EU, "Europa"), (US, "Columbia")):
        chosen, contact = picks[portal]
        assert webhooks.process_pending(chosen) == 1
        with store.open(chosen) as db:
            assert db.queries.get_record("contacts", contact)["firstname"] == name
            other = picks[US if portal == EU else EU][1]
            assert db.queries.get_record("contacts", other) is None


def test_removing_one_connection_revokes_it_and_leaves_the_other_syncing(
    two_portals, two_portal_settings, both_synced
):
    eu, us = both_synced

    removed = connections.remove(two_portal_settings, us)
    assert removed.revoked
    assert connections.list_connections(two_portal_settings) == [eu]
    refresh = [t for t in two_portals.tokens(portal_id=US)["tokens"] if t["kind"] == "refresh"]
    assert refresh and all(t["revoked"] for t in refresh)

    (outcome,) = sync_all(two_portal_settings)
    assert outcome.ok and outcome.connection == eu
    eu_settings = connections.settings_for(two_portal_settings, eu)
    assert _cached_ids(eu_settings) == _live_ids(two_portals, EU)


def test_connecting_the_same_portal_again_keeps_its_cache_and_its_connection(
    two_portal_settings, connect_portal
):
    connect_portal(EU)
    connect_portal(US)
    sync_all(two_portal_settings, kind="full")
    before = connections.list_connections(two_portal_settings)
    connect_portal(US)
    assert connections.list_connections(two_portal_settings) == before
    us_settings = connections.settings_for(two_portal_settings, before[1])
    assert _cached_ids(us_settings)
