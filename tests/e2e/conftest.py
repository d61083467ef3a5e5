"""Browser-test fixtures: the dashboard under ``streamlit run`` in demo mode, and Chromium.

``app_server`` is per module, so each browser test file gets a fresh server (and its own
embedded sandbox and cache); ``page`` fails the test if any JavaScript dialog opens: the
seeded data carries script and HTML on purpose, and it must stay inert.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import httpx2
import pytest
from e2ekit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, stop, streamlit_command, wait_for
from playwright.sync_api import Page, sync_playwright


@pytest.fixture(scope="module")
def app_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The dashboard in demo mode on a free loopback port; yields its URL and the sandbox's.

    Its log is named after the module (test-artifacts/e2e-server-<module>.log): modules run
    at the same time in other pytest-xdist workers, each with a server of its own.
    """
    port, sandbox_port = free_port(), free_port()
    data_dir = tmp_path_factory.mktemp("e2e-cache")
    ARTIFACTS.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "HUBSPOT_", "STREAMLIT_"))}
    env.update(
        STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_hex(32),
        HUBSPOT_REDIRECT_URI=f"http://127.0.0.1:{port}/hubspot/callback",
        CRM_DB=str(data_dir / "crm.db"),
        # A known port, since /healthz no longer names the sandbox (it says only ok or unavailable).
        CRM_SANDBOX_PORT=str(sandbox_port),
    )
    log = (ARTIFACTS / f"e2e-server-{request.module.__name__}.log").open("w")
    server = subprocess.Popen(
        streamlit_command(port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(base_url=base, timeout=5) as http:
            wait_for(lambda: http.get("/_stcore/health").text == "ok", timeout=90, what="streamlit to start")
            # /healthz resolves the settings, which starts the embedded sandbox.
            assert http.get("/healthz").json() == {"status": "ok"}
        yield {"url": base, "sandbox": f"http://127.0.0.1:{sandbox_port}"}
    finally:
        stop(server)
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
