"""Settings on a fresh cache of each backend, and two sandbox portals to connect, for the connections' tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
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
from tests.portal_fixtures import fresh_limits, quick_search  # noqa: F401  (fixtures for this directory)
from tests.synced_copies import SyncedCopies, portal_fingerprint


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
# Seeded history ends at today's midnight UTC (the anchor is the day before), as the HubSpot
# sandbox's does, not at the moment of each reset: every reset holds the same company, so a
# cache synced once can stand for a test's own sync (``connected``).
PIPEDRIVE_COMPANY = {
    "seed": 7,
    "persons": 12,
    "organizations": 4,
    "deals": 5,
    "users": 2,
    "anchor_date": (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat(),
}


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


def cli_ok(*args: str) -> str:
    """``python -m crm ARGS``, which must succeed: its stdout."""
    code, out, err = run_cli(*args)
    assert code == 0, (args, out, err)
    return out


def token_connect(crm: str, token: str, base_url: str, name: str) -> tuple[str, ...]:
    """The command line that connects an account of ``crm`` by token as the connection ``name``."""
    return ("connect", crm, "--token", token, "--base-url", base_url, "--name", name)


def live_ids(records: list[dict]) -> set[str]:
    """The ids of a sandbox's records that are neither archived nor deleted (what a sync keeps)."""
    return {str(r["id"]) for r in records if not r.get("archived") and not r.get("is_deleted")}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, cache_target: str) -> str:
    """The command line's environment: only this test's cache and a fresh key (none of the host's)."""
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_", "PIPEDRIVE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DB", cache_target)
    monkeypatch.setenv("CRM_SECRET_KEY", Fernet.generate_key().decode())
    return cache_target


def company_fingerprint(pipedrive: PipedriveAdmin) -> str:
    """A digest of what the Pipedrive company holds now (``portal_fingerprint``'s counterpart)."""
    truth = {t: pipedrive.truth(t) for t in ("persons", "organizations", "deals")}
    return hashlib.sha256(json.dumps(truth, sort_keys=True, default=str).encode()).hexdigest()


@pytest.fixture
def connected(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cli_env: str, synced_copies: SyncedCopies
) -> Settings:
    """HubSpot ("HubSpot") and Pipedrive ("Pipedrive") connected from the command line by
    token, synced, and pronouns set up in both: where the links' tests start.

    The connections and their first ``sync --all`` are a copy of a cache made so once per
    session and backend (tests/synced_copies.py: the sync was most of this fixture's time).
    Each test then connects both again with tokens of its own (the same portal and company
    again keep their caches; the copy's tokens were encrypted with another key) and sets up
    pronouns, which changes the CRMs themselves.
    """
    connects = (
        token_connect("hubspot", sandbox.private_app_token(), sandbox.url, "HubSpot"),
        token_connect("pipedrive", pipedrive.api_token(), pipedrive.url, "Pipedrive"),
    )

    def build(target: str) -> None:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CRM_DB", target)
            for args in (*connects, ("sync", "--all")):
                cli_ok(*args)

    content = portal_fingerprint(sandbox) + company_fingerprint(pipedrive)
    synced_copies.fill(cli_env, "cli-hubspot-and-pipedrive", content, build)
    for args in (*connects, ("pronouns",)):
        cli_ok(*args)
    return load_settings(os.environ, {})
