"""Connecting HubSpot: the OAuth round trip, stored tokens, refresh and disconnect.

    page mints a ticket ─► /hubspot/connect ─► start_connect: state (+ PKCE), hashed in
    SQLite with a binding nonce (cookie) ─► HubSpot's authorize page ─► /hubspot/callback
    ─► complete_connect: consume the state atomically, check the nonce, redeem the code
    once, introspect, read account info, store tokens encrypted ─► /connect?hubspot=...

Tokens never leave this module in the clear except as the bearer header a client sends.
A refresh is single-flight across threads (a lock per cache file) and processes (the
write transaction, ``db.atomic()``, that re-reads the stored token before refreshing); a new
refresh token is stored in the same transaction as the access token it came with.

A refresh token HubSpot declares dead (``invalid_grant`` / ``BAD_REFRESH_TOKEN``) puts the
connection in ``needs_reconnect`` and wipes the dead tokens. Any other failed refresh
(``invalid_client``, a 401 from a proxy, a 5xx, a timeout) keeps the tokens: the error is
recorded for the Connect page (``ConnectionInfo.refresh_error``), the current access token
is used while it lasts, and the refresh is tried again ``REFRESH_RETRY_S`` later. A key
that cannot decrypt the tokens reports ``needs_reconnect`` too but changes nothing, so
restoring the right ``CRM_SECRET_KEY`` brings the connection back.

Every connect needs a ticket, whatever the access configuration (staff login, admins only,
``CRM_OPEN_ACCESS``, loopback open mode): only the Connect page mints one, after the access
guard let the visitor in and ``require_admin`` agreed. Without that rule a request with no
cookie and no login could run the round trip, claim the cache for another portal and drop
the queued edits.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx2

from crm import store
from crm.config import Settings
from crm.crms import provider_of, words_for
from crm.errors import (
    ConfigError,
    CrmError,
    HubSpotError,
    NeedsReconnect,
    NotConnected,
    OAuthFlowError,
    Unreachable,
)
from crm.hubspot import HubSpotClient, StaticToken, TokenSource
from crm.hubspot.tokens import TokenEndpoint, TokenGrant
from crm.interface import Crm, Grant
from crm.store import Store, syncstate
from crm.store.connections import Connection, default_name
from crm.store.meta import PORTAL_KEY
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.oauth")

STATE_TTL_S = 600
TICKET_TTL_S = 600
REFRESH_LEEWAY_S = 300
# A token someone else just stored is used as long as it has this much life left.
MIN_TOKEN_LIFE_S = 5
# How long a callback that switches portals waits for a running sync or push to finish.
SWITCH_WAIT_S = 10.0
SWITCH_POLL_S = 0.1
# After a refresh that failed for a reason other than a dead token, try again this much later.
REFRESH_RETRY_S = 30.0
ACCESS, REFRESH = "access", "refresh"
# A private-app token added as a connection of its own (``connect_private_app``).
PRIVATE_APP = "private_app"
# A Pipedrive API token added as a connection (``crm.pipedrive_auth.connect_api_token``).
API_TOKEN = "api_token"
# Token kinds that are one static credential, forgotten (not revoked) on disconnect.
STATIC_KINDS = (PRIVATE_APP, API_TOKEN)
_PRIVATE_APP_FINGERPRINT = "auth.private_app_fingerprint"
# The last refresh failure that kept the tokens (cleared by the next success or a new connection).
_REFRESH_ERROR = "auth.refresh_error"


@dataclass
class ConnectionInfo:
    """What the app knows about its HubSpot connection (no secrets)."""

    mode: str
    status: str  # "connected" | "needs_reconnect" | "disconnected"
    reason: str | None = None
    portal_id: int | None = None
    hub_domain: str | None = None
    ui_domain: str | None = None
    user_email: str | None = None
    scopes: list[str] = field(default_factory=list)
    expires_at: float | None = None
    connected_at: str | None = None
    # Why the last token refresh failed while the tokens were kept (HubSpot unreachable,
    # client secret refused...); None when the last refresh worked.
    refresh_error: str | None = None
    # The id of the connection these facts are about ("" when read from the home database
    # without one chosen); after an OAuth callback, the connection the portal landed in.
    connection: str = ""

    @property
    def is_connected(self) -> bool:
        return self.status == "connected"


@dataclass(frozen=True)
class DisconnectResult:
    """``revoked``: HubSpot confirmed the refresh token is revoked. Local tokens are gone either way."""

    revoked: bool
    detail: str


# -- connect ---------------------------------------------------------------------------


def create_ticket(settings: Settings, staff_email: str | None) -> str:
    """A single-use ticket (10 minutes) that lets ``/hubspot/connect`` start a flow."""
    ticket = secrets.token_urlsafe(32)
    now = time.time()
    with store.open(settings.home) as db:
        db.auth.save_ticket(_digest(ticket), staff_email=staff_email, expires_at=now + TICKET_TTL_S, now=now)
    return ticket


def begin_flow(settings: Settings, *, ticket: str, pkce: bool) -> tuple[str, str, str | None, str | None]:
    """Redeem a connect ticket and open a new state: ``(state, nonce, staff email, PKCE verifier)``.

    Shared by every CRM's consent flow: the state and the binding nonce are stored hashed
    in the home database (the verifier encrypted), so ``finish_flow`` can check the answer.

    Raises:
        OAuthFlowError: "ticket_invalid" (unknown, expired or used).
        ConfigError: no encryption key.
    """
    vault = Vault(load_keys(settings))
    with store.open(settings.home) as db:
        now = time.time()
        ok, staff_email = db.auth.redeem_ticket(_digest(ticket), now=now)
        if not ok:
            raise OAuthFlowError(
                "ticket_invalid", "That connect link has expired or was already used; try again."
            )
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        state_hash = _digest(state)
        verifier = secrets.token_urlsafe(64) if pkce else None
        db.auth.save_state(
            state_hash=state_hash,
            nonce_hash=_digest(nonce),
            verifier=vault.encrypt(verifier, portal_id=0, kind=_verifier_kind(state_hash))
            if verifier
            else None,
            staff_email=staff_email,
            now=now,
            ttl_s=STATE_TTL_S,
        )
    return state, nonce, staff_email, verifier


def finish_flow(
    db: Store, *, state: str | None, nonce: str | None, code: str | None, error: str | None, crm: str
) -> dict[str, Any]:
    """Check a consent answer against its state (``db``: the home database); the state's row.

    The state is consumed before anything else happens, so a replay is refused. The CRM's
    ``error`` is believed only once the state and the browser binding check out.
    ``crm`` is the CRM's name for messages ("HubSpot").

    Raises:
        OAuthFlowError: state_missing, state_unknown, state_expired, state_reused,
            state_foreign, access_denied, provider_error, code_missing.
    """
    now = time.time()
    row = db.auth.consume_state(_digest(state), now=now) if state else None
    if error:
        log.info("%s returned an error instead of a code: %s", crm, _short(error))
    if not state:
        raise OAuthFlowError("state_missing", "The sign-in answer carried no state; start again.")
    if row is None:
        problem = db.auth.state_problem(_digest(state), now=now)
        log.info("OAuth callback refused: state %s", problem)
        raise OAuthFlowError(f"state_{problem}", _STATE_MESSAGES[problem])
    if not nonce or not hmac.compare_digest(_digest(nonce), row["nonce_hash"] or ""):
        log.info("OAuth callback refused: the browser binding cookie does not match")
        raise OAuthFlowError(
            "state_foreign", "This sign-in was started in another browser; start again here."
        )
    if error:
        reason = "access_denied" if error == "access_denied" else "provider_error"
        raise OAuthFlowError(reason, f"{crm} did not grant access.")
    if not code:
        raise OAuthFlowError("code_missing", f"{crm} sent no authorization code.")
    return row


def start_connect(settings: Settings, *, ticket: str | None) -> tuple[str, str]:
    """Begin the OAuth round trip: ``(authorize URL, binding nonce for the cookie)``.

    Raises:
        OAuthFlowError: "ticket_required" (no ticket), "ticket_invalid" (unknown, expired
            or used), "not_oauth" (private-app mode).
        ConfigError: no encryption key or no client credentials.
    """
    if not ticket:
        # Checked first, before any setting or table is read: a stranger learns nothing.
        raise OAuthFlowError("ticket_required", "Start connecting from the Connect page.")
    if settings.mode == "private_app":
        raise OAuthFlowError("not_oauth", "This app uses a private-app token; there is nothing to connect.")
    if not settings.client_id or not settings.client_secret:
        raise ConfigError("HUBSPOT_CLIENT_ID", "OAuth needs the app's client id and secret")
    state, nonce, staff_email, verifier = begin_flow(settings, ticket=ticket, pkce=settings.pkce)
    params = [
        ("client_id", settings.client_id),
        ("redirect_uri", settings.redirect_uri),
        ("scope", " ".join(settings.scopes)),
    ]
    if settings.optional_scopes:
        params.append(("optional_scope", " ".join(settings.optional_scopes)))
    params.append(("state", state))
    if verifier:
        params += [("code_challenge", _s256(verifier)), ("code_challenge_method", "S256")]
    separator = "&" if "?" in settings.authorize_url else "?"
    # quote (not quote_plus): HubSpot wants spaces in scope lists as %20.
    url = settings.authorize_url + separator + urlencode(params, quote_via=quote)
    log.info("OAuth connect started%s", f" by {staff_email}" if staff_email else "")
    return url, nonce


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
                verifier = vault.decrypt(row["verifier"], portal_id=0, kind=_verifier_kind(row["state_hash"]))
            except NeedsReconnect:
                raise OAuthFlowError("state_unknown", _STATE_MESSAGES["unknown"]) from None

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
        connected_at = _iso_now()
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
        if db.meta.claim_for_portal(portal_id):
            log.info("The cache held another portal's records; they were cleared for portal %s", portal_id)
        db.auth.delete_tokens()
        db.meta.put(_REFRESH_ERROR, None)
        store_grant(db, vault, portal_id, grant, refresh_token=grant.refresh_token)
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


def stored_refresh_token(db: Store, vault: Vault) -> str | None:
    """The refresh token stored now, or None (none stored, or the key cannot read it)."""
    row = db.auth.read_tokens().get(REFRESH)
    if row is None:
        return None
    try:
        return vault.decrypt(row["ciphertext"], portal_id=int(row["portal_id"]), kind=REFRESH)
    except (NeedsReconnect, ConfigError):
        return None


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
    now = _iso_now()
    with store.open(chosen) as db:
        with db.atomic():
            if db.meta.claim_for_portal(portal_id):
                log.info(
                    "The partition held another portal's records; they were cleared for portal %s", portal_id
                )
            db.auth.delete_tokens()
            db.meta.put(_REFRESH_ERROR, None)
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


def _stored_private_app(settings: Settings) -> tuple[str, int] | None:
    """The private-app token stored in this partition (``connect_private_app``) and its
    portal, or None (none stored, disconnected, or the key cannot read it)."""
    return stored_static_token(settings, PRIVATE_APP)


def stored_static_token(settings: Settings, kind: str) -> tuple[str, int] | None:
    """The static token of ``kind`` (``STATIC_KINDS``) stored in this partition and its
    account id, or None (none stored, disconnected, or the key cannot read it)."""
    with store.open(settings) as db:
        row = db.auth.read_connection()
        stored = db.auth.read_tokens().get(kind)
    if row is None or row["mode"] != kind or row["status"] != "connected" or stored is None:
        return None
    try:
        vault = Vault(load_keys(settings))
        token = vault.decrypt(stored["ciphertext"], portal_id=int(stored["portal_id"]), kind=kind)
    except (NeedsReconnect, ConfigError):
        return None
    return token, int(stored["portal_id"])


# -- status ----------------------------------------------------------------------------


def connection_info(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> ConnectionInfo:
    """The connection as the UI shows it; never raises for "not connected".

    In private-app mode the portal is learnt once from HubSpot's account info and cached.
    ``connection`` is ``settings.connection``.
    """
    info = _connection_info(settings, transport)
    info.connection = settings.connection
    return info


def _connection_info(settings: Settings, transport: httpx2.BaseTransport | None) -> ConnectionInfo:
    imposed = _imposed_mode(settings)
    with store.open(settings) as db:
        row = db.auth.read_connection()
        if row is not None and row["mode"] in STATIC_KINDS and row["mode"] in db.auth.read_tokens():
            info = _info_from_row(row)
            if info.status == "connected" and stored_static_token(settings, row["mode"]) is None:
                info.status, info.reason = "needs_reconnect", "secret_key"
            return info
        if imposed == "private_app":
            return _private_app_info(settings, db, transport)
        if row is None:
            return ConnectionInfo(mode=imposed or "oauth", status="disconnected")
        # HUBSPOT_* settings pick HubSpot's mode; another CRM's row keeps its own.
        if imposed is not None and row["mode"] != imposed:
            return ConnectionInfo(mode=imposed, status="disconnected", reason="mode_changed")
        info = _info_from_row(row)
        if info.status == "connected":
            problem = _token_problem(settings, db, row)
            if problem:
                info.status, info.reason = "needs_reconnect", problem
            else:
                info.refresh_error = db.meta.get(_REFRESH_ERROR)
        return info


def health(settings: Settings) -> dict[str, Any]:
    """Readiness facts for ``/healthz``: database reachable, mode and connection status."""
    facts: dict[str, Any] = {"mode": settings.mode}
    try:
        with store.open(settings) as db:
            facts["db"] = "ok" if db.meta.ping() else "error"
    except store.StoreUnavailable as exc:  # readiness must report, not raise
        log.warning("Health check could not open the cache: %s", type(exc).__name__)
        facts["db"] = "error"
        return facts
    try:
        facts["connection"] = connection_info(settings).status
    except CrmError as exc:
        facts["connection"] = "unknown"
        log.info("Health check could not read the connection: %s", type(exc).__name__)
    return facts


# -- disconnect ------------------------------------------------------------------------


def disconnect(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> DisconnectResult:
    """Revoke the refresh token at the CRM, then wipe the local tokens (even if revoking failed).

    A static token (a HubSpot private app's, a Pipedrive API token) is only forgotten: the
    CRM offers no way to revoke it from outside.
    """
    crm = _crm_word(settings)
    with store.open(settings) as db:
        row = db.auth.read_connection()
        tokens = db.auth.read_tokens()
        revoked, detail = False, f"There was no stored {crm} token to revoke."
        if PRIVATE_APP in tokens:
            detail = "The private-app token was forgotten; it stays valid in HubSpot until the private app is deleted."
        elif API_TOKEN in tokens:
            detail = f"The API token was forgotten; it stays valid in {crm} until it is regenerated there."
        elif _imposed_mode(settings) == "private_app":
            detail = "A private-app token is configured (HUBSPOT_ACCESS_TOKEN); remove it to disconnect."
        elif REFRESH in tokens and row is not None:
            try:
                refresh = Vault(load_keys(settings)).decrypt(
                    tokens[REFRESH]["ciphertext"], portal_id=int(tokens[REFRESH]["portal_id"]), kind=REFRESH
                )
            except (NeedsReconnect, ConfigError):
                refresh = None
                detail = f"The stored token could not be decrypted, so {crm} was not asked to revoke it."
            try:
                if refresh is not None:
                    token_endpoint(settings, transport=transport).revoke(refresh)
                    revoked, detail = True, f"{crm} revoked the app's access."
            except ConfigError as exc:
                detail = f"{exc.setting} is not set, so {crm} was not asked to revoke the token."
            except Unreachable as exc:
                detail = (
                    f"{crm} did not confirm the revocation ({exc}); uninstall the app in {crm} to be sure."
                )
        now = _iso_now()
        with db.atomic():
            db.auth.delete_tokens()
            db.meta.put(_PRIVATE_APP_FINGERPRINT, None)
            db.auth.update_connection(
                status="disconnected",
                status_reason="disconnected",
                scopes=[],
                expires_at=None,
                updated_at=now,
            )
        if revoked:
            log.info("Disconnected %s; the refresh token was revoked", crm)
        else:
            log.warning("Disconnected %s locally; %s", crm, detail)
        return DisconnectResult(revoked, detail)


# -- tokens for clients ----------------------------------------------------------------


def token_source(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> TokenSource:
    """The bearer tokens for a client.

    Raises:
        NotConnected: never connected, or disconnected.
        NeedsReconnect: HubSpot refused the refresh token, or the key cannot decrypt it.
    """
    stored = _stored_private_app(settings)
    if stored is not None:
        return StaticToken(stored[0], portal_key=f"portal:{stored[1]}")
    imposed = _imposed_mode(settings)
    if imposed == "private_app":
        with store.open(settings) as db:
            # Learn (and cache) the token's portal first, so this client draws from the same
            # rate limiter as every later one: the limiter is per portal, and keying the first
            # client by its token would give one portal two budgets.
            info = _private_app_info(settings, db, transport)
            if info.portal_id:
                return StaticToken(settings.access_token, portal_key=f"portal:{info.portal_id}")
            return StaticToken(settings.access_token)
    crm = _crm_word(settings)
    with store.open(settings) as db:
        row = db.auth.read_connection()
        expected = imposed or "oauth"
        if row is None or row["mode"] != expected or row["status"] == "disconnected":
            raise NotConnected(f"{crm} is not connected; connect it on the Connect page.")
        if row["status"] == "needs_reconnect":
            reason = row.get("status_reason") or ""
            raise NeedsReconnect(_REASON_MESSAGES.get(reason, "Connect {crm} again.").format(crm=crm))
        portal_id = int(row["portal_id"])
        # HubSpot's limiter key ("portal:ID") predates other CRMs; theirs carry the CRM's name.
        key = None if imposed is not None else f"{settings.crm}:{portal_id}"
        source = OAuthTokenSource(settings, portal_id, transport=transport, portal_key=key)
        source.check()
        return source


def open_client(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> HubSpotClient:
    """A HubSpotClient for the connected portal (what sync, webhooks and the CLI use)."""
    return HubSpotClient(settings, token_source(settings, transport=transport), transport=transport)


_refresh_locks: dict[str, threading.Lock] = {}
_refresh_locks_guard = threading.Lock()


def _refresh_lock(settings: Settings) -> threading.Lock:
    key = settings.db_key
    with _refresh_locks_guard:
        return _refresh_locks.setdefault(key, threading.Lock())


class Refresher(Protocol):
    """A CRM's token endpoint as a token source needs it: ``refresh`` raises NeedsReconnect
    only for a dead token."""

    def refresh(self, refresh_token: str) -> Grant: ...

    def revoke(self, refresh_token: str) -> None: ...


@dataclass(frozen=True)
class _ProviderTokens:
    """The token endpoint of one CRM (``Crm.refresh`` / ``Crm.revoke``) bound to the app's
    settings and a transport."""

    crm: Crm
    settings: Settings
    transport: httpx2.BaseTransport | None

    def refresh(self, refresh_token: str) -> Grant:
        return self.crm.refresh(self.settings, refresh_token, transport=self.transport)

    def revoke(self, refresh_token: str) -> None:
        self.crm.revoke(self.settings, refresh_token, transport=self.transport)


class _GrantLike(Protocol):
    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> str | None: ...
    @property
    def expires_at(self) -> float: ...


def token_endpoint(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> Refresher:
    """The token endpoint of the CRM ``settings`` are for (refresh and revoke)."""
    return _ProviderTokens(provider_of(settings), settings, transport)


def _crm_word(settings: Settings) -> str:
    """The CRM's name for messages ("HubSpot", "Pipedrive")."""
    return words_for(settings.crm).crm


class OAuthTokenSource:
    """Access tokens of the stored OAuth connection, refreshed ahead of expiry.

    The same source serves every CRM whose tokens are stored the same way (HubSpot,
    Pipedrive): only the token endpoint differs (``token_endpoint``), built when a refresh
    needs it so a process without the app's client secret still uses the stored token.
    """

    def __init__(
        self,
        settings: Settings,
        portal_id: int,
        *,
        transport: httpx2.BaseTransport | None = None,
        portal_key: str | None = None,
    ) -> None:
        self.settings = settings
        self.portal_id = portal_id
        self.portal_key = portal_key or f"portal:{portal_id}"
        self._crm = _crm_word(settings)
        self._transport = transport
        self._vault = Vault(load_keys(settings))
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def check(self) -> None:
        """Decrypt the stored tokens once, so a wrong key fails here and not mid-sync."""
        if self._stored() is None:
            raise NeedsReconnect(f"No {self._crm} token is stored; connect {self._crm} again.")

    def access_token(self) -> str:
        with self._lock:
            if self._token and time.time() < self._refresh_at:
                return self._token
            seen = self._token
        if seen is None:
            stored = self._stored()
            if stored is None:
                raise NeedsReconnect(f"No {self._crm} token is stored; connect {self._crm} again.")
            token, expires_at = stored
            if time.time() < expires_at - REFRESH_LEEWAY_S:
                self._remember(token, expires_at - REFRESH_LEEWAY_S)
                return token
            seen = token
        return self._refresh(seen, forced=False)

    def refresh_after_401(self, rejected: str) -> str:
        return self._refresh(rejected, forced=True)

    def _remember(self, token: str, refresh_at: float) -> None:
        with self._lock:
            self._token, self._refresh_at = token, refresh_at

    def _stored(self) -> tuple[str, float] | None:
        with store.open(self.settings) as db:
            row = db.auth.read_tokens().get(ACCESS)
        if row is None:
            return None
        token = self._vault.decrypt(row["ciphertext"], portal_id=int(row["portal_id"]), kind=ACCESS)
        return token, float(row["expires_at"] or 0)

    def _refresh(self, seen: str | None, *, forced: bool) -> str:
        """Single-flight refresh: whoever gets the lock first refreshes, the rest reuse it."""
        with _refresh_lock(self.settings):
            with store.open(self.settings) as db:
                failure: CrmError | None = None
                result: tuple[str, float] | None = None
                with db.atomic():
                    db.auth.lock_connection()
                    row = db.auth.read_connection()
                    if row is None or row["status"] != "connected":
                        failure = (
                            NotConnected(f"{self._crm} was disconnected.")
                            if row is None or row["status"] == "disconnected"
                            else NeedsReconnect(f"Connect {self._crm} again.")
                        )
                    else:
                        tokens = db.auth.read_tokens()
                        result, failure = self._refresh_in(db, tokens, seen, forced)
                if failure is not None:
                    raise failure
                assert result is not None
                self._remember(*result)
                return result[0]

    def _refresh_in(
        self, db: Store, tokens: dict[str, dict[str, Any]], seen: str | None, forced: bool
    ) -> tuple[tuple[str, float] | None, CrmError | None]:
        now = time.time()
        access_row, refresh_row = tokens.get(ACCESS), tokens.get(REFRESH)
        if refresh_row is None:
            return None, NeedsReconnect(f"No {self._crm} refresh token is stored; connect {self._crm} again.")
        current, expires_at = None, 0.0
        if access_row is not None:
            current = self._vault.decrypt(access_row["ciphertext"], portal_id=self.portal_id, kind=ACCESS)
            expires_at = float(access_row["expires_at"] or 0)
            if current != seen and now < expires_at - MIN_TOKEN_LIFE_S:
                # Another thread or process refreshed while we waited for the lock.
                return (current, max(now, expires_at - REFRESH_LEEWAY_S)), None
            if not forced and current == seen and now < expires_at - REFRESH_LEEWAY_S:
                return (current, expires_at - REFRESH_LEEWAY_S), None
        refresh_token = self._vault.decrypt(refresh_row["ciphertext"], portal_id=self.portal_id, kind=REFRESH)
        try:
            grant = token_endpoint(self.settings, transport=self._transport).refresh(refresh_token)
        except NeedsReconnect as exc:
            log.warning("%s refused the refresh token; the connection needs to be made again", self._crm)
            db.auth.delete_tokens()
            db.meta.put(_REFRESH_ERROR, None)
            db.auth.update_connection(
                status="needs_reconnect",
                status_reason="refresh_rejected",
                expires_at=None,
                updated_at=_iso_now(),
            )
            return None, exc
        except CrmError as exc:
            # Not a dead token: keep the tokens, say why on the Connect page, retry later.
            db.meta.put(_REFRESH_ERROR, f"{_iso_now()} {exc}"[:300])
            if current is not None and not forced and now < expires_at - MIN_TOKEN_LIFE_S:
                log.warning(
                    "Refreshing the %s token failed (%s); using the current one for now", self._crm, exc
                )
                return (current, min(now + REFRESH_RETRY_S, expires_at - MIN_TOKEN_LIFE_S)), None
            log.warning("Refreshing the %s token failed (%s); the stored tokens are kept", self._crm, exc)
            return None, exc
        if grant.refresh_token and grant.refresh_token != refresh_token:
            log.info("%s issued a new refresh token; storing it", self._crm)
        store_grant(
            db, self._vault, self.portal_id, grant, refresh_token=grant.refresh_token or refresh_token
        )
        db.meta.put(_REFRESH_ERROR, None)
        db.auth.update_connection(expires_at=grant.expires_at, updated_at=_iso_now())
        expires_in = max(0.0, grant.expires_at - now)
        log.debug("Refreshed the %s access token (expires in %d s)", self._crm, expires_in)
        refresh_at = grant.expires_at - min(REFRESH_LEEWAY_S, expires_in / 2)
        return (grant.access_token, refresh_at), None


# -- helpers ---------------------------------------------------------------------------


_STATE_MESSAGES = {
    "unknown": "This sign-in link is not one we started; start again from the Connect page.",
    "expired": "The sign-in took longer than 10 minutes; start again.",
    "reused": "This sign-in was already completed or abandoned; start again.",
}
_REASON_MESSAGES = {
    "refresh_rejected": "{crm} no longer accepts this app's token (app uninstalled or access revoked); "
    "connect {crm} again.",
    "secret_key": "The stored {crm} token cannot be decrypted with CRM_SECRET_KEY; restore the key or "
    "connect {crm} again.",
}


def _imposed_mode(settings: Settings) -> str | None:
    """The mode the app's settings impose on the connection's CRM (HubSpot's HUBSPOT_*
    settings), or None when the connection keeps its own (``Crm.configured_mode``)."""
    return provider_of(settings).configured_mode(settings)


def _digest(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def _verifier_kind(state_hash: str) -> str:
    return f"pkce:{state_hash[:32]}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _short(value: str) -> str:
    return "".join(ch for ch in value[:40] if ch.isalnum() or ch in "_-.")


def iso_now() -> str:
    """Now, UTC, ISO 8601 at whole seconds (the connection row's times)."""
    return _iso_now()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def store_grant(
    db: Store, vault: Vault, portal_id: int, grant: _GrantLike, *, refresh_token: str | None
) -> None:
    """Write an access token (and its refresh token) encrypted, bound to the account id, and
    forget the last refresh failure (new tokens start clean)."""
    db.meta.put(_REFRESH_ERROR, None)
    db.auth.write_token(
        ACCESS,
        portal_id=portal_id,
        ciphertext=vault.encrypt(grant.access_token, portal_id=portal_id, kind=ACCESS),
        expires_at=grant.expires_at,
    )
    if refresh_token:
        # Written on every refresh, so rows move to the newest key as soon as it is listed first.
        db.auth.write_token(
            REFRESH,
            portal_id=portal_id,
            ciphertext=vault.encrypt(refresh_token, portal_id=portal_id, kind=REFRESH),
            expires_at=None,
        )


def _info_from_row(row: dict[str, Any]) -> ConnectionInfo:
    return ConnectionInfo(
        mode=row["mode"],
        status=row["status"],
        reason=row.get("status_reason"),
        portal_id=row.get("portal_id"),
        hub_domain=row.get("hub_domain"),
        ui_domain=row.get("ui_domain"),
        user_email=row.get("user_email"),
        scopes=list(row.get("scopes") or []),
        expires_at=row.get("expires_at"),
        connected_at=row.get("connected_at"),
    )


def _token_problem(settings: Settings, db: Store, row: dict[str, Any]) -> str | None:
    tokens = db.auth.read_tokens()
    if REFRESH not in tokens:
        return "tokens_missing"
    try:
        vault = Vault(load_keys(settings))
        vault.decrypt(tokens[REFRESH]["ciphertext"], portal_id=int(row["portal_id"] or 0), kind=REFRESH)
    except (NeedsReconnect, ConfigError):
        return "secret_key"
    return None


def _private_app_info(
    settings: Settings, db: Store, transport: httpx2.BaseTransport | None
) -> ConnectionInfo:
    fingerprint = _fingerprint(settings.access_token)
    row = db.auth.read_connection()
    if (
        row
        and row["mode"] == "private_app"
        and row["status"] == "connected"
        and row.get("portal_id")
        and db.meta.get(_PRIVATE_APP_FINGERPRINT) == fingerprint
    ):
        return _info_from_row(row)
    try:
        # Pages call this on every run: a HubSpot that does not answer must not stall them.
        with HubSpotClient(
            settings,
            StaticToken(settings.access_token),
            transport=transport,
            timeout=min(settings.http_timeout, 10.0),
            max_retries=1,
        ) as client:
            account = client.account_info()
    except NeedsReconnect:
        return ConnectionInfo(mode="private_app", status="needs_reconnect", reason="token_rejected")
    except HubSpotError as exc:
        reason = "token_rejected" if exc.status_code in (401, 403) else "hubspot_error"
        status = "needs_reconnect" if reason == "token_rejected" else "connected"
        return ConnectionInfo(mode="private_app", status=status, reason=reason)
    except CrmError:
        return ConnectionInfo(mode="private_app", status="connected", reason="hubspot_unreachable")
    now = _iso_now()
    with db.atomic():
        db.auth.delete_tokens()
        db.auth.replace_connection(
            mode="private_app",
            status="connected",
            status_reason=None,
            portal_id=account.get("portal_id"),
            ui_domain=account.get("ui_domain"),
            scopes=[],
            connected_at=now,
            updated_at=now,
        )
        db.meta.put(_PRIVATE_APP_FINGERPRINT, fingerprint)
    row = db.auth.read_connection()
    assert row is not None
    return _info_from_row(row)
