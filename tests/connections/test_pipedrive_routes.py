"""The Pipedrive connect and callback routes through Starlette's TestClient, the sandbox's
consent page answered over loopback HTTP, on both cache backends."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from crm import connections, oauth
from crm.config import Settings
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from ui.routes import BIND_COOKIE, PIPEDRIVE_BIND_COOKIE, ROUTES


@pytest.fixture
def browser(pipedrive_settings: Settings) -> Iterator[TestClient]:
    app = Starlette(routes=ROUTES)
    app.state.settings = pipedrive_settings
    with TestClient(app, base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        yield client


def allow(authorize_url: str) -> str:
    """Press "Allow and install" on the sandbox's consent page; the redirect back (with the code)."""
    with httpx2.Client(trust_env=False, timeout=10) as person:
        page = person.get(authorize_url)
        assert page.status_code == 200, page.text
        nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
        parts = urlsplit(authorize_url)
        answer = person.post(
            f"{parts.scheme}://{parts.netloc}/oauth/authorize/decision",
            data={"nonce": nonce, "decision": "allow"},
        )
    assert answer.status_code == 302
    return str(answer.headers["location"])


def landing(response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).path == "/connect"
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_the_pipedrive_round_trip_through_the_routes_connects_the_company(
    browser: TestClient, pipedrive: PipedriveAdmin, pipedrive_settings: Settings
) -> None:
    start = browser.get(
        "/pipedrive/connect", params={"ticket": oauth.create_ticket(pipedrive_settings, None)}
    )
    assert start.status_code == 302
    assert start.headers["location"].startswith(pipedrive.url + "/oauth/authorize?")
    cookie = start.headers["set-cookie"].lower()
    assert (
        cookie.startswith(f"{PIPEDRIVE_BIND_COOKIE}=")
        and "path=/pipedrive" in cookie
        and "httponly" in cookie
    )

    back = allow(start.headers["location"])
    assert back.startswith(pipedrive_settings.pipedrive_redirect_uri + "?")
    result = landing(browser.get(urlsplit(back).path + "?" + urlsplit(back).query))
    assert result == {"pipedrive": "connected", "connection": "pipedrive-13370001"}
    [conn] = connections.list_connections(pipedrive_settings)
    assert (conn.crm, conn.base_url) == ("pipedrive", pipedrive.url)
    assert connections.status(pipedrive_settings, conn).label == "connected"


def test_a_pipedrive_callback_from_another_browser_is_refused_and_connects_nothing(
    browser: TestClient, pipedrive: PipedriveAdmin, pipedrive_settings: Settings
) -> None:
    start = browser.get(
        "/pipedrive/connect", params={"ticket": oauth.create_ticket(pipedrive_settings, None)}
    )
    back = allow(start.headers["location"])
    browser.cookies.clear()  # another browser: no binding cookie
    result = landing(browser.get(urlsplit(back).path + "?" + urlsplit(back).query))
    assert result == {"pipedrive": "error", "reason": "state_foreign"}
    assert connections.list_connections(pipedrive_settings) == []


def test_pipedrive_connect_without_a_ticket_is_a_plain_refusal(browser: TestClient) -> None:
    response = browser.get("/pipedrive/connect")
    assert response.status_code == 403
    assert "Start from the Connect page" in response.text
    assert BIND_COOKIE not in response.headers.get("set-cookie", "")
    assert PIPEDRIVE_BIND_COOKIE not in response.headers.get("set-cookie", "")


def test_pipedrive_connect_without_a_pipedrive_app_sends_back_a_configuration_error(
    pipedrive_settings: Settings,
) -> None:
    app = Starlette(routes=ROUTES)
    app.state.settings = dataclasses.replace(
        pipedrive_settings, pipedrive_client_id="", pipedrive_client_secret=""
    )
    with TestClient(app, base_url="http://127.0.0.1:8501", follow_redirects=False) as client:
        ticket = oauth.create_ticket(app.state.settings, None)
        result = landing(client.get("/pipedrive/connect", params={"ticket": ticket}))
    assert result == {"pipedrive": "error", "reason": "config"}
