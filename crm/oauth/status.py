"""The connection as pages, the CLI and ``/healthz`` see it: connected, needs reconnect, disconnected.

Cut from the OAuth module because it changes with what people are told about a connection
(reasons, the refresh error kept for the Connect page, readiness facts), read on every page
run; it never refreshes or revokes. A HubSpot private app configured in the settings
(``HUBSPOT_ACCESS_TOKEN``) is checked here: its portal is learnt once from account info and
kept in the connection row (the one write this module makes).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import httpx2

from crm import store
from crm.config import Settings
from crm.errors import ConfigError, CrmError, HubSpotError, NeedsReconnect
from crm.hubspot import HubSpotClient, StaticToken
from crm.oauth.connection import (
    PRIVATE_APP_FINGERPRINT_KEY,
    REFRESH,
    REFRESH_ERROR_KEY,
    STATIC_KINDS,
    ConnectionInfo,
    imposed_mode,
    info_from_row,
    iso_now,
    stored_static_token,
)
from crm.store import Store
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.oauth")


def connection_info(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> ConnectionInfo:
    """The connection as the UI shows it; never raises for "not connected".

    In private-app mode the portal is learnt once from HubSpot's account info and cached.
    ``connection`` is ``settings.connection``.
    """
    info = _connection_info(settings, transport)
    info.connection = settings.connection
    return info


def _connection_info(settings: Settings, transport: httpx2.BaseTransport | None) -> ConnectionInfo:
    imposed = imposed_mode(settings)
    with store.open(settings) as db:
        row = db.auth.read_connection()
        if row is not None and row["mode"] in STATIC_KINDS and row["mode"] in db.auth.read_tokens():
            info = info_from_row(row)
            if info.status == "connected" and stored_static_token(settings, row["mode"]) is None:
                info.status, info.reason = "needs_reconnect", "secret_key"
            return info
        if imposed == "private_app":
            return private_app_info(settings, db, transport)
        if row is None:
            return ConnectionInfo(mode=imposed or "oauth", status="disconnected")
        # HUBSPOT_* settings pick HubSpot's mode; another CRM's row keeps its own.
        if imposed is not None and row["mode"] != imposed:
            return ConnectionInfo(mode=imposed, status="disconnected", reason="mode_changed")
        info = info_from_row(row)
        if info.status == "connected":
            problem = _token_problem(settings, db, row)
            if problem:
                info.status, info.reason = "needs_reconnect", problem
            else:
                info.refresh_error = db.meta.get(REFRESH_ERROR_KEY)
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


def private_app_info(settings: Settings, db: Store, transport: httpx2.BaseTransport | None) -> ConnectionInfo:
    fingerprint = _fingerprint(settings.access_token)
    row = db.auth.read_connection()
    if (
        row
        and row["mode"] == "private_app"
        and row["status"] == "connected"
        and row.get("portal_id")
        and db.meta.get(PRIVATE_APP_FINGERPRINT_KEY) == fingerprint
    ):
        return info_from_row(row)
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
    now = iso_now()
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
        db.meta.put(PRIVATE_APP_FINGERPRINT_KEY, fingerprint)
    row = db.auth.read_connection()
    assert row is not None
    return info_from_row(row)


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]
