"""HUBSPOT_ACCESS_TOKEN alone is one connection, registered on first use without anyone adding it."""

from __future__ import annotations

from crm import connections, store, sync
from crm.config import load_settings


def test_a_private_app_token_is_one_connection_whose_cache_is_crm_db(sandbox, sandbox_token, cache_target):
    settings = load_settings(
        {"HUBSPOT_ACCESS_TOKEN": sandbox_token, "HUBSPOT_BASE_URL": sandbox.url, "CRM_DB": cache_target}, {}
    )
    portal = sandbox.portals()[0]["portalId"]
    assert connections.list_connections(settings, learn=False) == []

    (conn,) = connections.list_connections(settings)
    assert (conn.account_id, conn.is_home) == (str(portal), True)
    assert connections.resolve(settings) == conn and connections.list_connections(settings) == [conn]

    chosen = connections.settings_for(settings, conn)
    assert sync.run_sync(chosen, kind="full", trigger="test")["state"] == "succeeded"
    with store.open(settings) as db:  # the same cache as before several connections existed
        assert db.queries.counts()["contacts"] == len(
            [r for r in sandbox.truth("contacts") if not r.get("archived")]
        )
    assert connections.status(settings, conn).state == "connected"
