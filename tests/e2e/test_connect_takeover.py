"""Finding 1 end to end: a stranger cannot take over the HubSpot connection, in any auth setup.

The dashboard runs under ``streamlit run`` on loopback against the test sandbox, already
connected to the sandbox portal with an edit queued. A client with no cookie and no login
then drives the OAuth round trip as far as the app lets it: ``/hubspot/connect`` (without
a ticket, and with a made-up one), then HubSpot's side (the sandbox mints a code for a
state of the attacker's choosing) and ``/hubspot/callback``. In every configuration the
app answers 403, HubSpot's token endpoint is never called, and the cache keeps its
portal, its connection and the queued edit.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from e2ekit import ARTIFACTS, ROOT, stop, streamlit_command

from crm import oauth, store
from crm.config import Settings, load_settings
from crm.sync import run_sync
from crm.sync.edits import queue_new_contact

AUTH = """
[auth]
redirect_uri = "http://127.0.0.1:8501/oauth2callback"
cookie_secret = "a-test-cookie-secret-of-32-bytes-plus"
client_id = "staff-idp-client"
client_secret = "staff-idp-secret"
server_metadata_url = "https://idp.example/.well-known/openid-configuration"
"""
# name -> (secrets.toml text, extra environment)
CONFIGURATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "staff-login": (AUTH, {"CRM_STAFF_DOMAINS": "example.com", "CRM_ADMIN_EMAILS": "ana@example.com"}),
    "admins-only": (AUTH, {"CRM_ADMIN_EMAILS": "ana@example.com"}),
    "open-access": ("", {"CRM_OPEN_ACCESS": "true"}),
    "loopback-open": ("", {}),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(http: httpx2.Client, server: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert server.poll() is None, f"streamlit exited; see test-artifacts/{log}"
        try:
            if http.get("/_stcore/health").text == "ok":
                return
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, "timed out waiting for streamlit to start"
        time.sleep(0.2)


@pytest.fixture(params=list(CONFIGURATIONS))
def dashboard(request, sandbox, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The app in one auth configuration, its cache connected to the sandbox with an edit queued."""
    secrets_text, extra_env = CONFIGURATIONS[request.param]
    db_path = tmp_path / "crm.db"
    port = _free_port()
    # The app's own origin, as on a server (on another loopback origin the route would first
    # bounce the browser there, which is harmless but not what this test is about).
    redirect_uri = f"http://127.0.0.1:{port}/hubspot/callback"
    sandbox.configure(redirect_uris=[redirect_uri])
    settings = load_settings({"CRM_DB": str(db_path), "HUBSPOT_REDIRECT_URI": redirect_uri}, {}).for_sandbox(
        sandbox.url
    )
    _connect_legitimately(settings, sandbox)
    run_sync(settings, kind="full", trigger="test")
    queue_new_contact(settings, {"email": "kept@example.com", "firstname": "Kept"}, by=None)

    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(secrets_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "HUBSPOT_", "STREAMLIT_"))}
    env.update(
        STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_hex(32),
        HUBSPOT_REDIRECT_URI=redirect_uri,
        CRM_DB=str(db_path),
        CRM_SANDBOX_URL=sandbox.url,
        **extra_env,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    # One log per test and configuration: they may run at once in other pytest-xdist workers.
    log_name = f"e2e-takeover-{request.node.name}.log"
    log = (ARTIFACTS / log_name).open("w")
    server = subprocess.Popen(
        streamlit_command(port, f"--secrets.files={secrets_file}"),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, follow_redirects=False) as http:
            _wait_until_up(http, server, log_name)
            yield {"name": request.param, "http": http, "settings": settings}
    finally:
        stop(server)
        log.close()


def _connect_legitimately(settings: Settings, sandbox) -> None:
    """What an admin does on the Connect page, through the real OAuth functions."""
    url, nonce = oauth.start_connect(settings, ticket=oauth.create_ticket(settings, "ana@example.com"))
    state = _query(url)["state"]
    code = sandbox.oauth_code(
        client_id=settings.client_id,
        redirect_uri=settings.redirect_uri,
        scopes=list(settings.scopes),
        state=state,
    )["code"]
    oauth.complete_connect(settings, state=state, code=str(code), nonce=nonce)


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _snapshot(settings: Settings, sandbox) -> dict[str, Any]:
    info = oauth.connection_info(settings)
    db = store.open(settings.db_path)
    try:
        queued = db.outbox.edits_frame(statuses=("pending",))
    finally:
        db.close()
    return {
        "connection": (info.status, info.portal_id, info.connected_at, info.user_email),
        "queued": sorted(f"{row.op} {row.payload}" for row in queued.itertuples()),
        "token_requests": len(sandbox.tokens()["requests"]),
    }


def test_a_stranger_cannot_take_over_the_connection_in_any_auth_configuration(dashboard, sandbox):
    http: httpx2.Client = dashboard["http"]
    settings: Settings = dashboard["settings"]
    before = _snapshot(settings, sandbox)
    assert before["connection"][0] == "connected" and "kept@example.com" in " ".join(before["queued"])

    # 1. Straight to the connect route: no cookie, no login, no ticket (or a made-up one).
    #    Should the app ever start a flow, go through with it as an attacker would.
    answers = []
    for params in ({}, {"ticket": secrets.token_urlsafe(32)}):
        answer = http.get("/hubspot/connect", params=params)
        answers.append((answer.status_code, answer.headers.get("content-type", "").split(";")[0]))
        assert "kept@example.com" not in answer.text
        if answer.status_code == 403:
            assert '<a href="/connect">' in answer.text
            assert "set-cookie" not in answer.headers and "location" not in answer.headers
        elif answer.headers.get("location", "").startswith(settings.authorize_url):
            state = _query(answer.headers["location"])["state"]
            code = sandbox.oauth_code(
                client_id=settings.client_id,
                redirect_uri=settings.redirect_uri,
                scopes=list(settings.scopes),
                state=state,
            )["code"]
            http.get("/hubspot/callback", params={"code": code, "state": state})  # with the cookie it got

    # 2. On to HubSpot anyway: a code for a state the attacker made up, then the callback.
    forged_state = secrets.token_urlsafe(32)
    code = sandbox.oauth_code(
        client_id=settings.client_id,
        redirect_uri=settings.redirect_uri,
        scopes=list(settings.scopes),
        state=forged_state,
    )["code"]
    callback = http.get("/hubspot/callback", params={"code": code, "state": forged_state})
    assert callback.status_code == 302
    assert "hubspot=error" in callback.headers["location"]

    # 3. Nothing happened: no token request, same portal and connection, the edit still queued.
    assert _snapshot(settings, sandbox) == before
    assert answers == [(403, "text/html"), (403, "text/html")], dashboard["name"]


@pytest.mark.parametrize("dashboard", ["loopback-open"], indirect=True)
def test_open_mode_refuses_a_proxied_connect_even_with_a_valid_ticket(dashboard, sandbox):
    http: httpx2.Client = dashboard["http"]
    settings: Settings = dashboard["settings"]
    before = _snapshot(settings, sandbox)
    ticket = oauth.create_ticket(settings, None)
    proxied = http.get(
        "/hubspot/connect", params={"ticket": ticket}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert proxied.status_code == 403
    assert "CRM_OPEN_ACCESS=true" in proxied.text and "[auth]" in proxied.text
    assert http.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"}).json() == {"status": "ok"}
    # The same ticket, directly on loopback, still starts the flow: the refusal spent nothing.
    direct = http.get("/hubspot/connect", params={"ticket": ticket})
    assert direct.status_code == 302 and direct.headers["location"].startswith(settings.authorize_url)
    assert _snapshot(settings, sandbox) == before
