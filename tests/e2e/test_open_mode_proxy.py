"""Finding 2 in a real browser: open mode (no ``[auth]``) refuses a page reached through a proxy.

AppTest has no WebSocket handshake, so this checks the one thing the AppTest tests stand in
for: the headers a proxy adds reach ``st.context.headers`` and the guard, under
``streamlit run``. Chromium adds the header to every request, the handshake included.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2ekit import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import Browser, expect, sync_playwright


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_page_reached_through_a_proxy_shows_only_what_to_configure(app_server, browser: Browser):
    proxied = browser.new_context(extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    page = proxied.new_page()
    page.goto(app_server["url"] + "/")
    refusal = page.get_by_test_id("stAlert")
    expect(refusal).to_contain_text("CRM_OPEN_ACCESS=true", timeout=60_000)
    expect(refusal).to_contain_text("[auth]")
    expect(page.get_by_test_id("stDataFrame")).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    proxied.close()

    direct = browser.new_context()
    page = direct.new_page()
    page.goto(app_server["url"] + "/")
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("CRM_OPEN_ACCESS=true")).to_have_count(0)
    direct.close()
