"""Two ``streamlit run app.py`` processes and CLI runs against one PostgreSQL cache.

What a team behind a load balancer relies on: one sync per portal at a time whoever starts
it, an edit queued through one app is pushed by a cron job's CLI, a webhook delivered to
one app shows up on a page served by the other, and a delivery retried to the other app
is stored once.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from crm import store, webhooks
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.config import DEFAULT_CLIENT_SECRET
from tests.e2e.e2ekit import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    JOBTITLE_COLUMN,
    ROOT,
    free_port,
    stop,
    streamlit_command,
    wait_for,
)

pytestmark = pytest.mark.e2e

EXIT_BUSY = 3


@pytest.fixture
def shared(
    sandbox: SandboxAdmin, sandbox_token: str, pg_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """Apps A and B on one new PostgreSQL database (they race to create its schema), both
    told that HubSpot delivers webhooks to A (as to a load balancer's one public URL)."""
    ports = {"a": free_port(), "b": free_port()}
    hook = f"http://127.0.0.1:{ports['a']}/hubspot/webhook"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "HUBSPOT_", "STREAMLIT_"))}
    env.update(
        HUBSPOT_ACCESS_TOKEN=sandbox_token,
        HUBSPOT_BASE_URL=sandbox.url,
        HUBSPOT_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        HUBSPOT_WEBHOOK_URL=hook,
        CRM_DB=pg_url,
        STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_hex(32),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    servers, logs = {}, {}
    try:
        for name, port in ports.items():
            logs[name] = (ARTIFACTS / f"multiprocess-{name}.log").open("w")
            servers[name] = subprocess.Popen(
                streamlit_command(port),
                cwd=ROOT,
                env=env,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for url in urls.values():
            with httpx2.Client(base_url=url, timeout=5) as http:
                wait_for(lambda h=http: h.get("/_stcore/health").text == "ok", timeout=90, what="streamlit")
                assert http.get("/healthz").json() == {"status": "ok"}
        yield {**urls, "hook": hook, "db": pg_url, "env": json.dumps(env)}
    finally:
        for name, server in servers.items():
            stop(server)
            logs[name].close()
        store.close_engines()


def _cli(shared: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crm", *args],
        cwd=ROOT,
        env=json.loads(shared["env"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _settle(page: Page) -> None:
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)


def _truth(sandbox: SandboxAdmin, record_id: str) -> dict[str, str]:
    return next(r for r in sandbox.truth("contacts") if r["id"] == record_id)["properties"]


def test_two_apps_and_the_cli_share_one_postgresql_cache(shared, sandbox: SandboxAdmin) -> None:
    from tests.e2e.e2ekit import edit_first_row, search_contacts

    # One sync at a time: two CLI syncs started together, HubSpot slow enough to overlap.
    sandbox.configure(latency_ms=300)
    racing = [_cli(shared, "sync", "--full") for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in racing]
    sandbox.configure(latency_ms=0)
    assert sorted(code for code, _, _ in results) == [0, EXIT_BUSY], results
    assert any(
        "already running" in err.lower() or "another" in err.lower() for code, _, err in results if code
    )
    with store.open(shared["db"]) as db:
        runs = db.syncstate.run_history(limit=10)
    assert [r["state"] for r in runs] == ["succeeded"]

    contacts = sorted((r for r in sandbox.truth("contacts") if not r["archived"]), key=lambda r: int(r["id"]))
    edited, renamed = contacts[0], contacts[1]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # An edit made through app A is pushed by the CLI.
            on_a = browser.new_page(viewport={"width": 1400, "height": 1000})
            on_a.goto(shared["a"] + "/")
            _settle(on_a)
            on_a.get_by_role("link", name="Contacts").click()
            _settle(on_a)
            search_contacts(on_a, edited["properties"]["email"])
            edit_first_row(on_a, JOBTITLE_COLUMN, "Edited in app A")
            expect(on_a.get_by_text("1 change waiting to be pushed")).to_be_visible(timeout=20_000)
            push = _cli(shared, "push")
            code, out, err = push.wait(timeout=60), *push.communicate()
            assert code == 0 and "1 sent" in out, (out, err)
            assert _truth(sandbox, edited["id"])["jobtitle"] == "Edited in app A"

            # A webhook delivered to A refreshes the Contacts page open on B.
            on_b = browser.new_page(viewport={"width": 1400, "height": 1000})
            on_b.goto(shared["b"] + "/")
            _settle(on_b)
            on_b.get_by_role("link", name="Contacts").click()
            _settle(on_b)
            expect(on_b.get_by_text("Live updates: on")).to_be_visible(timeout=20_000)
            expect(on_b.get_by_text("Quintessa", exact=True)).to_have_count(0)
            sandbox.configure(webhook_url=shared["hook"])
            sandbox.patch_object(
                "contacts", renamed["id"], {"firstname": "Quintessa", "lastname": "Crossprocess"}
            )
            expect(on_b.get_by_text("Quintessa", exact=True).first).to_be_attached(timeout=15_000)
            expect(on_b.get_by_text("Crossprocess", exact=True).first).to_be_attached()
        finally:
            browser.close()

    # A delivery HubSpot retries to the other app is stored once.
    portal = int(sandbox.portals()[0]["portalId"])  # events of a portal not connected are refused
    body = json.dumps([_event(event_id=990001, object_id=int(renamed["id"]), portal_id=portal)]).encode()
    stamp = str(int(time.time() * 1000))
    signature = webhooks.signature_v3(
        client_secret=DEFAULT_CLIENT_SECRET, method="POST", uri=shared["hook"], body=body, timestamp=stamp
    )
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": stamp,
    }
    for app in ("a", "b"):
        response = httpx2.post(shared[app] + "/hubspot/webhook", content=body, headers=headers, timeout=10)
        assert response.status_code in (200, 204), response.text
    with store.open(shared["db"]) as db:
        stored = db.conn.execute("SELECT count(*) FROM webhook_inbox WHERE event_id = 990001").fetchone()[0]
    assert stored == 1


def _event(*, event_id: int, object_id: int, portal_id: int) -> dict[str, object]:
    return {
        "eventId": event_id,
        "subscriptionId": 25,
        "portalId": portal_id,
        "appId": 54321,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 1,
        "objectId": object_id,
        "propertyName": "firstname",
        "propertyValue": "Quintessa",
        "changeSource": "CRM_UI",
    }
