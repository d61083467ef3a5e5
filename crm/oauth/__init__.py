"""Connecting a CRM account: the OAuth round trip, stored tokens, refresh, status, disconnect.

    page mints a ticket ─► /hubspot/connect ─► start_connect: state (+ PKCE), hashed in
    SQLite with a binding nonce (cookie) ─► HubSpot's authorize page ─► /hubspot/callback
    ─► complete_connect: consume the state atomically, check the nonce, redeem the code
    once, introspect, read account info, store tokens encrypted ─► /connect?hubspot=...

One module per reason to change (each says why in its docstring):

    connection   what is stored: token kinds, encrypted tokens, the connection row
    consent      tickets, state, browser binding, PKCE (every CRM's flow)
    connect      HubSpot's round trip and a private app's token: which connection a portal gets
    status       connection_info and health: what pages and /healthz are told
    tokens       token_source / open_client: the stored token, refreshed single-flight
    disconnect   revoke at the CRM, forget locally

The names callers use are re-exported here (``from crm import oauth; oauth.token_source``).
A test that tunes a module's constant patches that module (``oauth.consent.STATE_TTL_S``).
"""

from __future__ import annotations

from crm.oauth.connect import complete_connect, connect_private_app, start_connect
from crm.oauth.connection import (
    ACCESS,
    API_TOKEN,
    PRIVATE_APP,
    REFRESH,
    STATIC_KINDS,
    ConnectionInfo,
    iso_now,
    replace_grant,
    store_grant,
    stored_refresh_token,
    stored_static_token,
)
from crm.oauth.consent import (
    STATE_TTL_S,
    TICKET_TTL_S,
    begin_flow,
    create_ticket,
    finish_flow,
    require_ticket,
)
from crm.oauth.disconnect import DisconnectResult, disconnect
from crm.oauth.status import connection_info, health
from crm.oauth.tokens import OAuthTokenSource, Refresher, open_client, token_endpoint, token_source

__all__ = [
    "ACCESS",
    "API_TOKEN",
    "PRIVATE_APP",
    "REFRESH",
    "STATE_TTL_S",
    "STATIC_KINDS",
    "TICKET_TTL_S",
    "ConnectionInfo",
    "DisconnectResult",
    "OAuthTokenSource",
    "Refresher",
    "begin_flow",
    "complete_connect",
    "connect_private_app",
    "connection_info",
    "create_ticket",
    "disconnect",
    "finish_flow",
    "health",
    "iso_now",
    "open_client",
    "replace_grant",
    "require_ticket",
    "start_connect",
    "store_grant",
    "stored_refresh_token",
    "stored_static_token",
    "token_endpoint",
    "token_source",
]
