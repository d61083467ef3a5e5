"""Demo mode on any port: the OAuth redirect URI follows the port the app serves."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import httpx2
import pytest
from streamlit import config as st_config

import ui.runtime
from crm import connections, oauth, pipedrive_auth
from crm.sandbox.admin import SandboxAdmin
from tests.oauth.oauth_flow import approve, query


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo(monkeypatch, tmp_path) -> Iterator[int]:
    """A fresh demo process on another port: no settings, its own embedded sandbox and cache."""
    for name in list(os.environ):
        if name.startswith(("CRM_", "HUBSPOT_", "PIPEDRIVE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRM_DB", str(tmp_path / "crm.db"))
    monkeypatch.setattr(ui.runtime, "secrets", lambda: {})
    monkeypatch.setattr(ui.runtime, "_sandbox", None)
    monkeypatch.setattr(ui.runtime, "_pipedrive_sandbox", None)
    monkeypatch.setattr(ui.runtime, "_logging_done", True)
    port = _free_port()
    old = st_config.get_option("server.port")
    st_config.set_option("server.port", port)
    try:
        yield port
    finally:
        st_config.set_option("server.port", old)
        if ui.runtime._sandbox is not None:
            ui.runtime._sandbox.stop()
        if ui.runtime._pipedrive_sandbox is not None:
            ui.runtime._pipedrive_sandbox.stop()


def test_streamlit_on_port_8600_style_connects_without_extra_settings(demo: int):
    settings = ui.runtime.settings()
    assert settings.redirect_uri == f"http://localhost:{demo}/hubspot/callback"
    authorize_url, nonce = oauth.start_connect(settings, ticket=oauth.create_ticket(settings, None))
    q = query(authorize_url)
    assert q["redirect_uri"] == settings.redirect_uri
    consent = httpx2.get(authorize_url, timeout=10)
    assert consent.status_code == 200 and "does not match" not in consent.text
    with SandboxAdmin(settings.base_url) as sandbox:
        code = approve(sandbox, authorize_url)
    info = oauth.complete_connect(settings, state=q["state"], code=code, nonce=nonce)
    assert info.status == "connected"


def test_an_explicit_redirect_uri_is_kept(demo: int, monkeypatch):
    monkeypatch.setenv("HUBSPOT_REDIRECT_URI", "http://localhost:9999/hubspot/callback")
    assert ui.runtime.base_settings().redirect_uri == "http://localhost:9999/hubspot/callback"


def test_demo_mode_connects_pipedrive_through_its_embedded_sandbox_without_an_account(demo: int):
    settings = ui.runtime.settings()
    assert settings.pipedrive_redirect_uri == f"http://localhost:{demo}/pipedrive/callback"
    assert settings.pipedrive_oauth_url == ui.runtime.embedded_pipedrive_url()
    authorize_url, nonce = pipedrive_auth.start_connect(settings, ticket=oauth.create_ticket(settings, None))
    with httpx2.Client(trust_env=False, timeout=10) as person:
        consent = person.get(authorize_url)
        assert consent.status_code == 200 and "Allow and install" in consent.text
        form_nonce = consent.text.split('name="nonce" value="')[1].split('"')[0]
        answer = person.post(
            settings.pipedrive_oauth_url + "/oauth/authorize/decision",
            data={"nonce": form_nonce, "decision": "allow"},
        )
    back = query(answer.headers["location"])
    assert answer.headers["location"].startswith(settings.pipedrive_redirect_uri + "?")
    info = pipedrive_auth.complete_connect(settings, state=back["state"], code=back["code"], nonce=nonce)
    assert info.status == "connected"
    [conn] = connections.list_connections(settings)
    assert (conn.crm, conn.base_url) == ("pipedrive", settings.pipedrive_oauth_url)
