"""The Connect page lets an admin pick the CRM to connect: HubSpot or Pipedrive."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from uikit import Portal, plain, texts

from crm import connections, crms, pipedrive_auth, subscriptions
from crm.sandbox.pipedrive import PipedriveConfig, serve
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.pgcluster import sqlite_only

PIPEDRIVE_APP = {
    "PIPEDRIVE_CLIENT_ID": "pipedrive-sandbox-client-id",
    "PIPEDRIVE_CLIENT_SECRET": "pipedrive-sandbox-client-secret",
    "PIPEDRIVE_OAUTH_URL": "http://127.0.0.1:9/pipedrive-oauth",
    "PIPEDRIVE_REDIRECT_URI": "http://127.0.0.1:8501/pipedrive/callback",
}


def _links(at) -> list[str]:
    return [m.value for m in at.markdown if m.allow_html]


def test_the_crm_choice_offers_hubspot_first_and_pipedrive(portal: Portal) -> None:
    at = portal.page("connect")
    at.run()
    assert not at.exception
    choice = at.radio(key="connect_crm_connect-crm")
    assert choice.options == ["HubSpot", "Pipedrive"]
    assert choice.value == "hubspot"
    [link] = _links(at)
    assert 'href="/hubspot/connect?ticket=' in link and ">Connect HubSpot</a>" in link


def test_picking_pipedrive_links_to_its_consent_flow_with_a_ticket(portal: Portal) -> None:
    at = portal.page("connect", secrets=PIPEDRIVE_APP)
    at.run()
    at.radio(key="connect_crm_connect-crm").set_value("pipedrive").run()
    assert not at.exception
    [link] = _links(at)
    match = re.fullmatch(
        r'<a href="/pipedrive/connect\?ticket=([A-Za-z0-9_\-]+)" target="_self" '
        r'data-testid="connect-pipedrive"[^>]*>Connect Pipedrive</a>',
        link,
    )
    assert match, link
    # The ticket starts Pipedrive's flow at its authorize page.
    settings = dataclasses.replace(
        portal.settings,
        pipedrive_client_id=PIPEDRIVE_APP["PIPEDRIVE_CLIENT_ID"],
        pipedrive_client_secret=PIPEDRIVE_APP["PIPEDRIVE_CLIENT_SECRET"],
        pipedrive_oauth_url=PIPEDRIVE_APP["PIPEDRIVE_OAUTH_URL"],
    )
    url, _ = pipedrive_auth.start_connect(settings, ticket=match.group(1))
    assert url.startswith(PIPEDRIVE_APP["PIPEDRIVE_OAUTH_URL"] + "/oauth/authorize?")


def test_picking_pipedrive_without_a_pipedrive_app_says_what_to_configure(portal: Portal) -> None:
    at = portal.page("connect")
    at.run()
    at.radio(key="connect_crm_connect-crm").set_value("pipedrive").run()
    assert not at.exception
    assert _links(at) == []
    [notice] = [i for i in at.info if "Pipedrive" in i.value]
    assert "PIPEDRIVE_CLIENT_ID" in notice.value
    assert "connect pipedrive --token" in plain(notice.value)


def test_the_return_from_pipedrive_says_pipedrive_is_connected(portal: Portal) -> None:
    at = portal.page("connect", secrets=PIPEDRIVE_APP)
    at.query_params["pipedrive"] = "connected"
    at.run()
    assert not at.exception
    assert "Pipedrive is connected" in at.success[0].value
    assert "pipedrive" not in at.query_params


def test_a_refused_pipedrive_sign_in_is_told_in_pipedrives_words(portal: Portal) -> None:
    at = portal.page("connect", secrets=PIPEDRIVE_APP)
    at.query_params["pipedrive"] = "error"
    at.query_params["reason"] = "code_rejected"
    at.run()
    assert not at.exception
    message = plain(at.error[0].value)
    assert "Pipedrive refused the authorization code" in message
    assert "HubSpot" not in message


@pytest.fixture(scope="module")
def pipedrive_url() -> Iterator[str]:
    server = serve(PipedriveConfig(seed=7, persons=6, organizations=2, deals=2, users=2))
    try:
        yield server.url
    finally:
        server.stop()


def test_a_pipedrive_connection_is_shown_reconnected_and_removed_in_pipedrives_words(
    portal: Portal, pipedrive_url: str
) -> None:
    with PipedriveAdmin(pipedrive_url) as pipedrive:
        pipedrive.reset(seed=7, persons=6, organizations=2, deals=2, users=2, tokens=True)
        conn, _ = pipedrive_auth.connect_api_token(
            portal.settings, pipedrive.api_token(), base_url=pipedrive_url
        )
    at = portal.page("connect", secrets=PIPEDRIVE_APP)
    at.run()
    assert not at.exception
    shown = texts(at)
    for fact in ("Company ID: 13370001", "Company domain: sandbox-company", "Mode: API token (static)"):
        assert fact in shown, fact
    assert "Portal ID" not in shown
    assert [b.url for b in at.get("link_button")] == ["https://sandbox-company.pipedrive.com/"]
    reconnect = [link for link in _links(at) if f'data-testid="reconnect-{conn.id}"' in link]
    assert len(reconnect) == 1 and 'href="/pipedrive/connect?ticket=' in reconnect[0]

    at.button(key=f"connect_remove_{conn.id}").click().run()
    warning = plain(next(w.value for w in at.warning if "Remove" in w.value))
    assert "(Pipedrive itself is not changed)" in warning and "HubSpot" not in warning

    at.button(key="connect_disconnect").click().run()
    assert not at.exception
    [toast] = [plain(t.value) for t in at.toast]
    assert toast.startswith("Disconnected locally.") and "API token was forgotten" in toast
    assert "This connection has no Pipedrive tokens" in texts(at)


@sqlite_only  # the page's message is the subject, not the store
def test_a_disconnect_that_leaves_webhooks_at_pipedrive_says_so_and_still_disconnects(
    portal: Portal, pipedrive_url: str
) -> None:
    with PipedriveAdmin(pipedrive_url) as pipedrive:
        pipedrive.reset(seed=7, persons=6, organizations=2, deals=2, users=2, tokens=True, webhooks=True)
        conn, _ = pipedrive_auth.connect_api_token(
            portal.settings, pipedrive.api_token(), base_url=pipedrive_url
        )
        chosen = connections.settings_for(portal.settings, conn)
        with crms.provider_of(chosen).connect(chosen) as api:
            subscriptions.register(chosen, api, "https://crm.example.com/pipedrive/webhook")
        at = portal.page("connect", secrets=PIPEDRIVE_APP)
        at.run()
        pipedrive.reset(
            seed=7, persons=6, organizations=2, deals=2, users=2, tokens=True
        )  # token regenerated

        at.button(key="connect_disconnect").click().run()

        assert not at.exception
        [toast] = [plain(t.value) for t in at.toast]
        assert toast.startswith("Disconnected locally.") and "API token was forgotten" in toast
        assert "5 webhook(s) could not be removed at Pipedrive" in toast and toast.endswith(
            "remove them there, or reconnect."
        )
        assert "This connection has no Pipedrive tokens" in texts(at)
        assert len(pipedrive.webhooks()["webhooks"]) == 5


def test_the_sidebar_names_a_pipedrive_connections_account_a_company(
    portal: Portal, pipedrive_url: str
) -> None:
    with PipedriveAdmin(pipedrive_url) as pipedrive:
        pipedrive.reset(seed=7, persons=6, organizations=2, deals=2, users=2, tokens=True)
        conn, _ = pipedrive_auth.connect_api_token(
            portal.settings, pipedrive.api_token(), base_url=pipedrive_url
        )
    at = portal.app(secrets=PIPEDRIVE_APP)
    at.query_params["connection"] = conn.id
    at.run()

    assert not at.exception
    sidebar = [plain(c.value) for c in at.sidebar.caption]
    assert "Company 13370001 (sandbox-company)" in sidebar, sidebar
    assert not [line for line in sidebar if line.startswith("Portal")], sidebar


def test_the_sync_page_counts_a_pipedrive_connections_records_in_pipedrives_words(
    portal: Portal, pipedrive_url: str
) -> None:
    with PipedriveAdmin(pipedrive_url) as pipedrive:
        pipedrive.reset(seed=7, persons=6, organizations=2, deals=2, users=2, tokens=True)
        conn, _ = pipedrive_auth.connect_api_token(
            portal.settings, pipedrive.api_token(), base_url=pipedrive_url
        )
    at = portal.page("sync", secrets=PIPEDRIVE_APP)
    at.query_params["connection"] = conn.id
    at.run()

    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["People", "Organizations", "Deals"], labels
    assert "Tickets" not in labels and "Contacts" not in labels, labels
