"""The demo walkthrough in Chromium: connect, sync, edit, push, a conflict, the pipeline chart.

``streamlit run app.py`` runs in demo mode (the embedded sandbox) on a free port, with
its own cache in a temporary directory (tests/e2e/conftest.py). Screenshots of each page
go to ``test-artifacts/screenshots/``. A JavaScript dialog opening at any point fails the
test: the seeded data carries script and HTML on purpose, and it must stay inert.
"""

from __future__ import annotations

import pytest
from e2ekit import (
    JOBTITLE_COLUMN,
    PHONE_COLUMN,
    SCREENSHOTS,
    edit_first_row,
    open_page,
    push_changes,
    search_contacts,
    settle,
    shoot,
)
from playwright.sync_api import Page, expect

from crm.sandbox.admin import SandboxAdmin

pytestmark = pytest.mark.e2e


def test_demo_walkthrough(app_server: dict[str, str], page: Page) -> None:
    base = app_server["url"]
    sandbox = SandboxAdmin(app_server["sandbox"])

    # Connect: the consent page of the sandbox, then back on Connect, connected.
    page.goto(base + "/connect")
    settle(page)
    expect(page.get_by_text("built-in HubSpot sandbox")).to_be_visible()
    shoot(page, "01-connect-not-connected")
    page.get_by_role("link", name="Connect HubSpot").click()
    page.get_by_role("button", name="Connect app").wait_for()
    assert page.url.startswith(app_server["sandbox"] + "/oauth/authorize")
    shoot_plain = SCREENSHOTS / "02-sandbox-consent.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shoot_plain), full_page=True)
    page.get_by_role("button", name="Connect app").click()
    page.wait_for_url(base + "/connect*")
    settle(page)
    expect(page.get_by_text("HubSpot is connected")).to_be_visible()
    expect(page.get_by_text("Portal ID: 101")).to_be_visible()
    assert "code=" not in page.url and "state=" not in page.url
    shoot(page, "03-connect-connected")

    # Sync now, and watch it finish: a little sandbox latency keeps the progress bar on screen.
    sandbox.configure(latency_ms=60)
    open_page(page, "Sync")
    page.get_by_role("button", name="Sync now").click()
    # The run's progress bar (the budget gauges beside it are progress bars too).
    expect(page.get_by_test_id("stProgress").first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("sync succeeded")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    sandbox.configure(latency_ms=0)
    shoot(page, "04-sync")

    # Find a contact, change its job title in the grid, push, and HubSpot has it.
    target = next(
        r
        for r in sandbox.truth("contacts")
        if not r.get("archived")
        and all(
            (r["properties"].get(k) or "").isascii() and (r["properties"].get(k) or "").isalpha()
            for k in ("firstname", "lastname")
        )
    )
    rid, email = str(target["id"]), target["properties"]["email"]
    open_page(page, "Contacts")
    search_contacts(page, email)
    edit_first_row(page, JOBTITLE_COLUMN, "Director of Walkthroughs")
    expect(page.get_by_text("1 change waiting to be pushed")).to_be_visible(timeout=20_000)
    # The sidebar is redrawn after the page, so it counts the edit made in the same run.
    expect(page.get_by_test_id("stSidebar").get_by_text("Edits waiting to be pushed: 1")).to_be_visible()
    shoot(page, "05-contacts-edited")
    push_changes(page)
    expect(page.get_by_text("Pushed 1 change to HubSpot")).to_be_visible(timeout=30_000)
    assert _remote(sandbox, rid)["jobtitle"] == "Director of Walkthroughs"

    # The same phone changed here and in HubSpot: the push finds a conflict.
    # Webhook delivery is paused for this step, so the conflict is found by the push itself
    # rather than by a live update racing it.
    sandbox.configure(webhook_url="")
    edit_first_row(page, PHONE_COLUMN, "+1 555 0101")
    expect(page.get_by_text("1 change waiting to be pushed")).to_be_visible(timeout=20_000)
    sandbox.patch_object("contacts", rid, {"phone": "+1 555 0999"})
    push_changes(page)
    expect(page.get_by_text("1 conflict (resolve them on the Sync page)")).to_be_visible(timeout=30_000)
    open_page(page, "Sync")
    expect(page.get_by_role("tab", name="Conflicts (1)")).to_be_visible()
    expect(page.get_by_text("+1 555 0101")).to_be_visible()
    expect(page.get_by_text("+1 555 0999")).to_be_visible()
    # The main area scrolls inside the page, so a full-page shot stops at the fold.
    page.get_by_role("button", name="Keep mine").scroll_into_view_if_needed()
    shoot(page, "06-sync-conflict")
    page.get_by_role("button", name="Keep mine").click()
    expect(page.get_by_text("Kept your value")).to_be_visible(timeout=20_000)
    push_changes(page)
    expect(page.get_by_text("Pushed 1 change to HubSpot")).to_be_visible(timeout=30_000)
    assert _remote(sandbox, rid)["phone"] == "+1 555 0101"
    expect(page.get_by_role("tab", name="Conflicts (0)")).to_be_visible()

    # Deals: the pipeline chart.
    open_page(page, "Deals")
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=20_000)
    shoot(page, "07-deals")

    open_page(page, "Companies")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    shoot(page, "08-companies")

    # A contact whose name is a script tag: shown as text, and nothing runs.
    hostile = next(
        r
        for r in sandbox.truth("contacts")
        if r["properties"].get("firstname") == "<script>alert(1)</script>"
    )
    page.goto(f"{base}/record?type=contacts&id={hostile['id']}")
    settle(page)
    expect(page.get_by_role("heading", name="<script>alert(1)</script>")).to_be_visible()
    shoot(page, "09-record-hostile-name")


def _remote(sandbox: SandboxAdmin, record_id: str) -> dict:
    return next(r["properties"] for r in sandbox.truth("contacts") if str(r["id"]) == record_id)
