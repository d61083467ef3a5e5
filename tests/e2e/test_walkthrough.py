"""The demo walkthrough in Chromium: connect, sync, edit, push, a conflict, the pipeline chart.

``streamlit run app.py`` runs in demo mode (the embedded sandbox) on a free port, with
its own cache in a temporary directory. Screenshots of each page go to
``test-artifacts/screenshots/``. A JavaScript dialog opening at any point fails the test:
the seeded data carries script and HTML on purpose, and it must stay inert.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from crm.sandbox.admin import SandboxAdmin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Grid columns of the Contacts page, left to right (0 is the record id).
JOBTITLE_COLUMN = 7
PHONE_COLUMN = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The dashboard in demo mode on a free loopback port; yields its URL and the sandbox's."""
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("e2e-cache")
    ARTIFACTS.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "HUBSPOT_", "STREAMLIT_"))}
    env.update(
        STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_hex(32),
        HUBSPOT_REDIRECT_URI=f"http://127.0.0.1:{port}/hubspot/callback",
        CRM_DB=str(data_dir / "crm.db"),
    )
    log = (ARTIFACTS / "e2e-server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(base_url=base, timeout=5) as http:
            _wait_for(lambda: http.get("/_stcore/health").text == "ok", timeout=90, what="streamlit to start")
            # /healthz resolves the settings, which starts the embedded sandbox and names it.
            health = http.get("/healthz").json()
        yield {"url": base, "sandbox": health["sandbox_url"]}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def page(app_server: dict[str, str]) -> Iterator[Page]:
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})

        def refuse(dialog) -> None:
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        tab.on("dialog", refuse)
        try:
            yield tab
        finally:
            browser.close()
    assert dialogs == [], f"a JavaScript dialog opened: {dialogs}"


def settle(page: Page) -> None:
    """Wait until the app is connected and no script run is in progress (upstream's recipe)."""
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(state="attached")
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    settle(page)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def edit_first_row(page: Page, column: int, value: str) -> None:
    """Type ``value`` into one cell of the first row of the page's editable grid."""
    grid = page.locator("[class*='st-key-contacts_editor_'] .dvn-scroller")
    editor = page.get_by_test_id("portal").locator(".gdg-input")
    for attempt in range(3):
        settle(page)
        # The header and each row are 35 px high; the id column starts at the left edge.
        grid.click(position={"x": 20, "y": 35 + 17})
        for _ in range(column):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        try:
            editor.wait_for(state="visible", timeout=5_000)
            break
        except PlaywrightTimeout:
            # A live-update rerun redrew the grid between the click and Enter; start over.
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    editor.fill(value)
    page.keyboard.press("Enter")


def push_changes(page: Page) -> None:
    settle(page)
    button = page.get_by_role("button", name="Push changes")
    expect(button).to_be_enabled()
    button.click()


def search_contacts(page: Page, text: str) -> None:
    box = page.get_by_placeholder("Name, email, company or phone")
    box.fill(text)
    box.press("Enter")
    expect(page.get_by_text("1 contact · page 1 of 1")).to_be_visible(timeout=20_000)
    settle(page)


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
    expect(page.get_by_text("Portal ID: 62515")).to_be_visible()
    assert "code=" not in page.url and "state=" not in page.url
    shoot(page, "03-connect-connected")

    # Sync now, and watch it finish: a little sandbox latency keeps the progress bar on screen.
    sandbox.configure(latency_ms=60)
    page.get_by_role("link", name="Sync").click()
    settle(page)
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=20_000)
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
    page.get_by_role("link", name="Contacts").click()
    settle(page)
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
    page.get_by_role("link", name="Sync").click()
    settle(page)
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
    page.get_by_role("link", name="Deals").click()
    settle(page)
    expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible(timeout=20_000)
    shoot(page, "07-deals")

    page.get_by_role("link", name="Companies").click()
    settle(page)
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
