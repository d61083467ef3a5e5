"""The consent page in Chromium: Connect app and Cancel really take the browser back to the app."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from crm.sandbox.config import DEFAULT_CLIENT_ID

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.fixture
def callback(sandbox, receiver) -> str:
    # The app lives on another origin than the sandbox, as in the real flow.
    url = receiver.url.replace("/hooks", "/hubspot/callback").replace("127.0.0.1", "localhost")
    sandbox.configure(redirect_uris=[url])
    return url


def authorize_url(sandbox_url: str, callback: str) -> str:
    query = {"client_id": DEFAULT_CLIENT_ID, "redirect_uri": callback, "scope": "crm.objects.contacts.read"}
    return f"{sandbox_url}/oauth/authorize?{urllib.parse.urlencode({**query, 'state': 'st-1'})}"


def test_connect_app_button_returns_the_browser_to_the_app_with_a_code(page, sandbox_url, callback):
    page.goto(authorize_url(sandbox_url, callback))

    page.get_by_role("button", name="Connect app").click()
    page.wait_for_url(f"{callback}?*", timeout=10_000)

    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert params["state"] == "st-1" and params["code"]
    assert page.inner_text("body") == "callback received: code state"


def test_cancel_button_returns_the_browser_to_the_app_with_access_denied(page, sandbox_url, callback):
    page.goto(authorize_url(sandbox_url, callback))

    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{callback}?*", timeout=10_000)

    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert params["error"] == "access_denied" and params["state"] == "st-1"
    assert "code" not in params
