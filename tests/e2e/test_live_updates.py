"""Live updates in Chromium: an edit made in HubSpot shows up on an open Contacts page.

No sync is started after the edit and the page is not reloaded: the sandbox delivers a
webhook to the app's own /hubspot/webhook, the worker re-reads the contact, and the
sidebar's live-updates fragment notices the cache moved and reruns the page.
"""

from __future__ import annotations

import pytest
from e2ekit import connect_through_consent, open_page, settle, sync_now
from playwright.sync_api import Page, expect

from crm.sandbox.admin import SandboxAdmin

pytestmark = pytest.mark.e2e


def test_contact_renamed_in_hubspot_appears_on_the_open_contacts_page(
    app_server: dict[str, str], page: Page
) -> None:
    base = app_server["url"]
    sandbox = SandboxAdmin(app_server["sandbox"])
    # Visit / first: a fresh server serves pages/ directly until some session runs app.py.
    page.goto(base + "/")
    settle(page)
    connect_through_consent(page, base)
    sync_now(page)

    open_page(page, "Contacts")
    sidebar = page.get_by_test_id("stSidebarUserContent")  # (the Sync page may say it too)
    expect(sidebar.get_by_text("Live updates: on")).to_be_visible(timeout=20_000)
    contact = sorted(
        (r for r in sandbox.truth("contacts") if not r.get("archived")), key=lambda r: int(r["id"])
    )[0]
    new_name = "Quintessa Livewire"
    first, last = new_name.split()
    expect(page.get_by_text(first, exact=True)).to_have_count(0)

    sandbox.patch_object("contacts", contact["id"], {"firstname": first, "lastname": last})

    # The default sort is last modified first, so the renamed contact heads the grid.
    expect(page.get_by_text(first, exact=True).first).to_be_attached(timeout=15_000)
    expect(page.get_by_text(last, exact=True).first).to_be_attached()
    expect(sidebar.get_by_text("Live updates: on, last event")).to_be_visible()
