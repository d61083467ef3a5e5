"""Bearer tokens for clients: the stored token, refreshed ahead of expiry, single-flight.

Cut from the OAuth module because it changes with the refresh policy and nothing else.
A refresh is single-flight across threads (a lock per cache file) and processes (the
write transaction, ``db.atomic()``, that re-reads the stored token before refreshing); a
new refresh token is stored in the same transaction as the access token it came with.

A refresh token the CRM declares dead (``invalid_grant`` / ``BAD_REFRESH_TOKEN``) puts the
connection in ``needs_reconnect`` and wipes the dead tokens. Any other failed refresh
(``invalid_client``, a 401 from a proxy, a 5xx, a timeout) keeps the tokens: the error is
recorded for the Connect page (``ConnectionInfo.refresh_error``), the current access token
is used while it lasts, and the refresh is tried again ``REFRESH_RETRY_S`` later. A key
that cannot decrypt the tokens reports ``needs_reconnect`` too but changes nothing, so
restoring the right ``CRM_SECRET_KEY`` brings the connection back.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from crm import store
from crm.config import Settings
from crm.crms import provider_of
from crm.errors import CrmError, NeedsReconnect, NotConnected
from crm.hubspot import HubSpotClient, StaticToken, TokenSource
from crm.interface import Crm, Grant
from crm.oauth.connection import (
    ACCESS,
    PRIVATE_APP,
    REFRESH,
    REFRESH_ERROR_KEY,
    crm_word,
    imposed_mode,
    iso_now,
    store_grant,
    stored_static_token,
)
from crm.oauth.status import private_app_info
from crm.store import Store
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.oauth")

REFRESH_LEEWAY_S = 300
# A token someone else just stored is used as long as it has this much life left.
MIN_TOKEN_LIFE_S = 5
# After a refresh that failed for a reason other than a dead token, try again this much later.
REFRESH_RETRY_S = 30.0


def token_source(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> TokenSource:
    """The bearer tokens for a client.

    Raises:
        NotConnected: never connected, or disconnected.
        NeedsReconnect: HubSpot refused the refresh token, or the key cannot decrypt it.
    """
    stored = _stored_private_app(settings)
    if stored is not None:
        return StaticToken(stored[0], portal_key=f"portal:{stored[1]}")
    imposed = imposed_mode(settings)
    if imposed == "private_app":
        with store.open(settings) as db:
            # Learn (and cache) the token's portal first, so this client draws from the same
            # rate limiter as every later one: the limiter is per portal, and keying the first
            # client by its token would give one portal two budgets.
            info = private_app_info(settings, db, transport)
            if info.portal_id:
                return StaticToken(settings.access_token, portal_key=f"portal:{info.portal_id}")
            return StaticToken(settings.access_token)
    crm = crm_word(settings)
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
    # Checked after the store is given back: the check opens it again (one connection a thread).
    source = OAuthTokenSource(settings, portal_id, transport=transport, portal_key=key)
    source.check()
    return source


def open_client(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> HubSpotClient:
    """A HubSpotClient for the connected portal (what sync, webhooks and the CLI use)."""
    return HubSpotClient(settings, token_source(settings, transport=transport), transport=transport)


def _stored_private_app(settings: Settings) -> tuple[str, int] | None:
    """The private-app token stored in this partition (``connect_private_app``) and its
    portal, or None (none stored, disconnected, or the key cannot read it)."""
    return stored_static_token(settings, PRIVATE_APP)


_REASON_MESSAGES = {
    "refresh_rejected": "{crm} no longer accepts this app's token (app uninstalled or access revoked); "
    "connect {crm} again.",
    "secret_key": "The stored {crm} token cannot be decrypted with CRM_SECRET_KEY; restore the key or "
    "connect {crm} again.",
}


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


def token_endpoint(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> Refresher:
    """The token endpoint of the CRM ``settings`` are for (refresh and revoke)."""
    return _ProviderTokens(provider_of(settings), settings, transport)


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
        self._crm = crm_word(settings)
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
            db.meta.put(REFRESH_ERROR_KEY, None)
            db.auth.update_connection(
                status="needs_reconnect",
                status_reason="refresh_rejected",
                expires_at=None,
                updated_at=iso_now(),
            )
            return None, exc
        except CrmError as exc:
            # Not a dead token: keep the tokens, say why on the Connect page, retry later.
            db.meta.put(REFRESH_ERROR_KEY, f"{iso_now()} {exc}"[:300])
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
        db.meta.put(REFRESH_ERROR_KEY, None)
        db.auth.update_connection(expires_at=grant.expires_at, updated_at=iso_now())
        expires_in = max(0.0, grant.expires_at - now)
        log.debug("Refreshed the %s access token (expires in %d s)", self._crm, expires_in)
        refresh_at = grant.expires_at - min(REFRESH_LEEWAY_S, expires_in / 2)
        return (grant.access_token, refresh_at), None
