"""Connecting Pipedrive companies: by API token (CLI) and by OAuth consent, over loopback HTTP
to the Pipedrive sandbox, on both cache backends."""

from __future__ import annotations

import dataclasses
import io
import os
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from crm import connections, oauth, pipedrive_auth, store
from crm.__main__ import main
from crm.config import Settings
from crm.crms import provider_for
from crm.errors import NeedsReconnect, NotConnected, OAuthFlowError
from crm.interface import Record
from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.vault import Vault, load_keys

REDIRECT_URI = "http://127.0.0.1:8501/pipedrive/callback"  # the sandbox's registered callback (conftest)


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def settings(pipedrive_settings: Settings) -> Settings:
    return pipedrive_settings


def consent(settings: Settings) -> tuple[dict[str, str], str]:
    """What a person does: Add connection -> Pipedrive, then "Allow and install" on the
    sandbox's consent page. Returns the callback's query and the browser's binding nonce."""
    url, nonce = pipedrive_auth.start_connect(settings, ticket=oauth.create_ticket(settings, None))
    with httpx2.Client(trust_env=False, timeout=10) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        form_nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
        answer = browser.post(
            settings.pipedrive_oauth_url + "/oauth/authorize/decision",
            data={"nonce": form_nonce, "decision": "allow"},
        )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}, nonce


def connect_by_oauth(settings: Settings) -> oauth.ConnectionInfo:
    query, nonce = consent(settings)
    return pipedrive_auth.complete_connect(settings, state=query["state"], code=query["code"], nonce=nonce)


def only_pipedrive(settings: Settings) -> connections.Connection:
    [conn] = [c for c in connections.list_connections(settings) if c.crm == "pipedrive"]
    return conn


# -- API token, from the command line --------------------------------------------------------


def test_a_pipedrive_token_connected_on_the_command_line_is_listed_as_connected(
    pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    token = pipedrive.api_token()
    code, out, err = run_cli("connect", "pipedrive", "--token", token, "--base-url", pipedrive.url)
    assert code == 0, err
    assert out.strip() == (
        "Connected Pipedrive · Sandbox Company (company 13370001) "
        "(id pipedrive-13370001, company 13370001): connected."
    )
    assert token not in out + err

    code, out, err = run_cli("status", "--connection", "pipedrive-13370001")
    assert code == 0, err
    assert "Company:     13370001 (sandbox-company)" in out and "Mode:        api_token" in out

    code, out, err = run_cli("connections")
    assert code == 0, err
    [line] = out.strip().splitlines()
    assert line.split("\t")[:3] == [
        "pipedrive-13370001",
        "Pipedrive · Sandbox Company (company 13370001)",
        "connected",
    ]


def test_a_refused_pipedrive_token_is_reported_plainly_and_stores_nothing(
    pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    code, out, err = run_cli(
        "connect", "pipedrive", "--token", "not-a-real-token", "--base-url", pipedrive.url, "--name", "Acme"
    )
    assert code == 4
    assert "Pipedrive refused this API token" in err
    assert "nothing was stored" in err
    assert out == ""
    code, out, _ = run_cli("connections")
    assert code == 0 and out.startswith("No connections yet")


def test_connecting_pipedrive_without_its_base_url_says_which_option_is_missing(
    pipedrive: PipedriveAdmin, cli_env: str
) -> None:
    code, _, err = run_cli("connect", "pipedrive", "--token", pipedrive.api_token())
    assert code == 2
    assert "--base-url" in err


@pytest.mark.parametrize(
    "base_url",
    ["http://crm.example.com", "https://user:pw@acme.pipedrive.com", "https://acme.pipedrive.com/api"],
)
def test_a_token_is_never_sent_to_a_plain_http_or_odd_base_url(
    pipedrive: PipedriveAdmin, cli_env: str, base_url: str
) -> None:
    code, _, err = run_cli("connect", "pipedrive", "--token", pipedrive.api_token(), "--base-url", base_url)
    assert code == 2
    assert "--base-url" in err and "https" in err
    assert [r for r in pipedrive.stats()["requests"] if "/_sandbox/" not in r] == []  # nothing was called


def test_a_grant_whose_api_domain_is_not_https_is_refused_and_registers_nothing(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    pipedrive.configure(api_domain="http://crm.example.com")
    with pytest.raises(OAuthFlowError) as refused:
        connect_by_oauth(settings)
    assert refused.value.reason == "provider_error"
    assert connections.list_connections(settings) == []


def test_a_stored_api_token_opens_an_api_whose_identity_is_the_company(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    conn, info = pipedrive_auth.connect_api_token(settings, pipedrive.api_token(), base_url=pipedrive.url)
    assert (conn.crm, conn.account_id, conn.base_url) == ("pipedrive", "13370001", pipedrive.url)
    assert conn.target == conn.id  # a partition of its own, even as the first connection
    assert info.is_connected and info.mode == "api_token"
    chosen = connections.settings_for(settings, conn)
    with provider_for("pipedrive").connect(chosen) as api:
        me = api.identity()
        assert (me.account_id, me.account_name) == ("13370001", "Sandbox Company")
        assert len(api.list_page("contacts", properties=[], limit=5).records) == 5
    # The token rests encrypted: the partition's token row is not the token.
    with store.open(chosen) as db:
        [row] = db.auth.read_tokens().values()
    assert pipedrive.url not in row["ciphertext"] and "13370001" not in row["ciphertext"]


def test_pipedrive_connect_without_a_stored_connection_is_not_connected(settings: Settings) -> None:
    with pytest.raises(NotConnected):
        provider_for("pipedrive").connect(settings)


def test_disconnecting_an_api_token_forgets_it_and_says_pipedrive_keeps_it(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    conn, _ = pipedrive_auth.connect_api_token(settings, pipedrive.api_token(), base_url=pipedrive.url)
    chosen = connections.settings_for(settings, conn)
    result = oauth.disconnect(chosen)
    assert not result.revoked
    assert "API token was forgotten" in result.detail and "Pipedrive" in result.detail
    assert connections.status(settings, conn).label == "disconnected"
    with pytest.raises(NotConnected):
        provider_for("pipedrive").connect(chosen)


# -- OAuth consent ----------------------------------------------------------------------------


def test_the_consent_round_trip_registers_the_company_at_its_api_domain(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    url, _ = pipedrive_auth.start_connect(settings, ticket=oauth.create_ticket(settings, None))
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(pipedrive.url + "/oauth/authorize?")
    assert query["redirect_uri"] == [REDIRECT_URI] and "code_challenge" not in query

    info = connect_by_oauth(settings)
    assert info.is_connected and info.mode == "oauth" and info.portal_id == 13370001
    conn = only_pipedrive(settings)
    # The sandbox's token answer names itself as the company's api_domain.
    assert conn.base_url == pipedrive.url
    assert conn.name == "Pipedrive · Sandbox Company (company 13370001)"
    assert info.connection == conn.id
    with provider_for("pipedrive").connect(connections.settings_for(settings, conn)) as api:
        assert api.identity().account_id == "13370001"


@pytest.mark.parametrize("forged", ["missing", "unknown", "replayed", "other browser"])
def test_a_forged_or_missing_state_is_refused_before_the_code_is_redeemed(
    pipedrive: PipedriveAdmin, settings: Settings, forged: str
) -> None:
    query, nonce = consent(settings)
    state: str | None = query["state"]
    if forged == "missing":
        state = None
    elif forged == "unknown":
        state = "x" * 43
    elif forged == "replayed":
        connect_by_oauth_with(settings, query, nonce)
    else:
        nonce = "another-browser"
    with pytest.raises(OAuthFlowError) as refused:
        pipedrive_auth.complete_connect(settings, state=state, code=query["code"], nonce=nonce)
    assert refused.value.reason.startswith("state_")
    if forged != "replayed":
        assert [c for c in connections.list_connections(settings) if c.crm == "pipedrive"] == []
        # The code was never redeemed: it still works once (for the right state it would).
        with httpx2.Client(trust_env=False, timeout=10) as client:
            token = client.post(
                pipedrive.url + "/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"],
                    "redirect_uri": REDIRECT_URI,
                },
                auth=(settings.pipedrive_client_id, settings.pipedrive_client_secret),
            )
        assert token.status_code == 200


def connect_by_oauth_with(settings: Settings, query: dict[str, str], nonce: str) -> None:
    pipedrive_auth.complete_connect(settings, state=query["state"], code=query["code"], nonce=nonce)


def test_reconnecting_the_same_company_keeps_its_cached_rows(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    connect_by_oauth(settings)
    conn = only_pipedrive(settings)
    chosen = connections.settings_for(settings, conn)
    with store.open(chosen) as db:
        db.records.upsert_records(
            "contacts",
            [
                Record(
                    "1", "contacts", {"name": "Kept Person"}, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
                )
            ],
        )
    before = _count_contacts(chosen)
    assert before == 1

    info = connect_by_oauth(settings)
    assert info.is_connected
    assert only_pipedrive(settings).id == conn.id
    assert _count_contacts(chosen) == before


def _count_contacts(chosen: Settings) -> int:
    with store.open(chosen) as db:
        return int(db.queries.counts()["contacts"])


def test_an_expired_access_token_is_refreshed_and_a_revoked_refresh_token_needs_reconnect(
    pipedrive: PipedriveAdmin, pipedrive_server: PipedriveServer, settings: Settings
) -> None:
    connect_by_oauth(settings)
    conn = only_pipedrive(settings)
    chosen = connections.settings_for(settings, conn)
    pipedrive.expire_access_tokens()
    with provider_for("pipedrive").connect(chosen) as api:
        # The stored token is refused (401); the source refreshes once and the call succeeds.
        assert api.identity().account_id == "13370001"
    assert connections.status(settings, conn).label == "connected"

    pipedrive_server.state.auth.revoke_refresh_tokens()  # the app is uninstalled in Pipedrive
    pipedrive.expire_access_tokens()
    with pytest.raises(NeedsReconnect), provider_for("pipedrive").connect(chosen) as api:
        api.identity()
    assert connections.status(settings, conn).label == "needs reconnect"
    with pytest.raises(NeedsReconnect):
        provider_for("pipedrive").connect(chosen)


def test_disconnecting_an_oauth_connection_revokes_its_refresh_token_at_pipedrive(
    pipedrive: PipedriveAdmin,
    pipedrive_server: PipedriveServer,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect_by_oauth(settings)
    conn = only_pipedrive(settings)
    chosen = connections.settings_for(settings, conn)
    with store.open(chosen) as db:
        stored = db.auth.read_tokens()[oauth.REFRESH]
    refresh = Vault(load_keys(chosen)).decrypt(stored["ciphertext"], portal_id=13370001, kind=oauth.REFRESH)
    assert pipedrive_server.state.auth.is_live_refresh_token(refresh)

    code, out, err = _cli_disconnect(settings, conn, monkeypatch)
    assert code == 0, err
    assert "Pipedrive revoked the app's access." in out
    assert not pipedrive_server.state.auth.is_live_refresh_token(refresh)
    assert connections.status(settings, conn).label == "disconnected"


def _cli_disconnect(
    settings: Settings, conn: connections.Connection, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``python -m crm disconnect ID`` with the same cache, key and Pipedrive app."""
    for key in list(os.environ):
        if key.startswith(("HUBSPOT_", "CRM_", "PIPEDRIVE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRM_DB", settings.db)
    monkeypatch.setenv("CRM_SECRET_KEY", settings.secret_keys[0])
    monkeypatch.setenv("PIPEDRIVE_CLIENT_ID", settings.pipedrive_client_id)
    monkeypatch.setenv("PIPEDRIVE_CLIENT_SECRET", settings.pipedrive_client_secret)
    monkeypatch.setenv("PIPEDRIVE_OAUTH_URL", settings.pipedrive_oauth_url)
    return run_cli("disconnect", conn.id)


def test_removing_a_pipedrive_connection_drops_it_and_leaves_a_hubspot_one(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    hub = connections.add(settings, account_id=101, name="Acme EU")
    connect_by_oauth(settings)
    conn = only_pipedrive(settings)
    result = connections.remove(settings, conn)
    assert result.revoked
    assert [c.id for c in connections.list_connections(settings)] == [hub.id]


def test_default_names_use_each_crms_own_words() -> None:
    assert connections.default_name("hubspot", "101", "acme.com") == "HubSpot · acme.com (portal 101)"
    assert connections.default_name("pipedrive", "7", "Acme") == "Pipedrive · Acme (company 7)"
    assert connections.default_name("pipedrive", "7") == "Pipedrive (company 7)"


def test_disconnecting_without_the_pipedrive_app_configured_says_so_and_still_forgets_the_tokens(
    pipedrive: PipedriveAdmin, settings: Settings
) -> None:
    connect_by_oauth(settings)
    conn = only_pipedrive(settings)
    elsewhere = dataclasses.replace(
        connections.settings_for(settings, conn), pipedrive_client_id="", pipedrive_client_secret=""
    )
    result = oauth.disconnect(elsewhere)
    assert not result.revoked
    assert result.detail == "PIPEDRIVE_CLIENT_ID is not set, so Pipedrive was not asked to revoke the token."
    assert connections.status(settings, conn).label == "disconnected"


def test_a_token_connected_with_a_webhook_url_configured_registers_its_webhooks(
    pipedrive: PipedriveAdmin, cli_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://crm.example.com/pipedrive/webhook"
    monkeypatch.setenv("PIPEDRIVE_WEBHOOK_URL", url)
    code, out, err = run_cli(
        "connect", "pipedrive", "--token", pipedrive.api_token(), "--base-url", pipedrive.url
    )

    assert code == 0, err
    assert f"Webhooks registered at {url}." in out
    registered = pipedrive.webhooks()
    urls = {w["subscription_url"] for w in registered.get("webhooks", registered.get("data", []))}
    assert urls == {url}
