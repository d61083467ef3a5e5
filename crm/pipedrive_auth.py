"""Connecting Pipedrive: an API token, or OAuth through Pipedrive's consent page (issue #15).

    connect_api_token(settings, token, base_url=...)    the CLI's ``connect pipedrive --token``
    start_connect(settings, ticket=...)                  -> (consent page URL, binding nonce)
    complete_connect(settings, state=, code=, nonce=)    the ``/pipedrive/callback`` route
    open_api(settings)                                   ``Pipedrive.connect``: a PipedriveApi
                                                         over the stored credentials

Everything a HubSpot connection has is reused, not copied (``crm.oauth``): the connect
ticket, the hashed state and its browser binding (``begin_flow`` / ``finish_flow``; Pipedrive
has no PKCE), the encrypted token rows and the connection row of the partition (account id =
the company id, ``hub_domain`` = the company's subdomain, ``ui_domain`` = its Pipedrive host),
and the single-flight refresh (``OAuthTokenSource``, here over ``PipedriveTokens``), which
marks a dead refresh token ``needs_reconnect``. The company picks the connection: the same
company again is a reconnect that keeps its cache. The registry row's ``base_url`` is the
company's API domain (the grant's ``api_domain``; ``--base-url`` for a token).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

import httpx2

from crm import oauth, store
from crm.config import Settings
from crm.errors import ConfigError, CrmError, NeedsReconnect, NotConnected, OAuthFlowError
from crm.interface import Grant, Identity, TokenSource
from crm.pipedrive.client import ApiToken
from crm.pipedrive.provider import Pipedrive, PipedriveApi
from crm.pipedrive.tokens import PipedriveTokens
from crm.store import Store
from crm.store.connections import Connection, default_id, default_name
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.pipedrive_auth")

CRM = "pipedrive"


class _Bearer:
    """The access token of a grant being stored (no refresh: it was just issued)."""

    def __init__(self, token: str, key: str) -> None:
        self._token = token
        self.portal_key = key

    def access_token(self) -> str:
        return self._token

    def refresh_after_401(self, rejected: str) -> str:
        raise NeedsReconnect("Pipedrive refused the token it just issued; connect Pipedrive again.")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _api_base(url: str) -> str | None:
    """``url`` as an API base the tokens may be sent to, or None: https, or http on loopback
    only (the sandbox), with no user info, path, query or fragment."""
    parts = urlsplit(url.strip().rstrip("/"))
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return None
    plain = not (parts.username or parts.password or parts.path or parts.query or parts.fragment)
    if not host or not plain:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return f"{parts.scheme}://{parts.netloc}"
    return None


def _identity(
    settings: Settings, tokens: TokenSource, base_url: str, transport: httpx2.BaseTransport | None
) -> Identity:
    with Pipedrive().open(settings, tokens, base_url=base_url, transport=transport) as api:
        api.client.max_retries = 1
        return api.identity()


def _register(settings: Settings, who: Identity, *, name: str | None, base_url: str) -> Connection:
    """The company's connection, registered if new; a reconnect updates its API domain."""
    with store.open(settings.home) as db:
        conn, created = db.connections.ensure(
            crm=CRM,
            account_id=who.account_id,
            name=name or default_name(CRM, who.account_id, who.account_name),
            base_url=base_url,
            # Always a partition of its own, never the home database: the home is where a
            # HubSpot-only install keeps (and a private-app token adopts) its portal.
            target=default_id(CRM, who.account_id),
        )
        if name and not created and conn.name != name:
            conn = db.connections.rename(conn.id, name)
        if not created and conn.base_url != base_url.rstrip("/"):
            conn = db.connections.set_base_url(conn.id, base_url)
    if created:
        log.info("New connection %s for Pipedrive company %s", conn.id, who.account_id)
    return conn


def _write_connection_row(
    db: Store, mode: str, who: Identity, *, scopes: list[str], expires_at: float | None, now: str
) -> None:
    """The partition's connection row for a company just connected (``mode``: how)."""
    db.auth.replace_connection(
        mode=mode,
        status="connected",
        status_reason=None,
        portal_id=int(who.account_id),
        hub_domain=_subdomain(who),
        ui_domain=who.ui_host,
        user_email=who.user,
        scopes=scopes,
        expires_at=expires_at,
        connected_at=now,
        updated_at=now,
    )


def _subdomain(who: Identity) -> str | None:
    host = who.ui_host or ""
    return host.removesuffix(".pipedrive.com") if host.endswith(".pipedrive.com") else None


def connect_api_token(
    settings: Settings,
    token: str,
    *,
    base_url: str,
    name: str | None = None,
    transport: httpx2.BaseTransport | None = None,
) -> tuple[Connection, oauth.ConnectionInfo]:
    """Connect a Pipedrive company with a personal API token, as a connection of its own.

    The token is checked first (Pipedrive names its company and user); only then is the
    connection registered and the token stored encrypted in its partition, replacing
    whatever credentials it had. A refused token stores nothing.

    Raises:
        ConfigError: no base URL. NeedsReconnect: Pipedrive refused the token.
        Unreachable / HubSpotError: Pipedrive did not answer properly.
    """
    base = _api_base(base_url)
    if base is None:
        raise ConfigError(
            "--base-url",
            "give the company's API domain, like https://acme.pipedrive.com (https; http only on loopback)",
        )
    if not token.strip():
        raise ConfigError("--token", "give the Pipedrive API token")
    try:
        who = _identity(settings, ApiToken(token.strip()), base, transport)
    except NeedsReconnect:
        raise NeedsReconnect(
            "Pipedrive refused this API token (check it under Personal preferences > API); nothing was stored."
        ) from None
    if not who.account_id.isdigit():
        raise NotConnected("Pipedrive did not name the token's company; nothing was stored.")
    conn = _register(settings, who, name=name, base_url=base)
    chosen = settings.for_connection(conn)
    company = int(who.account_id)
    vault = Vault(load_keys(chosen))
    now = oauth.iso_now()
    with store.open(chosen) as db, db.atomic():
        db.meta.claim_for_portal(company)
        db.auth.delete_tokens()
        db.auth.write_token(
            oauth.API_TOKEN,
            portal_id=company,
            ciphertext=vault.encrypt(token.strip(), portal_id=company, kind=oauth.API_TOKEN),
            expires_at=None,
        )
        _write_connection_row(db, oauth.API_TOKEN, who, scopes=[], expires_at=None, now=now)
    log.info("Pipedrive company %s connected with an API token (%s)", company, conn.id)
    return conn, oauth.connection_info(chosen)


# -- OAuth -------------------------------------------------------------------------------


def _check_app(settings: Settings) -> None:
    if not settings.pipedrive_client_id or not settings.pipedrive_client_secret:
        raise ConfigError(
            "PIPEDRIVE_CLIENT_ID", "and PIPEDRIVE_CLIENT_SECRET are needed to connect Pipedrive"
        )


def start_connect(settings: Settings, *, ticket: str | None) -> tuple[str, str]:
    """Begin the consent round trip: ``(Pipedrive's authorize URL, binding nonce for the cookie)``.

    Raises:
        OAuthFlowError: "ticket_required" (no ticket), "ticket_invalid".
        ConfigError: no Pipedrive app configured, or no encryption key.
    """
    ticket = oauth.require_ticket(ticket)
    _check_app(settings)
    state, nonce, _ = oauth.begin_flow(settings, ticket=ticket, pkce=False, crm="Pipedrive")
    params = {
        "client_id": settings.pipedrive_client_id,
        "redirect_uri": settings.pipedrive_redirect_uri,
        "state": state,
    }
    return Pipedrive().oauth(settings).authorize_url + "?" + urlencode(params), nonce


def complete_connect(
    settings: Settings,
    *,
    state: str | None,
    code: str | None,
    nonce: str | None,
    error: str | None = None,
    transport: httpx2.BaseTransport | None = None,
) -> oauth.ConnectionInfo:
    """Finish the round trip: check the state, redeem the code once, store the tokens.

    The checks and their reasons are HubSpot's (``oauth.finish_flow``). The grant's
    ``api_domain`` becomes the connection's base URL; the company it belongs to picks the
    connection, so connecting the same company again keeps its cache (its previous
    refresh token is revoked, best effort, once the new one is stored).

    Raises:
        OAuthFlowError: the ``finish_flow`` reasons, code_rejected, client_rejected,
            hubspot_unreachable (Pipedrive could not be reached).
        ConfigError: no Pipedrive app configured.
    """
    with store.open(settings.home) as db:
        oauth.finish_flow(db, state=state, nonce=nonce, code=code, error=error, crm="Pipedrive")
    assert code is not None
    _check_app(settings)
    tokens = PipedriveTokens(settings, transport=transport)
    grant = tokens.exchange_code(code)
    api_base = _api_base(grant.api_base or "")
    if api_base is None:
        # The access token would be sent there: only an https host (or the loopback sandbox).
        _revoke_quietly(tokens, grant.refresh_token)
        raise OAuthFlowError("provider_error", "Pipedrive named no usable API domain for the company.")
    try:
        who = _identity(settings, _Bearer(grant.access_token, "pipedrive:new"), api_base, transport)
    except CrmError:
        _revoke_quietly(tokens, grant.refresh_token)
        raise OAuthFlowError("hubspot_unreachable", "Could not read the Pipedrive company.") from None
    if not who.account_id.isdigit():
        _revoke_quietly(tokens, grant.refresh_token)
        raise OAuthFlowError("provider_error", "Pipedrive did not name the company.")
    conn = _register(settings, who, name=None, base_url=api_base)
    chosen = settings.for_connection(conn)
    _store_grant(chosen, int(who.account_id), grant, who)
    log.info("Pipedrive company %s connected by OAuth (%s)", who.account_id, conn.id)
    return oauth.connection_info(chosen)


def _store_grant(chosen: Settings, company: int, grant: Grant, who: Identity) -> None:
    vault = Vault(load_keys(chosen))
    now = oauth.iso_now()
    with store.open(chosen) as db:
        previous = oauth.stored_refresh_token(db, vault)
        with db.atomic():
            oauth.replace_grant(db, vault, company, grant)
            _write_connection_row(
                db, "oauth", who, scopes=list(grant.scopes), expires_at=grant.expires_at, now=now
            )
    if previous and previous != grant.refresh_token:
        _revoke_quietly(PipedriveTokens(chosen), previous)


def _revoke_quietly(tokens: PipedriveTokens, refresh_token: str | None) -> None:
    if not refresh_token:
        return
    try:
        tokens.revoke(refresh_token)
    except CrmError as exc:
        log.warning("Could not revoke a Pipedrive refresh token the app no longer uses: %s", exc)


# -- a connected API ---------------------------------------------------------------------


def token_source(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> TokenSource:
    """The credentials stored for this Pipedrive connection: its API token, or its OAuth
    tokens (refreshed when expired or refused).

    Raises:
        NotConnected: never connected or disconnected. NeedsReconnect: a dead refresh
            token, or a key that cannot decrypt what is stored.
    """
    static = oauth.stored_static_token(settings, oauth.API_TOKEN)
    if static is not None:
        return ApiToken(static[0])
    info = oauth.connection_info(settings, transport=transport)
    if info.status == "needs_reconnect":
        raise NeedsReconnect("Pipedrive no longer accepts the stored connection; connect Pipedrive again.")
    return oauth.token_source(settings, transport=transport)


def open_api(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> PipedriveApi:
    """A PipedriveApi for the connection ``settings`` are for (``settings.for_connection``),
    at the company's API domain from the registry.

    Raises:
        NotConnected: no Pipedrive connection chosen, or none stored. NeedsReconnect.
    """
    conn = None
    if settings.connection:
        with store.open(settings.home) as db:
            conn = db.connections.get(settings.connection)
    if conn is None or conn.crm != CRM:
        raise NotConnected("No Pipedrive connection is chosen; connect Pipedrive first.")
    tokens = token_source(settings, transport=transport)
    return Pipedrive().open(settings, tokens, base_url=conn.base_url, transport=transport)
