"""What is stored about a connection, and how it reads: token kinds, encrypted tokens, the row.

Cut from the OAuth module because it changes with the shape of what is kept (the auth
tables, the vault binding of a token to its account and kind, the meta keys), which every
other part (consent, refresh, status, disconnect, Pipedrive's ``crm.pipedrive_auth``) reads
and none of them owns; with it, how the connection's CRM reads the settings (``imposed_mode``,
``crm_word``). Tokens never leave ``crm.oauth`` in the clear except as the bearer
header a client sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from crm import store
from crm.config import Settings
from crm.crms import provider_of, words_for
from crm.errors import ConfigError, NeedsReconnect
from crm.store import Store
from crm.vault import Vault, load_keys

ACCESS, REFRESH = "access", "refresh"
# A private-app token added as a connection of its own (``connect_private_app``).
PRIVATE_APP = "private_app"
# A Pipedrive API token added as a connection (``crm.pipedrive_auth.connect_api_token``).
API_TOKEN = "api_token"
# Token kinds that are one static credential, forgotten (not revoked) on disconnect.
STATIC_KINDS = (PRIVATE_APP, API_TOKEN)
# Which configured private-app token (HUBSPOT_ACCESS_TOKEN, hashed) the row's portal was learnt for.
PRIVATE_APP_FINGERPRINT_KEY = "auth.private_app_fingerprint"
# The last refresh failure that kept the tokens (cleared by the next success or a new connection).
REFRESH_ERROR_KEY = "auth.refresh_error"


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


def info_from_row(row: dict[str, Any]) -> ConnectionInfo:
    """The connection row as ``ConnectionInfo`` (``refresh_error`` and ``connection`` unset)."""
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


class _GrantLike(Protocol):
    @property
    def access_token(self) -> str: ...
    @property
    def refresh_token(self) -> str | None: ...
    @property
    def expires_at(self) -> float: ...


def store_grant(
    db: Store, vault: Vault, portal_id: int, grant: _GrantLike, *, refresh_token: str | None
) -> None:
    """Write an access token (and its refresh token) encrypted, bound to the account id, and
    forget the last refresh failure (new tokens start clean)."""
    db.meta.put(REFRESH_ERROR_KEY, None)
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


def replace_grant(db: Store, vault: Vault, account_id: int, grant: _GrantLike) -> bool:
    """Give the partition to ``account_id`` and replace its tokens with a new OAuth grant's.

    Every CRM's callback calls it inside the transaction that also writes the connection
    row, so a reader never sees the new tokens beside another account's cache. Returns
    True when the partition held another account's cache, now cleared (``claim_for_portal``).
    """
    cleared = db.meta.claim_for_portal(account_id)
    db.auth.delete_tokens()
    store_grant(db, vault, account_id, grant, refresh_token=grant.refresh_token)
    return cleared


def stored_refresh_token(db: Store, vault: Vault) -> str | None:
    """The refresh token stored now, or None (none stored, or the key cannot read it)."""
    row = db.auth.read_tokens().get(REFRESH)
    if row is None:
        return None
    try:
        return vault.decrypt(row["ciphertext"], portal_id=int(row["portal_id"]), kind=REFRESH)
    except (NeedsReconnect, ConfigError):
        return None


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


def imposed_mode(settings: Settings) -> str | None:
    """The mode the app's settings impose on the connection's CRM (HubSpot's HUBSPOT_*
    settings), or None when the connection keeps its own (``Crm.configured_mode``)."""
    return provider_of(settings).configured_mode(settings)


def crm_word(settings: Settings) -> str:
    """The CRM's name for messages ("HubSpot", "Pipedrive")."""
    return words_for(settings.crm).crm


def iso_now() -> str:
    """Now, UTC, ISO 8601 at whole seconds (the connection row's times)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
