"""Connecting a HubSpot portal: the OAuth round trip, and a private app's token.

Cut from the OAuth module because it changes with HubSpot's side of connecting (the
authorize URL and its scopes, code exchange, introspection, account info) and with how a
portal picks its connection and partition (a reconnect keeps its cache, a switch waits for
the running sync or push), not with how tokens are refreshed or reported.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

import httpx2

from crm import store
from crm.config import Settings
from crm.errors import ConfigError, CrmError, HubSpotError, NeedsReconnect, OAuthFlowError, Unreachable
from crm.hubspot import HubSpotClient, StaticToken
from crm.hubspot.tokens import TokenEndpoint, TokenGrant
from crm.oauth.connection import (
    PRIVATE_APP,
    REFRESH_ERROR_KEY,
    ConnectionInfo,
    iso_now,
    replace_grant,
    stored_refresh_token,
)
from crm.oauth.consent import (
    STATE_MESSAGES,
    begin_flow,
    finish_flow,
    pkce_challenge,
    require_ticket,
    verifier_kind,
)
from crm.oauth.status import connection_info
from crm.store import Store, syncstate
from crm.store.connections import Connection, default_name
from crm.store.meta import PORTAL_KEY
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.oauth")

# How long a callback that switches portals waits for a running sync or push to finish.
SWITCH_WAIT_S = 10.0
SWITCH_POLL_S = 0.1


def start_connect(settings: Settings, *, ticket: str | None) -> tuple[str, str]:
    """Begin the OAuth round trip: ``(authorize URL, binding nonce for the cookie)``.

    Raises:
        OAuthFlowError: "ticket_required" (no ticket), "ticket_invalid" (unknown, expired
            or used), "not_oauth" (private-app mode).
        ConfigError: no encryption key or no client credentials.
    """
    ticket = require_ticket(ticket)
    if settings.mode == "private_app":
        raise OAuthFlowError("not_oauth", "This app uses a private-app token; there is nothing to connect.")
    if not settings.client_id or not settings.client_secret:
        raise ConfigError("HUBSPOT_CLIENT_ID", "OAuth needs the app's client id and secret")
    state, nonce, verifier = begin_flow(settings, ticket=ticket, pkce=settings.pkce, crm="HubSpot")
    params = [
        ("client_id", settings.client_id),
        ("redirect_uri", settings.redirect_uri),
        ("scope", " ".join(settings.scopes)),
    ]
    if settings.optional_scopes:
        params.append(("optional_scope", " ".join(settings.optional_scopes)))
    params.append(("state", state))
    if verifier:
        params += [("code_challenge", pkce_challenge(verifier)), ("code_challenge_method", "S256")]
    separator = "&" if "?" in settings.authorize_url else "?"
    # quote (not quote_plus): HubSpot wants spaces in scope lists as %20.
    return settings.authorize_url + separator + urlencode(params, quote_via=quote), nonce


def complete_connect(
    settings: Settings,
    *,
    state: str | None,
    code: str | None,
    nonce: str | None,
    error: str | None = None,
    transport: httpx2.BaseTransport | None = None,
) -> ConnectionInfo:
    """Finish the round trip: check the state, redeem the code once, store the tokens.

    The state is consumed before anything else happens, so a second callback with the
    same state (a reload, a replay) is refused without a token request. HubSpot's
    ``error`` answer is believed only once the state and the browser binding check out
    (HubSpot echoes the state on errors too): anyone can send a browser to
    ``/hubspot/callback?error=access_denied``, and that must not end, or look like the
    end of, a flow this browser has in progress. So every ``state_*`` reason means "not
    this browser's flow", and the others mean its flow is over.

    Tickets and states live in the home database (they exist before the portal is
    known). The portal the tokens belong to picks the connection (``crm.connections``):
    the same portal again is a reconnect, which keeps its cache and replaces its tokens
    (the previous refresh token is then revoked at HubSpot, best effort, after the new
    tokens are stored, so a token the app no longer uses does not stay valid); a portal
    not connected yet gets a new connection with a partition of its own, so connecting
    it never wipes another. Should a partition still hold another portal's cache (the
    safety net, ``claim_for_portal``), the switch first takes the sync and push leases
    (``_switch_leases``).

    Raises:
        OAuthFlowError: with a short ``reason`` safe to put in a URL: access_denied,
            provider_error, state_missing, state_unknown, state_expired, state_reused,
            state_foreign, code_missing, code_rejected, client_rejected, token_inactive,
            hubspot_unreachable, sync_running.
    """
    home = settings.home
    with store.open(home) as db:
        row = finish_flow(db, state=state, nonce=nonce, code=code, error=error, crm="HubSpot")
        assert code is not None
        vault = Vault(load_keys(settings))
        verifier = None
        if row.get("verifier"):
            try:
                verifier = vault.decrypt(row["verifier"], portal_id=0, kind=verifier_kind(row["state_hash"]))
            except NeedsReconnect:
                raise OAuthFlowError("state_unknown", STATE_MESSAGES["unknown"]) from None

        endpoint = TokenEndpoint(home, transport=transport)
        grant = endpoint.exchange_code(code, code_verifier=verifier)
        facts = endpoint.introspect(grant.access_token)
        portal_id = int(facts.get("hub_id") or grant.hub_id or 0)
        ui_domain = None
        try:
            with HubSpotClient(
                home,
                StaticToken(grant.access_token, portal_key=f"portal:{portal_id}"),
                transport=transport,
                max_retries=2,
            ) as client:
                account = client.account_info()
            ui_domain = account.get("ui_domain")
            portal_id = int(account.get("portal_id") or portal_id)
        except CrmError as exc:
            # The record links fall back to app.hubspot.com; the connection itself is fine.
            log.warning("Could not read HubSpot account info after connecting: %s", type(exc).__name__)
        # The portal picks the connection: the same portal again is a reconnect that keeps
        # its cache; a new one gets a connection (and partition) of its own, so connecting
        # it never touches another portal's records, edits or tokens.
        conn, created = db.connections.ensure(
            crm="hubspot",
            account_id=portal_id,
            name=default_name("hubspot", str(portal_id), facts.get("hub_domain")),
        )
        if created:
            log.info("New connection %s for HubSpot portal %s", conn.id, portal_id)
    chosen = settings.for_connection(conn)
    with store.open(chosen) as db:
        scopes = [str(s) for s in facts.get("scopes") or grant.scopes]
        previous_refresh = stored_refresh_token(db, vault)
        owner = syncstate.new_owner()
        switching = db.meta.get(PORTAL_KEY) not in (None, str(portal_id))
        if switching and not _switch_leases(db, owner):
            _revoke_quietly(endpoint, grant.refresh_token, "the refused connection's")
            raise OAuthFlowError(
                "sync_running",
                "A sync or push of the current portal is still running; connect again when it has finished.",
            )
        connected_at = iso_now()
        try:
            _store_connection(db, settings, vault, portal_id, grant, facts, ui_domain, scopes, connected_at)
        finally:
            if switching:
                db.syncstate.release_lease(syncstate.SYNC_LEASE, owner)
                db.syncstate.release_lease(syncstate.PUSH_LEASE, owner)
        if previous_refresh and previous_refresh != grant.refresh_token:
            _revoke_quietly(endpoint, previous_refresh, "the previous connection's")
        log.info(
            "HubSpot portal %s connected (%s)%s",
            portal_id,
            conn.id,
            f" by {row['staff_email']}" if row.get("staff_email") else "",
        )
        return connection_info(chosen)


def _switch_leases(db: Store, owner: str) -> bool:
    """Take the sync and push leases for a portal switch, waiting up to ``SWITCH_WAIT_S``.

    Clearing the cache for another portal while a sync or push runs would let that run
    write the old portal's records (or push its edits) into the new portal's cache, so the
    switch holds both leases: no run is active while it happens and none can start until
    it is done. The wait is bounded because it happens inside the browser's callback
    request: a push or the tail of an incremental sync finishes within it, a full pull
    does not, and then the person is told to connect again once the run is over (the
    authorization is given up and its token revoked) rather than left waiting minutes.
    Returns False, holding nothing, when the leases could not be had in time.
    """
    deadline = time.monotonic() + SWITCH_WAIT_S
    held: list[str] = []
    for name in (syncstate.SYNC_LEASE, syncstate.PUSH_LEASE):
        while not db.syncstate.acquire_lease(name, owner):
            if time.monotonic() >= deadline:
                for taken in held:
                    db.syncstate.release_lease(taken, owner)
                log.warning("Portal switch refused: a sync or push is still running")
                return False
            time.sleep(SWITCH_POLL_S)
        held.append(name)
    return True


def _store_connection(
    db: Store,
    settings: Settings,
    vault: Vault,
    portal_id: int,
    grant: TokenGrant,
    facts: dict[str, Any],
    ui_domain: str | None,
    scopes: list[str],
    connected_at: str,
) -> None:
    """Claim the cache for the portal and store the new tokens and connection row, in one transaction."""
    with db.atomic():
        if replace_grant(db, vault, portal_id, grant):
            log.info("The cache held another portal's records; they were cleared for portal %s", portal_id)
        db.auth.replace_connection(
            mode=settings.mode,
            status="connected",
            status_reason=None,
            portal_id=portal_id,
            hub_domain=facts.get("hub_domain"),
            ui_domain=ui_domain,
            user_email=facts.get("user"),
            user_id=facts.get("user_id") or grant.user_id,
            scopes=scopes,
            expires_at=grant.expires_at,
            connected_at=connected_at,
            updated_at=connected_at,
        )


def _revoke_quietly(endpoint: TokenEndpoint, refresh_token: str | None, whose: str) -> None:
    """Revoke a refresh token the app will not use again; a failure is logged, not raised."""
    if not refresh_token:
        return
    try:
        endpoint.revoke(refresh_token)
        log.info("Revoked %s refresh token at HubSpot", whose)
    except Unreachable as exc:
        log.warning("Could not revoke %s refresh token at HubSpot: %s", whose, exc)


def connect_private_app(
    settings: Settings,
    token: str,
    *,
    name: str | None = None,
    base_url: str = "",
    transport: httpx2.BaseTransport | None = None,
) -> tuple[Connection, ConnectionInfo]:
    """Connect a portal with a private app's token, as a connection of its own.

    HubSpot's account info says which portal the token belongs to; that portal's
    connection is found or created (``name`` for a new one; ``base_url`` when the API host
    is not the configured one), and the token is stored encrypted in its partition (kind
    ``private_app``), replacing whatever tokens it had. Other connections are untouched.

    Raises:
        NeedsReconnect: HubSpot refused the token. Unreachable / HubSpotError: no answer.
    """
    home = settings.home
    if base_url:
        home = dataclasses.replace(home, base_url=base_url.rstrip("/"))
    with HubSpotClient(home, StaticToken(token), transport=transport, max_retries=1) as client:
        account = client.account_info()
    portal_id = int(account.get("portal_id") or 0)
    if not portal_id:
        raise HubSpotError("HubSpot's account info named no portal for this token.", status_code=200)
    with store.open(home) as db:
        conn, created = db.connections.ensure(
            crm="hubspot",
            account_id=portal_id,
            name=name or default_name("hubspot", str(portal_id), account.get("ui_domain")),
            base_url=base_url,
        )
        if name and not created and conn.name != name:
            conn = db.connections.rename(conn.id, name)
    chosen = settings.for_connection(conn)
    vault = Vault(load_keys(chosen))
    now = iso_now()
    with store.open(chosen) as db:
        with db.atomic():
            if db.meta.claim_for_portal(portal_id):
                log.info(
                    "The partition held another portal's records; they were cleared for portal %s", portal_id
                )
            db.auth.delete_tokens()
            db.meta.put(REFRESH_ERROR_KEY, None)
            db.auth.write_token(
                PRIVATE_APP,
                portal_id=portal_id,
                ciphertext=vault.encrypt(token, portal_id=portal_id, kind=PRIVATE_APP),
                expires_at=None,
            )
            db.auth.replace_connection(
                mode=PRIVATE_APP,
                status="connected",
                status_reason=None,
                portal_id=portal_id,
                ui_domain=account.get("ui_domain"),
                scopes=[],
                connected_at=now,
                updated_at=now,
            )
    log.info("HubSpot portal %s connected with a private-app token (%s)", portal_id, conn.id)
    return conn, connection_info(chosen)
