"""Journal-mode fixtures: the app polls the loopback sandbox's webhooks journal.

- ``journal_settings``: private-app settings for the sandbox portal with the app's client id
  and secret (for the client-credentials token) and ``CRM_LIVE=journal``; no webhook URL,
  and the sandbox delivers no webhooks, so the journal is the only way changes arrive.
- ``synced``: the same after a full sync (a copy of one made once per session).
- ``pollers``: makes ``JournalPoller``s (each a "process" of its own) and stops them after.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crm import journal, sync
from crm.config import Settings, load_settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_SECRET
from tests.portal_fixtures import fresh_limits, quick_search  # noqa: F401  (autouse for this directory)
from tests.synced_copies import SyncedCopies, portal_fingerprint


@pytest.fixture
def journal_settings(sandbox: SandboxAdmin, sandbox_token: str, tmp_path: Path) -> Settings:
    sandbox.configure(webhook_url="")
    return load_settings(
        {
            "HUBSPOT_ACCESS_TOKEN": sandbox_token,
            "HUBSPOT_BASE_URL": sandbox.url,
            "HUBSPOT_CLIENT_ID": sandbox.config()["client_id"],
            "HUBSPOT_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "CRM_LIVE": "journal",
            "CRM_LIVE_POLL": "1",
            "CRM_DB": str(tmp_path / "crm.db"),
        },
        {},
    )


@pytest.fixture
def synced(journal_settings: Settings, sandbox: SandboxAdmin, synced_copies: SyncedCopies) -> Settings:
    """``journal_settings`` after a full sync: a copy of one made once per session
    (tests/synced_copies.py; the sync writes no journal position, the poller does)."""
    synced_copies.fill(
        journal_settings.db,
        "journal-private-app",
        portal_fingerprint(sandbox),
        lambda target: sync.run_sync(
            dataclasses.replace(journal_settings, db=target), kind="full", trigger="test"
        ),
    )
    return journal_settings


@pytest.fixture
def pollers(journal_settings: Settings) -> Iterator[Callable[[], journal.JournalPoller]]:
    made: list[journal.JournalPoller] = []

    def make() -> journal.JournalPoller:
        poller = journal.JournalPoller(journal_settings)
        made.append(poller)
        return poller

    yield make
    for poller in made:
        poller.stop()
    journal.stop_poller(journal_settings)
