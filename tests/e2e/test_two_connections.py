"""Two connections in Chromium: connect portal 101, add portal 202 from the sandbox's consent
page, sync all, and switch between them in the sidebar, each showing its own contacts.

The demo's embedded sandbox serves portals 101 (the default) and 202. Screenshots go to
``test-artifacts/screenshots/`` (10-12 are copied into docs/screenshots for the README).
"""

from __future__ import annotations

import re

import pytest
from e2ekit import SCREENSHOTS, open_page, settle, shoot
from playwright.sync_api import Page, expect

from crm.sandbox.admin import SandboxAdmin

pytestmark = pytest.mark.e2e

A, B = "hubspot-101", "hubspot-202"


def _simple_contact(sandbox: SandboxAdmin, portal_id: int) -> dict:
    """A contact of the portal with a plain name and email, to search for."""
    return next(
        r
        for r in sandbox.truth("contacts", portal_id=portal_id)
        if not r.get("archived")
        and "@" in (r["properties"].get("email") or "")
        and all(
            (r["properties"].get(k) or "").isascii() and (r["properties"].get(k) or "").isalpha()
            for k in ("firstname", "lastname")
        )
        and (r["properties"].get("email") or "").isascii()
    )


def _consent(
    page: Page, base: str, sandbox_url: str, link: str, portal_id: int, *, shot: str | None = None
) -> None:
    """Follow a Connect link, pick ``portal_id`` on the consent page, approve, and land back."""
    page.get_by_role("link", name=link).click()
    page.get_by_role("button", name="Connect app").wait_for()
    assert page.url.startswith(sandbox_url + "/oauth/authorize")
    page.locator(f"input[name='portal_id'][value='{portal_id}']").check()
    if shot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
    page.get_by_role("button", name="Connect app").click()
    page.wait_for_url(base + "/connect*")
    settle(page)
    expect(page.get_by_text("HubSpot is connected")).to_be_visible()


def _switch(page: Page, name: str, connection_id: str) -> None:
    """Pick a connection in the sidebar's selectbox; the address bar follows."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=name).click()
    page.wait_for_url(re.compile(rf"[?&]connection={connection_id}\b"))
    settle(page)
    # Remembered by this browser (a bare URL in a new session opens it), see ui/selection.py.
    page.wait_for_function(f"document.cookie.includes('crm_connection={connection_id}')", timeout=30_000)


def _search(page: Page, text: str) -> None:
    box = page.get_by_placeholder("Name, email, company or phone")
    box.fill(text)
    box.press("Enter")
    settle(page)


def test_two_portals_connected_side_by_side(app_server: dict[str, str], page: Page) -> None:
    base, sandbox_url = app_server["url"], app_server["sandbox"]
    sandbox = SandboxAdmin(sandbox_url)
    in_a, in_b = _simple_contact(sandbox, 101), _simple_contact(sandbox, 202)
    email_a, email_b = in_a["properties"]["email"], in_b["properties"]["email"]

    # The first connection: portal 101.
    page.goto(base + "/connect")
    settle(page)
    _consent(page, base, sandbox_url, "Connect HubSpot", 101)
    expect(page.get_by_text("Portal ID: 101")).to_be_visible()

    # A second one from the same page: the consent page offers both portals; pick 202.
    _consent(page, base, sandbox_url, "Add connection", 202, shot="17-sandbox-consent-two-portals")
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox")).to_be_visible()

    # Sync all: both portals, side by side.
    open_page(page, "Sync")
    expect(page.get_by_role("heading", name="All connections")).to_be_visible()
    sandbox.configure(latency_ms=40)  # keeps both progress bars on screen for the screenshot
    page.get_by_role("button", name="Sync all").click()
    expect(page.get_by_text("Sync started for 2 of 2 connections")).to_be_visible(timeout=20_000)
    expect(page.get_by_text(re.compile(r"Reading records, [1-9][\d,]* of")).first).to_be_visible(
        timeout=60_000
    )
    shoot(page, "18-sync-all")
    sandbox.configure(latency_ms=0)
    expect(page.get_by_text(re.compile(r"Connected · last sync (?!never)"))).to_have_count(2, timeout=180_000)

    # Each connection shows its own contacts.
    open_page(page, "Contacts")
    names = {}
    for cid in (A, B):
        page.goto(f"{base}/?connection={cid}")
        settle(page)
        caption = page.get_by_test_id("stMain").get_by_text("Connection: ").first.inner_text()
        names[cid] = caption.strip().removeprefix("Connection: ")
    assert names[A] != names[B]

    _switch(page, names[A], A)
    _search(page, email_a)
    expect(page.get_by_text("1 contact · page 1 of 1")).to_be_visible(timeout=20_000)
    _search(page, email_b)
    expect(page.get_by_text("No contacts match")).to_be_visible(timeout=20_000)

    _switch(page, names[B], B)
    expect(page.get_by_text(f"Connection: {names[B]}")).to_be_visible()
    _search(page, email_b)
    expect(page.get_by_text("1 contact · page 1 of 1")).to_be_visible(timeout=20_000)
    shoot(page, "19-contacts-second-connection")
    _search(page, email_a)
    expect(page.get_by_text("No contacts match")).to_be_visible(timeout=20_000)

    # The browser remembers the choice: a bare URL in a new session opens portal 202 again.
    page.goto(base + "/")
    page.wait_for_url(re.compile(rf"[?&]connection={B}\b"))
    settle(page)
    expect(page.get_by_text(f"Connection: {names[B]}")).to_be_visible()

    # The Connect page lists both, with their status.
    open_page(page, "Connect", exact=True)
    shoot(page, "16-connect-two-connections")
