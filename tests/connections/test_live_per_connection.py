"""Live updates run per connection: one journal poller for each, on its own partition."""

from __future__ import annotations

import dataclasses

from crm import connections, journal, store, webhooks
from tests.webhooks.deliveries import wait_until


def test_each_connection_gets_its_own_journal_poller(home_settings):
    settings = dataclasses.replace(home_settings, base_url="http://127.0.0.1:9", live_poll_s=60.0)
    assert [p.settings.db for p in journal.ensure_pollers(settings)] == [settings.db]
    journal.stop_poller(settings)
    eu = connections.add(settings, account_id=101)
    us = connections.add(settings, account_id=202)
    pollers = journal.ensure_pollers(settings)
    try:
        assert [p.settings.connection for p in pollers] == [eu.id, us.id]
        assert len({p.settings.db_key for p in pollers}) == 2
        assert journal.ensure_pollers(settings)[1] is pollers[1]  # once per connection and process
    finally:
        for poller in pollers:
            journal.stop_poller(poller.settings)


def test_each_connections_worker_drains_its_own_inbox_when_started(home_settings):
    connections.add(home_settings, account_id=101)
    us = connections.add(home_settings, account_id=202)
    target = connections.settings_for(home_settings, us)
    event = {
        "portalId": 202,
        "subscriptionId": 1,
        "eventId": 1,
        "subscriptionType": "contact.creation",
        "objectId": 5,
    }
    with store.open(target) as db:
        db.inbox.add_events([event], received_at="2026-01-01T00:00:00+00:00", received_ts=0.0)
    webhooks.ensure_workers(home_settings)
    try:
        wait_until(
            lambda: (webhooks.live_status(target)["last_error"] or "").startswith("NotConnected"), within=20
        )
    finally:
        for conn in connections.list_connections(home_settings):
            webhooks.stop_worker(connections.settings_for(home_settings, conn))
