"""A Pipedrive connection's partition for page tests, filled by the app's own pull.

Connect the sandbox company with its API token (as ``connect pipedrive`` does), then run a
full sync of that connection (``crm.sync.run_sync``: the generic pull through the CRM
interface, over real loopback HTTP), so the pages are tested on exactly what a sync stores.
"""

from __future__ import annotations

from crm import connections, pipedrive_auth
from crm.config import Settings
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync import run_sync


def seed_pipedrive(home: Settings, admin: PipedriveAdmin) -> Settings:
    """Connect the sandbox company and sync it; returns the connection's settings (what the
    pages resolve for it)."""
    conn, _ = pipedrive_auth.connect_api_token(home, admin.api_token(), base_url=admin.url)
    part = connections.settings_for(home, conn)
    run = run_sync(part, kind="full", trigger="test")
    assert run["state"] == "succeeded", run.get("error")
    return part
