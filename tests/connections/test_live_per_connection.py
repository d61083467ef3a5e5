"""Live updates run per connection: one journal poller for each, on its own partition."""

from __future__ import annotations

import dataclasses

from crm import connections, journal


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
