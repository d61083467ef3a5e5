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
from crm.errors import ConfigError
from ui import runtime
from ui.routes import BIND_COOKIE, ROUTES


def make_app(settings: Settings) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.state.settings = settings
    return app


@pytest.fixture
def browser(settings: Settings) -> Iterator[TestClient]:
    with TestClient(make_app(settings), base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        yield client


def begin(client: TestClient, settings: Settings):
    """Follow the Connect page's link: /hubspot/connect with a freshly minted ticket."""
    return client.get("/hubspot/connect", params={"ticket": oauth.create_ticket(settings, None)})


def landing(response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).path == "/connect"
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_connect_redirects_to_hubspot_and_sets_the_binding_cookie(browser: TestClient, settings: Settings):
    response = begin(browser, settings)
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
    # Served under its public name, so only with CRM_OPEN_ACCESS (a proxy that authenticates).
    secure = dataclasses.replace(
        settings, redirect_uri="https://crm.example.com/hubspot/callback", open_access=True
    )
    with TestClient(make_app(secure), base_url="https://crm.example.com", follow_redirects=False) as client:
        assert "secure" in begin(client, secure).headers["set-cookie"].lower()


def test_callback_connects_and_lands_on_the_connect_page_without_secrets(
    browser: TestClient, settings, sandbox
):
    authorize = begin(browser, settings).headers["location"]
    code = approve(sandbox, authorize)
    state = query(authorize)["state"]
    response = browser.get("/hubspot/callback", params={"code": code, "state": state})
    # The Connect page opens on the connection the tokens went to.
    assert landing(response) == {"hubspot": "connected", "connection": "hubspot-62515"}
    assert code not in response.headers["location"] and state not in response.headers["location"]
    assert (
        f'{BIND_COOKIE}=""' in response.headers["set-cookie"]
        or "max-age=0" in response.headers["set-cookie"].lower()
    )
    assert oauth.connection_info(settings).status == "connected"


def test_hitting_the_callback_twice_redeems_the_code_once(browser: TestClient, settings, sandbox):
    authorize = begin(browser, settings).headers["location"]
    params = {"code": approve(sandbox, authorize), "state": query(authorize)["state"]}
    assert landing(browser.get("/hubspot/callback", params=params))["hubspot"] == "connected"
    browser.cookies.set(BIND_COOKIE, "still-here", path="/hubspot")
    assert landing(browser.get("/hubspot/callback", params=params)) == {
        "hubspot": "error",
        "reason": "state_reused",
    }
    assert len(token_requests(sandbox, "authorization_code")) == 1


def test_a_callback_in_another_browser_is_refused_without_a_token_request(browser, settings, sandbox):
    authorize = begin(browser, settings).headers["location"]
    params = {"code": approve(sandbox, authorize), "state": query(authorize)["state"]}
    with TestClient(make_app(settings), base_url="http://127.0.0.1:8501", follow_redirects=False) as stranger:
        response = stranger.get("/hubspot/callback", params=params)
    assert landing(response) == {"hubspot": "error", "reason": "state_foreign"}
    assert token_requests(sandbox) == []


def test_a_declined_consent_lands_with_access_denied(browser: TestClient, settings, sandbox):
    authorize = begin(browser, settings).headers["location"]
    response = browser.get(
        "/hubspot/callback", params={"error": "access_denied", "state": query(authorize)["state"]}
    )
    assert landing(response) == {"hubspot": "error", "reason": "access_denied"}
    assert token_requests(sandbox) == []


ACCESS_CONFIGURATIONS = {
    "staff-login": ({"staff_domains": ("example.com",), "admin_emails": ("ana@example.com",)}, True),
    "admins-only": ({"admin_emails": ("ana@example.com",)}, True),
    "open-access": ({"open_access": True}, False),
    "loopback-open": ({}, False),
}


@pytest.fixture(params=list(ACCESS_CONFIGURATIONS))
def configured(request, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``settings`` in one access configuration; ``[auth]`` in secrets where it has login."""
    fields, login = ACCESS_CONFIGURATIONS[request.param]
    if login:
        monkeypatch.setattr(runtime, "secrets", lambda: {"auth": {"client_id": "idp"}})
    return dataclasses.replace(settings, **fields)


def refused_with_a_plain_page(response, status: int = 403) -> str:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert "set-cookie" not in response.headers
    return response.text


def test_connect_without_a_ticket_gets_a_403_page_in_every_access_configuration(
    configured: Settings, sandbox
):
    with TestClient(make_app(configured), base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        page = refused_with_a_plain_page(client.get("/hubspot/connect"))
        assert '<a href="/connect">' in page and "Connect page" in page
        for forged in ("", "x" * 43):
            refused_with_a_plain_page(client.get("/hubspot/connect", params={"ticket": forged}))
        ticket = oauth.create_ticket(configured, "ana@example.com")
        assert client.get("/hubspot/connect", params={"ticket": ticket}).status_code == 302
        assert "expired or was already used" in refused_with_a_plain_page(
            client.get("/hubspot/connect", params={"ticket": ticket})
        )
    assert token_requests(sandbox) == []


PROXIED = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Forwarded-Proto": "https"},
    {"Forwarded": "for=203.0.113.9;proto=https"},
    {"X-Real-IP": "203.0.113.9"},
    {"Host": "crm.example.com"},
    {"Host": "127.0.0.1.evil.example:8501"},
]


@pytest.mark.parametrize("headers", PROXIED, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
def test_open_mode_refuses_connect_and_callback_through_a_proxy_and_says_what_to_configure(
    browser: TestClient, settings: Settings, sandbox, headers
):
    ticket = oauth.create_ticket(settings, None)
    connect = browser.get("/hubspot/connect", params={"ticket": ticket}, headers=headers)
    text = refused_with_a_plain_page(connect)
    assert "[auth]" in text and "secrets.toml" in text and "CRM_OPEN_ACCESS=true" in text
    callback = browser.get("/hubspot/callback", params={"state": "s", "code": "c"}, headers=headers)
    refused_with_a_plain_page(callback)
    assert browser.get("/hubspot/connect", params={"ticket": ticket}).status_code == 302  # not spent
    assert token_requests(sandbox) == []


def test_proxied_requests_pass_with_open_access_or_staff_login(settings: Settings, monkeypatch):
    proxied = {"X-Forwarded-For": "203.0.113.9", "Host": "crm.example.com"}
    trusted = dataclasses.replace(settings, open_access=True)
    with TestClient(make_app(trusted), follow_redirects=False) as client:
        response = client.get(
            "/hubspot/connect", params={"ticket": oauth.create_ticket(trusted, None)}, headers=proxied
        )
    assert response.status_code == 302
    monkeypatch.setattr(runtime, "secrets", lambda: {"auth": {"client_id": "idp"}})
    with TestClient(make_app(settings), follow_redirects=False) as client:
        response = client.get(
            "/hubspot/connect", params={"ticket": oauth.create_ticket(settings, None)}, headers=proxied
        )
    assert response.status_code == 302


def test_webhook_and_health_answer_through_a_proxy_in_open_mode(browser: TestClient):
    proxied = {"X-Forwarded-For": "203.0.113.9", "Host": "crm.example.com"}
    assert browser.get("/healthz", headers=proxied).status_code == 200
    webhook = browser.post("/hubspot/webhook", content=b"[]", headers=proxied)
    assert webhook.status_code == 401  # judged by its signature, not refused as proxied


def test_an_error_callback_without_a_valid_state_keeps_the_binding_cookie(
    browser: TestClient, settings, sandbox
):
    authorize = begin(browser, settings).headers["location"]
    for params in (
        {"error": "access_denied"},
        {"error": "access_denied", "state": "forged"},
        {"state": "forged"},
    ):
        response = browser.get("/hubspot/callback", params=params)
        assert landing(response)["hubspot"] == "error"
        assert "set-cookie" not in response.headers
    # The flow this browser started still completes.
    code = approve(sandbox, authorize)
    done = browser.get("/hubspot/callback", params={"code": code, "state": query(authorize)["state"]})
    assert landing(done)["hubspot"] == "connected"


def test_healthz_says_only_ok_or_unavailable(browser: TestClient, settings: Settings, sandbox):
    before = browser.get("/healthz")
    assert before.status_code == 200 and before.json() == {"status": "ok"}
    authorize = begin(browser, settings).headers["location"]
    browser.get(
        "/hubspot/callback", params={"code": approve(sandbox, authorize), "state": query(authorize)["state"]}
    )
    after = browser.get("/healthz")
    assert after.json() == {"status": "ok"}


def test_healthz_is_503_unavailable_when_the_cache_cannot_be_opened(settings: Settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    broken = dataclasses.replace(settings, db=str(blocker / "crm.db"))
    with TestClient(make_app(broken)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_healthz_names_no_setting_when_the_configuration_is_broken(monkeypatch):
    def broken():
        raise ConfigError("HUBSPOT_CLIENT_SECRET", "must be set")

    monkeypatch.setattr(runtime, "settings", broken)
    with TestClient(Starlette(routes=ROUTES)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_routes_answer_a_broken_cache_with_a_503_page(settings: Settings, tmp_path, sandbox):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database" * 200)
    broken = dataclasses.replace(settings, db=str(garbage))
    with TestClient(make_app(broken), base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        for response in (
            client.get("/hubspot/connect", params={"ticket": "x" * 43}),
            client.get("/hubspot/callback", params={"state": "s", "code": "c"}),
        ):
            assert "cache is unavailable" in refused_with_a_plain_page(response, 503)
    assert token_requests(sandbox) == []


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
        response = begin(client, public)
    assert response.headers["location"].startswith(public.authorize_url + "?")
    assert response.headers["set-cookie"].startswith(f"{BIND_COOKIE}=")
