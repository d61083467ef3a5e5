"""What the browser tests share: Chromium's launch flags, the readiness wait, screenshots,
and the steps a person takes in the dashboard (connect, sync, edit a cell, push).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Playwright's assertions wait 5 s by default. A page served by `streamlit run` on a 2-core
# machine running the suite in several workers can take longer to rerun, so they wait up to
# 20 s: still a bound (no sleeps), and a page that never settles still fails.
expect.set_options(timeout=20_000)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` (a refused connection counts as not yet) until it holds, within ``timeout`` s."""
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


def streamlit_command(port: int, *extra: str) -> list[str]:
    """``streamlit run app.py`` headless on 127.0.0.1:``port``, no file watcher, no usage stats."""
    return [
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
        *extra,
    ]


def stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it if it has not exited within 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


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


def open_page(page: Page, name: str, *, exact: bool = False) -> None:
    """Click the sidebar's link to the page ``name`` and wait until the app shows it.

    A click on a page link made while the app reruns the page on its own (a sync's end, a
    live update) can still be lost: the browser stays where it was (README, Known limits).
    As a person would, this clicks again, at most three times; the third miss fails.
    """
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=exact)
    target = urlsplit(link.get_attribute("href") or "").path
    for attempt in range(3):
        link.click()
        try:
            page.wait_for_url(lambda url: urlsplit(url).path == target, timeout=10_000)
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            continue
        settle(page)
        if urlsplit(page.url).path == target:  # (a rerun of the old page has not taken it back)
            return
    raise AssertionError(f"the {name} page did not stay open after three clicks")


def connect_through_consent(page: Page, base: str) -> None:
    """Connect HubSpot on the Connect page, press Connect app on the sandbox's consent page."""
    page.goto(base + "/connect")
    settle(page)
    page.get_by_role("link", name="Connect HubSpot").click()
    page.get_by_role("button", name="Connect app").click()
    page.wait_for_url(base + "/connect*")
    settle(page)


def sync_now(page: Page) -> None:
    """Sync now on the Sync page, and wait for it to succeed."""
    open_page(page, "Sync")
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_text("sync succeeded")).to_be_visible(timeout=120_000)


def timeline_lines(page: Page) -> list[str]:
    """The activity timeline's lines as a person reads them (icon name and zero-width spaces
    dropped; the outbox's own "Changes waiting" expander left out)."""
    lines = []
    for summary in page.get_by_test_id("stExpander").locator("summary").all_inner_texts():
        text = summary.replace("\u200b", "").strip().split("\n")[-1].strip()
        if not text.startswith("Changes waiting"):
            lines.append(text)
    return lines


def pick_option(page: Page, label: str, option: str) -> None:
    """Choose ``option`` in the select box labelled ``label``, and wait for the rerun."""
    settle(page)
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def choose_in_first_row(
    page: Page, grid: str, column: int, option: str, *, then: Locator | None = None
) -> None:
    """Pick ``option`` in a select-box cell of the first row of the grid keyed ``{grid}_editor_``.

    ``then``: what the page shows once the edit is taken (e.g. "2 changes waiting"). A rerun
    that redraws the grid between the pick and its commit drops the pick (the person sees
    the old value and picks again); so does this helper, at most three times. Picking the
    value the cell already has changes nothing, so a pick that was taken is never doubled.
    """
    for attempt in range(3):
        _choose_once(page, grid, column, option)
        if then is None:
            return
        try:
            then.wait_for(state="visible", timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def _choose_once(page: Page, grid: str, column: int, option: str) -> None:
    # A grid from the previous run can linger, marked stale, while the page reruns.
    scroller = page.locator(f"[class*='st-key-{grid}_editor_']:not([data-stale='true']) .dvn-scroller")
    menu = page.get_by_test_id("portal").get_by_role("option", name=option, exact=True)
    for attempt in range(3):
        settle(page)
        scroller.click(position={"x": 20, "y": 35 + 17})
        for _ in range(column):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        try:
            menu.wait_for(state="visible", timeout=5_000)
            break
        except PlaywrightTimeout:
            # A live-update rerun redrew the grid between the click and Enter; start over.
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    menu.click()
    page.keyboard.press("Enter")
