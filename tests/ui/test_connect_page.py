"""The Connect page: starting the OAuth flow, its result, the connection, pronouns set-up."""

from __future__ import annotations

import dataclasses
import re

import pytest
from uikit import Portal, plain, texts

from crm import oauth, store
from crm.errors import ConfigError


def _connect_links(at) -> list[str]:
    return [m.value for m in at.markdown if m.allow_html]


def _link_labels(at) -> list[str]:
    """The labels of the page's links into the OAuth flow, in page order."""
    return [re.search(r">([^<]*)</a>$", link).group(1) for link in _connect_links(at)]


def test_not_connected_offers_a_same_tab_connect_link_with_a_ticket(portal: Portal) -> None:
    at = portal.page("connect")
    at.run()
    assert not at.exception
    [link] = _connect_links(at)
    match = re.fullmatch(
        r'<a href="/hubspot/connect\?ticket=([A-Za-z0-9_\-]+)" target="_self"[^>]*>Connect HubSpot</a>', link
    )
    assert match, link
    assert "built-in HubSpot sandbox" in texts(at)

    # The ticket is minted once per view, not on every rerun.
    at.run()
    assert _connect_links(at) == [link]


def test_the_connect_link_starts_the_flow_at_the_sandbox_authorize_page(portal: Portal) -> None:
    at = portal.page("connect")
    at.run()
    ticket = re.search(r"ticket=([A-Za-z0-9_\-]+)", _connect_links(at)[0]).group(1)
    authorize_url, _ = oauth.start_connect(portal.settings, ticket=ticket)
    assert authorize_url.startswith(portal.sandbox.url + "/oauth/authorize?")


def test_return_from_hubspot_says_connected_and_clears_the_query(connected: Portal) -> None:
    at = connected.page("connect")
    at.query_params["hubspot"] = "connected"
    at.run()
    assert not at.exception
    assert "HubSpot is connected" in at.success[0].value
    # The result is shown once; the URL keeps only the connection the page shows.
    assert at.query_params == {"connection": "hubspot-62515"}
    assert "62515" in texts(at)


def test_a_declined_connection_is_shown_plainly(portal: Portal) -> None:
    at = portal.page("connect")
    at.query_params["hubspot"] = "error"
    at.query_params["reason"] = "access_denied"
    at.run()
    assert not at.exception
    assert "cancelled on HubSpot's page" in plain(at.error[0].value)
    assert at.query_params == {}
    assert len(_connect_links(at)) == 1


def test_an_unknown_error_reason_is_shown_escaped(portal: Portal) -> None:
    at = portal.page("connect")
    at.query_params["hubspot"] = "error"
    at.query_params["reason"] = "[x](javascript:alert(1))"
    at.run()
    body = at.error[0].value
    assert "\\[x\\]\\(javascript\\:" in body
    assert "reason: [x](javascript:alert(1))" in plain(body)


def test_connected_shows_portal_user_scopes_expiry_and_disconnects(connected: Portal) -> None:
    at = connected.page("connect")
    at.run()
    assert not at.exception
    shown = texts(at)
    for fact in (
        "Portal ID: 62515",
        "Portal domain: sandbox-portal.example.com",
        "Connected user: admin@sandbox-portal.example.com",
        "crm.objects.contacts.read",
        "renewed automatically",
    ):
        assert fact in shown, fact
    assert [b.url for b in at.get("link_button")] == ["https://app.hubspot.com/contacts/62515"]
    # Connected: nothing urges a connect; adding another account and reconnecting this one are offered.
    assert _link_labels(at) == ["Add connection", "Reconnect"]

    at.button(key="connect_disconnect").click().run()
    assert not at.exception
    assert oauth.connection_info(connected.settings).status == "disconnected"
    assert [t.value for t in at.toast] == ["Disconnected from HubSpot"]
    assert _link_labels(at)[-1] == "Connect HubSpot again"


def test_missing_pronouns_property_is_set_up_with_one_click(synced: Portal) -> None:
    at = synced.page("connect")
    at.run()
    assert not at.exception
    assert "no pronouns property" in texts(at)
    at.button(key="connect_pronouns").click().run()
    assert not at.exception
    db = store.open(synced.settings)
    try:
        assert "pronouns" in db.queries.property_defs("contacts")
    finally:
        db.close()
    assert "no pronouns property" not in texts(at)
    [done] = [t.value for t in at.toast if "Pronouns property created" in t.value]
    # Escaped once (the toast does it): an escape escaped again would show its backslashes.
    assert "\\\\" not in done, done


def test_pronouns_banner_waits_for_a_first_sync(connected: Portal) -> None:
    at = connected.page("connect")
    at.run()
    assert "pronouns" not in texts(at)


def test_tokens_the_key_cannot_decrypt_ask_for_a_reconnect(synced: Portal) -> None:
    from cryptography.fernet import Fernet

    at = synced.page("connect", secrets={"CRM_SECRET_KEY": Fernet.generate_key().decode()})
    at.run()
    assert not at.exception
    warning = plain(at.warning[0].value)
    assert "no longer accepts" in warning and "CRM_SECRET_KEY" in warning
    assert _link_labels(at)[-1] == "Connect HubSpot again"

    at = synced.page("contacts", secrets={"CRM_SECRET_KEY": Fernet.generate_key().decode()})
    at.run()
    assert "edits wait in the outbox" in plain(at.warning[0].value)
    assert len(at.data_editor) == 1


def test_a_bad_setting_is_one_clear_error_naming_it(portal: Portal) -> None:
    for page in ("contacts", "connect"):
        at = portal.app(f"pages/{page}.py", secrets={"CRM_SANDBOX_SEED": "many"})
        at.run()
        assert not at.exception
        [error] = at.error
        assert "CRM_SANDBOX_SEED" in plain(error.value) and "whole number" in plain(error.value)


def test_private_app_mode_says_so_and_offers_nothing_to_connect(portal: Portal) -> None:
    secrets = {
        "HUBSPOT_ACCESS_TOKEN": portal.sandbox.private_app_token(),
        "HUBSPOT_BASE_URL": portal.sandbox.url,
    }
    at = portal.page("connect", secrets=secrets)
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Mode: Private app (static token)" in shown and "Portal ID: 62515" in shown
    assert "Private-app mode" in shown and "HUBSPOT_ACCESS_TOKEN" in shown
    assert _connect_links(at) == []
    assert [b.key for b in at.button if b.key == "connect_disconnect"] == []
    assert "built-in HubSpot sandbox" not in shown


def test_a_refresh_that_failed_without_killing_the_token_is_shown_and_the_connection_kept(
    connected: Portal,
) -> None:
    misconfigured = dataclasses.replace(connected.settings, client_secret="mistyped-secret")
    source = oauth.token_source(misconfigured)
    with pytest.raises(ConfigError):  # HubSpot answers 400 invalid_client / BAD_CLIENT_SECRET
        source.refresh_after_401(source.access_token())
    at = connected.page("connect")
    at.run()
    assert not at.exception
    assert "Connected" in [s.value for s in at.subheader]
    warning = plain(at.warning[0].value)
    assert "Renewing the HubSpot access token failed" in warning and "client id or secret" in warning
