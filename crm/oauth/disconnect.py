"""Disconnecting: revoke the refresh token at the CRM, then forget the local tokens.

Cut from the OAuth module because it changes with what each kind of credential allows at
the end (an OAuth refresh token is revoked; a static token can only be forgotten) and with
what the person is told about it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx2

from crm import store
from crm.config import Settings
from crm.errors import ConfigError, NeedsReconnect, Unreachable
from crm.oauth.connection import (
    API_TOKEN,
    PRIVATE_APP,
    PRIVATE_APP_FINGERPRINT_KEY,
    REFRESH,
    crm_word,
    imposed_mode,
    iso_now,
)
from crm.oauth.tokens import token_endpoint
from crm.vault import Vault, load_keys

log = logging.getLogger("crm.oauth")


@dataclass(frozen=True)
class DisconnectResult:
    """``revoked``: HubSpot confirmed the refresh token is revoked. Local tokens are gone either way.

    ``webhooks``: "" when no webhook registered by API is left at the CRM, else why they
    could not be removed (for the page; no secret in it).
    """

    revoked: bool
    detail: str
    webhooks: str = ""

    @property
    def message(self) -> str:
        """What the person is told, in the CRM's words (``crm``)."""
        return self.detail if not self.webhooks else f"{self.detail} {self.webhooks}"


def disconnect(settings: Settings, *, transport: httpx2.BaseTransport | None = None) -> DisconnectResult:
    """Revoke the refresh token at the CRM, then wipe the local tokens (even if revoking failed).

    A static token (a HubSpot private app's, a Pipedrive API token) is only forgotten: the
    CRM offers no way to revoke it from outside. Webhooks the connection registered by API
    (Pipedrive) are removed first, while its token works (``crm.subscriptions``): otherwise
    the CRM would keep delivering what nobody here accepts. A failure there is reported in
    the result, never a reason to stay connected; a reconnect registers them again.
    """
    from crm import subscriptions  # above this layer on purpose: it opens the connection's API

    crm = crm_word(settings)
    webhooks = subscriptions.remove_registered(settings)
    with store.open(settings) as db:
        row = db.auth.read_connection()
        tokens = db.auth.read_tokens()
        revoked, detail = False, f"There was no stored {crm} token to revoke."
        if PRIVATE_APP in tokens:
            detail = "The private-app token was forgotten; it stays valid in HubSpot until the private app is deleted."
        elif API_TOKEN in tokens:
            detail = f"The API token was forgotten; it stays valid in {crm} until it is regenerated there."
        elif imposed_mode(settings) == "private_app":
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
        now = iso_now()
        with db.atomic():
            db.auth.delete_tokens()
            db.meta.put(PRIVATE_APP_FINGERPRINT_KEY, None)
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
        if webhooks:
            log.warning("Disconnected %s; %s", crm, webhooks)
        return DisconnectResult(revoked, detail, webhooks)
