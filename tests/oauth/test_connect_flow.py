"""The OAuth connect round trip against the sandbox: state, code, tokens, ticket, PKCE."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pytest
from oauth_flow import approve, connect, query, start, stored_bytes, token_requests

from crm import oauth, store
from crm.config import Settings
from crm.errors import OAuthFlowError


def test_authorize_url_uses_the_configured_redirect_uri_and_a_fresh_state(settings: Settings):
    first, _ = start(settings)
    second, _ = start(settings)
    assert first.startswith(settings.authorize_url + "?")
    q = query(first)
    assert q["redirect_uri"] == settings.redirect_uri
    assert q["client_id"] == settings.client_id
    assert q["scope"].split() == list(settings.scopes)
    assert q["optional_scope"].split() == list(settings.optional_scopes)
    assert "%20" in urlsplit(first).query and "+" not in urlsplit(first).query
    assert len(q["state"]) >= 32 and q["state"] != query(second)["state"]
    assert "code_challenge" not in q  # PKCE is off unless configured


def test_connect_stores_the_portal_and_redeems_the_code_once_with_secrets_in_the_body(
    settings: Settings, sandbox
):
    info = connect(settings, sandbox)
    assert info.status == "connected" and info.mode == "sandbox"
    assert info.portal_id == 62515 and info.user_email and info.hub_domain and info.ui_domain
    assert "crm.objects.contacts.read" in info.scopes and info.expires_at
    grants = token_requests(sandbox, "authorization_code")
    assert len(grants) == 1
    grant = grants[0]
    assert grant["path"] == "/oauth/2026-03/token" and grant["status"] == 200
    assert grant["query_params"] == []
    assert {"code", "client_id", "client_secret", "redirect_uri", "grant_type"} <= set(grant["body_params"])
    for request in token_requests(sandbox):
        assert request["query_params"] == []  # introspection too: nothing in any URL


def test_unknown_state_is_refused_without_a_token_request(settings: Settings, sandbox):
    url, nonce = start(settings)
    code = approve(sandbox, url)
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state="forged-state-value", code=code, nonce=nonce)
    assert caught.value.reason == "state_unknown"
    with pytest.raises(OAuthFlowError) as missing:
        oauth.complete_connect(settings, state=None, code=code, nonce=nonce)
    assert missing.value.reason == "state_missing"
    assert token_requests(sandbox) == []


def test_expired_state_is_refused_without_a_token_request(settings: Settings, sandbox, monkeypatch):
    monkeypatch.setattr(oauth.consent, "STATE_TTL_S", 0)
    url, nonce = start(settings)
    code = approve(sandbox, url)
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state=query(url)["state"], code=code, nonce=nonce)
    assert caught.value.reason == "state_expired"
    assert token_requests(sandbox) == []


def test_a_second_callback_with_the_same_state_redeems_nothing(settings: Settings, sandbox):
    url, nonce = start(settings)
    code = approve(sandbox, url)
    state = query(url)["state"]
    oauth.complete_connect(settings, state=state, code=code, nonce=nonce)
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state=state, code=code, nonce=nonce)
    assert caught.value.reason == "state_reused"
    assert len(token_requests(sandbox, "authorization_code")) == 1


def test_a_state_from_another_browser_is_refused_and_burnt(settings: Settings, sandbox):
    url, nonce = start(settings)
    code = approve(sandbox, url)
    state = query(url)["state"]
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state=state, code=code, nonce="attacker-cookie")
    assert caught.value.reason == "state_foreign"
    with pytest.raises(OAuthFlowError) as again:
        oauth.complete_connect(settings, state=state, code=code, nonce=nonce)
    assert again.value.reason == "state_reused"
    assert token_requests(sandbox) == []
    assert oauth.connection_info(settings).status == "disconnected"


def test_a_declined_consent_reports_access_denied_and_burns_the_state(settings: Settings, sandbox):
    url, nonce = start(settings)
    state = query(url)["state"]
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state=state, code=None, nonce=nonce, error="access_denied")
    assert caught.value.reason == "access_denied"
    with pytest.raises(OAuthFlowError) as again:
        oauth.complete_connect(settings, state=state, code="x", nonce=nonce)
    assert again.value.reason == "state_reused"
    assert token_requests(sandbox) == []


def test_an_error_answer_without_this_browsers_state_leaves_its_flow_alone(settings: Settings, sandbox):
    url, nonce = start(settings)
    for state, cookie, reason in [
        (None, nonce, "state_missing"),
        ("forged-state-value", nonce, "state_unknown"),
        (query(url)["state"], "attacker-cookie", "state_foreign"),
    ]:
        with pytest.raises(OAuthFlowError) as caught:
            oauth.complete_connect(settings, state=state, code=None, nonce=cookie, error="access_denied")
        assert caught.value.reason == reason
    assert token_requests(sandbox) == []


def test_a_refused_code_is_reported_and_nothing_is_stored(settings: Settings, sandbox):
    url, nonce = start(settings)
    with pytest.raises(OAuthFlowError) as caught:
        oauth.complete_connect(settings, state=query(url)["state"], code="made-up-code", nonce=nonce)
    assert caught.value.reason == "code_rejected"
    assert oauth.connection_info(settings).status == "disconnected"


def test_pkce_sends_a_challenge_and_proves_it_with_the_verifier(settings: Settings, sandbox):
    pkce = dataclasses.replace(settings, pkce=True)
    url, nonce = start(pkce)
    q = query(url)
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    info = oauth.complete_connect(pkce, state=q["state"], code=approve(sandbox, url), nonce=nonce)
    assert info.status == "connected"
    assert "code_verifier" in token_requests(sandbox, "authorization_code")[0]["body_params"]


@pytest.mark.parametrize(
    "access",
    [
        {"staff_emails": ("ana@example.com",)},
        {"admin_emails": ("ana@example.com",)},
        {"open_access": True},
        {},
    ],
    ids=["staff-allowlist", "admins-only", "open-access", "loopback-open"],
)
def test_every_access_configuration_requires_a_single_use_ticket(settings: Settings, sandbox, access):
    configured = dataclasses.replace(settings, **access)
    with pytest.raises(OAuthFlowError) as caught:
        oauth.start_connect(configured, ticket=None)
    assert caught.value.reason == "ticket_required"
    ticket = oauth.create_ticket(configured, "ana@example.com")
    url, _ = oauth.start_connect(configured, ticket=ticket)
    assert query(url)["state"]
    with pytest.raises(OAuthFlowError) as reused:
        oauth.start_connect(configured, ticket=ticket)
    assert reused.value.reason == "ticket_invalid"
    with store.open(settings) as db:
        rows = db.conn.execute("SELECT staff_email FROM oauth_states").fetchall()
    assert [tuple(row) for row in rows] == [("ana@example.com",)]
    assert token_requests(sandbox) == []


def test_private_app_mode_has_nothing_to_connect(settings: Settings):
    private = dataclasses.replace(settings, mode="private_app", access_token="pat-1")
    with pytest.raises(OAuthFlowError) as caught:
        oauth.start_connect(private, ticket=oauth.create_ticket(private, None))
    assert caught.value.reason == "not_oauth"


def test_states_and_tickets_are_stored_hashed(settings: Settings, sandbox):
    ticket = oauth.create_ticket(settings, None)
    url, nonce = oauth.start_connect(dataclasses.replace(settings, pkce=True), ticket=ticket)
    state = query(url)["state"]
    dump = stored_bytes(settings)
    for secret in (ticket, state, nonce):
        assert secret.encode() not in dump


def test_connecting_another_portal_gives_it_a_connection_of_its_own_and_keeps_the_first(
    settings: Settings, sandbox
):
    from crm import connections, store, sync

    first = connect(settings, sandbox)
    sync.run_sync(settings, kind="full", trigger="test")
    first_id = str(next(r["id"] for r in sandbox.truth("contacts") if not r.get("archived")))
    sync.queue_edits(settings, "contacts", {first_id: {"jobtitle": "Portal one only"}}, by=None)

    sandbox.configure(portal_id=99001)
    info = connect(settings, sandbox)
    assert info.portal_id == 99001
    old, new = connections.list_connections(settings)
    assert (old.account_id, new.account_id) == (str(first.portal_id), "99001")
    with store.open(connections.settings_for(settings, new)) as db:
        assert db.queries.counts().get("contacts", 0) == 0
        assert db.outbox.edits_frame(statuses=("pending",)).empty
    with store.open(connections.settings_for(settings, old)) as db:
        assert db.queries.counts()["contacts"] > 0
        assert len(db.outbox.edits_frame(statuses=("pending",))) == 1
        assert db.auth.read_tokens()  # the first portal stays connected


def test_reconnecting_the_same_portal_keeps_the_cache(settings: Settings, sandbox):
    from crm import store, sync

    connect(settings, sandbox)
    sync.run_sync(settings, kind="full", trigger="test")
    connect(settings, sandbox)
    db = store.open(settings)
    try:
        assert db.queries.counts()["contacts"] == len(
            [r for r in sandbox.truth("contacts") if not r.get("archived")]
        )
    finally:
        db.close()
