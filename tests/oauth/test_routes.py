"""The connect, callback and health routes through Starlette's TestClient (no Streamlit)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from oauth_flow import approve, query, token_requests
from starlette.applications import Starlette
from starlette.testclient import TestClient

from crm import oauth
from crm.config import Settings
from ui.routes import BIND_COOKIE, ROUTES


def make_app(settings: Settings) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.state.settings = settings
    return app


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings), base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        yield client


def landing(response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).path == "/connect"
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_connect_redirects_to_hubspot_and_sets_the_binding_cookie(browser: TestClient, settings: Settings):
    response = browser.get("/hubspot/connect")
    assert response.status_code == 302
    assert response.headers["location"].startswith(settings.authorize_url + "?")
    assert query(response.headers["location"])["redirect_uri"] == settings.redirect_uri
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{BIND_COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/hubspot" in lowered
    assert "secure" not in lowered  # the redirect URI is plain http on loopback
    assert response.headers["cache-control"] == "no-store"


def test_cookie_is_secure_when_the_redirect_uri_is_https(settings: Settings):
    secure = dataclasses.replace(settings, redirect_uri="https://crm.example.com/hubspot/callback")
    with TestClient(make_app(secure), base_url="https://crm.example.com", follow_redirects=False) as client:
        assert "secure" in client.get("/hubspot/connect").headers["set-cookie"].lower()


def test_callback_connects_and_lands_on_the_connect_page_without_secrets(
    browser: TestClient, settings, sandbox
):
    authorize = browser.get("/hubspot/connect").headers["location"]
    code = approve(sandbox, authorize)
    state = query(authorize)["state"]
    response = browser.get("/hubspot/callback", params={"code": code, "state": state})
    assert landing(response) == {"hubspot": "connected"}
    assert code not in response.headers["location"] and state not in response.headers["location"]
    assert (
        f'{BIND_COOKIE}=""' in response.headers["set-cookie"]
        or "max-age=0" in response.headers["set-cookie"].lower()
    )
    assert oauth.connection_info(settings).status == "connected"


def test_hitting_the_callback_twice_redeems_the_code_once(browser: TestClient, sandbox):
    authorize = browser.get("/hubspot/connect").headers["location"]
    params = {"code": approve(sandbox, authorize), "state": query(authorize)["state"]}
    assert landing(browser.get("/hubspot/callback", params=params))["hubspot"] == "connected"
    browser.cookies.set(BIND_COOKIE, "still-here", path="/hubspot")
    assert landing(browser.get("/hubspot/callback", params=params)) == {
        "hubspot": "error",
        "reason": "state_reused",
    }
    assert len(token_requests(sandbox, "authorization_code")) == 1


def test_a_callback_in_another_browser_is_refused_without_a_token_request(browser, settings, sandbox):
    authorize = browser.get("/hubspot/connect").headers["location"]
    params = {"code": approve(sandbox, authorize), "state": query(authorize)["state"]}
    with TestClient(make_app(settings), base_url="http://127.0.0.1:8501", follow_redirects=False) as stranger:
        response = stranger.get("/hubspot/callback", params=params)
    assert landing(response) == {"hubspot": "error", "reason": "state_foreign"}
    assert token_requests(sandbox) == []


def test_a_declined_consent_lands_with_access_denied(browser: TestClient, sandbox):
    authorize = browser.get("/hubspot/connect").headers["location"]
    response = browser.get(
        "/hubspot/callback", params={"error": "access_denied", "state": query(authorize)["state"]}
    )
    assert landing(response) == {"hubspot": "error", "reason": "access_denied"}
    assert token_requests(sandbox) == []


def test_connect_without_a_ticket_is_refused_when_staff_login_is_on(settings: Settings):
    staffed = dataclasses.replace(settings, staff_domains=("example.com",))
    with TestClient(make_app(staffed), follow_redirects=False) as client:
        assert landing(client.get("/hubspot/connect")) == {"hubspot": "error", "reason": "ticket_required"}
        ticket = oauth.create_ticket(staffed, "ana@example.com")
        assert client.get("/hubspot/connect", params={"ticket": ticket}).status_code == 302
        assert (
            landing(client.get("/hubspot/connect", params={"ticket": ticket}))["reason"] == "ticket_invalid"
        )


def test_healthz_reports_readiness_and_no_secret(browser: TestClient, settings: Settings, sandbox):
    before = browser.get("/healthz")
    assert before.status_code == 200
    assert before.json() == {
        "status": "ok",
        "db": "ok",
        "mode": "sandbox",
        "connection": "disconnected",
        "sandbox_url": sandbox.url,
    }
    authorize = browser.get("/hubspot/connect").headers["location"]
    browser.get(
        "/hubspot/callback", params={"code": approve(sandbox, authorize), "state": query(authorize)["state"]}
    )
    after = browser.get("/healthz")
    assert after.json()["connection"] == "connected"
    for token in sandbox.tokens()["tokens"]:
        assert token["token"] not in after.text


def test_healthz_is_503_when_the_cache_cannot_be_opened(settings: Settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    broken = dataclasses.replace(settings, db_path=blocker / "crm.db")
    with TestClient(make_app(broken)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["db"] == "error"


def test_connect_opened_on_another_loopback_name_moves_to_the_redirect_uris_origin(settings: Settings):
    # make run prints http://127.0.0.1:8501 while the default redirect URI says localhost:
    # the binding cookie must be set on the host HubSpot will send the browser back to.
    local = dataclasses.replace(settings, redirect_uri="http://localhost:8501/hubspot/callback")
    ticket = oauth.create_ticket(local, None)
    with TestClient(make_app(local), base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        response = client.get("/hubspot/connect", params={"ticket": ticket})
    assert response.status_code == 302
    assert "set-cookie" not in response.headers
    moved = urlsplit(response.headers["location"])
    assert (moved.scheme, moved.netloc, moved.path) == ("http", "localhost:8501", "/hubspot/connect")
    assert parse_qs(moved.query) == {"ticket": [ticket], "bounced": ["1"]}
    with TestClient(make_app(local), base_url="http://localhost:8501", follow_redirects=False) as client:
        arrived = client.get(response.headers["location"])
    assert arrived.headers["location"].startswith(local.authorize_url + "?")
    assert arrived.headers["set-cookie"].startswith(f"{BIND_COOKIE}=")


def test_connect_behind_a_proxy_never_bounces_to_the_public_host(settings: Settings):
    public = dataclasses.replace(settings, redirect_uri="https://crm.example.com/hubspot/callback")
    with TestClient(make_app(public), base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        response = client.get("/hubspot/connect")
    assert response.headers["location"].startswith(public.authorize_url + "?")
    assert response.headers["set-cookie"].startswith(f"{BIND_COOKIE}=")
