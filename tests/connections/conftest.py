"""Settings on a fresh cache of each backend, and two sandbox portals to connect, for the connections' tests."""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from crm import oauth
from crm.__main__ import main
from crm.config import Settings, load_settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.pipedrive_fixtures import reset_company, serve_company
from tests.portal_fixtures import fresh_limits  # noqa: F401  (a fixture for this directory)


@pytest.fixture
def home_settings(cache_target: str) -> Settings:
    """Sandbox-mode settings whose CRM_DB is a fresh cache (SQLite, then PostgreSQL)."""
    return Settings(mode="sandbox", db=cache_target, secret_keys=(Fernet.generate_key().decode(),))


REDIRECT_URI = "http://127.0.0.1:8501/hubspot/callback"
WEBHOOK_URL = "https://crm.example.com/hubspot/webhook"


@pytest.fixture
def two_portal_settings(two_portals, cache_target: str) -> Settings:
    """Demo-mode settings on the two-portal sandbox (101 and 202), webhooks verifiable."""
    env = {
        "CRM_DB": cache_target,
        "HUBSPOT_REDIRECT_URI": REDIRECT_URI,
        "HUBSPOT_WEBHOOK_URL": WEBHOOK_URL,
        "CRM_SECRET_KEY": Fernet.generate_key().decode(),
    }
    return dataclasses.replace(load_settings(env, {}).for_sandbox(two_portals.url), http_timeout=10.0)


@pytest.fixture
def connect_portal(two_portals, two_portal_settings: Settings) -> Callable[[int], oauth.ConnectionInfo]:
    """What a person does on the Connect page: Connect HubSpot, pick the portal, approve."""

    def connect(portal_id: int) -> oauth.ConnectionInfo:
        url, nonce = oauth.start_connect(
            two_portal_settings, ticket=oauth.create_ticket(two_portal_settings, None)
        )
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        code = two_portals.oauth_code(
            portal_id=portal_id,
            client_id=q["client_id"],
            redirect_uri=q["redirect_uri"],
            scopes=q["scope"].split(),
            optional_scopes=q.get("optional_scope", "").split(),
            state=q["state"],
        )["code"]
        return oauth.complete_connect(two_portal_settings, state=q["state"], code=code, nonce=nonce)

    return connect


PIPEDRIVE_REDIRECT_URI = "http://127.0.0.1:8501/pipedrive/callback"
PIPEDRIVE_COMPANY = {"seed": 7, "persons": 12, "organizations": 4, "deals": 5, "users": 2}


@pytest.fixture(scope="session")
def pipedrive_server() -> Iterator[PipedriveServer]:
    """A Pipedrive sandbox; its default OAuth app accepts the app's loopback callback
    (``PIPEDRIVE_REDIRECT_URI`` is one of its default redirect URIs)."""
    yield from serve_company(PIPEDRIVE_COMPANY)


@pytest.fixture
def pipedrive(pipedrive_server: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(pipedrive_server, PIPEDRIVE_COMPANY)


@pytest.fixture
def pipedrive_settings(pipedrive: PipedriveAdmin, cache_target: str) -> Settings:
    """Settings with the sandbox as Pipedrive's OAuth server and a cache of the test's own."""
    return Settings(
        mode="sandbox",
        db=cache_target,
        secret_keys=(Fernet.generate_key().decode(),),
        pipedrive_client_id="pipedrive-sandbox-client-id",
        pipedrive_client_secret="pipedrive-sandbox-client-secret",
        pipedrive_oauth_url=pipedrive.url,
        pipedrive_redirect_uri=PIPEDRIVE_REDIRECT_URI,
        http_timeout=10.0,
    )


def run_cli(*args: str) -> tuple[int, str, str]:
    """``python -m crm ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, cache_target: str) -> str:
    """The command line's environment: only this test's cache and a fresh key (none of the host's)."""
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_", "PIPEDRIVE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DB", cache_target)
    monkeypatch.setenv("CRM_SECRET_KEY", Fernet.generate_key().decode())
    return cache_target


@pytest.fixture
def connected(sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cli_env: str) -> Settings:
    """HubSpot ("HubSpot") and Pipedrive ("Pipedrive") connected from the command line by
    token, synced, and pronouns set up in both: where the links' tests start."""
    hubspot = ("connect", "hubspot", "--token", sandbox.private_app_token(), "--base-url", sandbox.url)
    pipe = ("connect", "pipedrive", "--token", pipedrive.api_token(), "--base-url", pipedrive.url)
    for args in (
        (*hubspot, "--name", "HubSpot"),
        (*pipe, "--name", "Pipedrive"),
        ("sync", "--all"),
        ("pronouns",),
    ):
        code, out, err = run_cli(*args)
        assert code == 0, (args, out, err)
    return load_settings(os.environ, {})
