"""Webhooks a connection registers at its CRM by API (Pipedrive), and their Basic credentials.

HubSpot's webhooks are set up once in the app's settings and signed with the app's client
secret; Pipedrive's are registered per company through ``/api/v1/webhooks`` and carry no
signature, only the HTTP Basic credentials they were registered with
(docs/PIPEDRIVE_API.md §7). So each such connection gets its own credentials, generated
here (a random user and a 256-bit password), sent to the CRM once, and kept in the
connection's partition encrypted with ``CRM_SECRET_KEY`` (``crm.vault``, bound to the
account and the kind ``webhook_basic``) in ``meta`` under ``SUBSCRIPTION_KEY``, next to the
webhooks' ids (to remove them on disconnect) and the URL they deliver to.

    register(settings, api, url)   connect flow / CLI: credentials stored, then subscribed
    ensure_registered(settings, api)   registers at PIPEDRIVE_WEBHOOK_URL unless done already
    secret(settings, account_id)   the receiving route: "user:password" to verify with
    unregister(settings, api)      removed at the CRM (best effort), then forgotten
    ensure_all(settings)           app start: every such connection without webhooks registers
    remove_registered(settings)    disconnect (crm.oauth.disconnect, also on removal): the
                                   same over the connection's stored credentials

Any API implementing ``crm.interface.WebhookSubscriptions`` can be registered; which CRM
it is does not matter here.

Command line: ``python -m crm.subscriptions register|unregister|show [connection]``
(registers at ``PIPEDRIVE_WEBHOOK_URL``).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from crm import crms, store
from crm.config import Settings
from crm.errors import ConfigError, CrmError, NeedsReconnect
from crm.interface import CrmApi, WebhookAccounts, WebhookSubscriptions
from crm.vault import Vault, load_keys

log = logging.getLogger(__name__)

SUBSCRIPTION_KEY = "subscriptions.webhooks"
VAULT_KIND = "webhook_basic"


@dataclass(frozen=True)
class Subscription:
    """A connection's registered webhooks: where they deliver, their ids, the Basic user.

    ``ciphertext`` is the encrypted ``user:password`` (``crm.vault``), never the password.
    """

    url: str
    account_id: str
    ids: tuple[str, ...]
    user: str
    ciphertext: str = field(repr=False)


def _vault_id(account_id: str) -> int:
    # The vault binds a secret to a numeric account; Pipedrive's company ids are numbers.
    return int(account_id) if account_id.isdigit() and len(account_id) <= 18 else 0


def stored(settings: Settings) -> Subscription | None:
    """The connection's registration, or None (never registered, or removed)."""
    with store.open(settings) as db:
        raw = db.meta.get(SUBSCRIPTION_KEY)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        return Subscription(
            url=str(doc["url"]),
            account_id=str(doc["account_id"]),
            ids=tuple(str(i) for i in doc.get("ids") or ()),
            user=str(doc["user"]),
            ciphertext=str(doc["ciphertext"]),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("The stored webhook registration is unreadable; register again")
        return None


def _save(settings: Settings, sub: Subscription | None) -> None:
    value = None
    if sub is not None:
        value = json.dumps(
            {
                "url": sub.url,
                "account_id": sub.account_id,
                "ids": list(sub.ids),
                "user": sub.user,
                "ciphertext": sub.ciphertext,
            }
        )
    with store.open(settings) as db, db.atomic():
        db.meta.put(SUBSCRIPTION_KEY, value)


def secret(settings: Settings, account_id: str) -> str:
    """``user:password`` the connection's deliveries must carry, or "" when it registered none
    (or not for this account, or the key cannot open it: deliveries are then refused)."""
    sub = stored(settings)
    if sub is None or sub.account_id != str(account_id):
        return ""
    try:
        return Vault(load_keys(settings)).decrypt(
            sub.ciphertext, portal_id=_vault_id(sub.account_id), kind=VAULT_KIND
        )
    except (NeedsReconnect, ConfigError) as exc:
        log.warning(
            "The webhook credentials cannot be read (%s); register the webhooks again", type(exc).__name__
        )
        return ""


def register(settings: Settings, api: CrmApi, url: str, *, account_id: str | None = None) -> Subscription:
    """Register the connection's webhooks at ``url`` with fresh Basic credentials.

    A registration already stored is removed first (at the CRM too), so the CRM never
    holds two sets for one connection. The credentials are stored *before* the CRM is
    asked, so the first delivery finds them. ``account_id``: the connection's account
    (default: ``api.identity()``, one request).

    Raises:
        ConfigError: the API cannot register webhooks, or no encryption key is configured.
        CrmError: the CRM refused or could not be reached (nothing stays registered or stored).
    """
    if not isinstance(api, WebhookSubscriptions):
        raise ConfigError("PIPEDRIVE_WEBHOOK_URL", "this CRM's webhooks are not registered by API")
    account = str(account_id or api.identity().account_id)
    vault = Vault(load_keys(settings))
    if stored(settings) is not None:
        unregister(settings, api)
    user = "crm-" + secrets.token_hex(4)
    password = secrets.token_urlsafe(32)
    ciphertext = vault.encrypt(f"{user}:{password}", portal_id=_vault_id(account), kind=VAULT_KIND)
    pending = Subscription(url=url, account_id=account, ids=(), user=user, ciphertext=ciphertext)
    _save(settings, pending)
    try:
        ids = api.subscribe_webhooks(url, user=user, password=password)
    except CrmError:
        _save(settings, None)
        raise
    done = Subscription(url=url, account_id=account, ids=tuple(ids), user=user, ciphertext=ciphertext)
    _save(settings, done)
    log.info("Registered %d webhook(s) for account %s", len(ids), account)
    return done


def ensure_registered(
    settings: Settings, api: CrmApi, *, account_id: str | None = None, url: str | None = None
) -> Subscription | None:
    """Register at ``url`` (default ``PIPEDRIVE_WEBHOOK_URL``) unless the connection already
    is registered there.

    What a connect flow calls (demo mode passes the app's loopback ``/pipedrive/webhook``,
    where the embedded sandbox delivers): None when there is no URL or the API registers no
    webhooks (HubSpot's are set up in its app settings instead).
    """
    url = url or settings.pipedrive_webhook_url
    if not url or not isinstance(api, WebhookSubscriptions):
        return None
    current = stored(settings)
    if current is not None and current.url == url and current.ids:
        return current
    return register(settings, api, url, account_id=account_id)


def unregister(settings: Settings, api: CrmApi | None) -> int:
    """Remove the connection's webhooks at the CRM (best effort) and forget the credentials.

    ``api`` None (no usable credentials left) only forgets them here: the CRM keeps
    delivering, and every delivery is refused (401) until it gives up. Returns how many
    webhooks were registered.
    """
    return _unregister(settings, api)[0]


def _unregister(settings: Settings, api: CrmApi | None) -> tuple[int, str]:
    """``unregister``, and why the CRM still has them ("" when it does not)."""
    sub = stored(settings)
    if sub is None:
        return 0, ""
    failure = "the connection could not be opened" if sub.ids else ""
    if api is not None and isinstance(api, WebhookSubscriptions) and sub.ids:
        try:
            api.unsubscribe_webhooks(sub.ids)
            failure = ""
        except CrmError as exc:
            failure = str(exc)
            log.warning(
                "Could not remove the webhooks at the CRM (%s); their deliveries will be refused", exc
            )
    _save(settings, None)
    _forget_ensured(settings)
    return len(sub.ids), failure


def remove_registered(settings: Settings) -> str:
    """Disconnect: remove the connection's webhooks at the CRM over its stored credentials
    (while they still work), then forget them.

    Returns "" when none are left at the CRM, else a sentence for the person saying they
    could not be removed and why (no secret in it). Never raises for the CRM: with no usable
    credentials (or no answer) the webhooks are only forgotten here, and their deliveries
    are refused from then on.
    """
    if stored(settings) is None:
        return ""
    try:
        api: CrmApi | None = crms.provider_of(settings).connect(settings)
    except CrmError as exc:
        log.warning("Could not open the connection to remove its webhooks (%s)", type(exc).__name__)
        api = None
    try:
        count, failure = _unregister(settings, api)
    finally:
        if api is not None:
            api.close()
    if not failure:
        return ""
    crm = crms.words_for(settings.crm).crm
    # Short: it ends a toast. Deliveries meanwhile are refused (401); a reconnect replaces them.
    return (
        f"Its {count} webhook(s) could not be removed at {crm} ({failure}): remove them there, or reconnect."
    )


_ensured: set[tuple[str, str, str]] = set()
_ensured_lock = threading.Lock()
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _forget_ensured(settings: Settings) -> None:
    """A connection's webhooks are gone: the next ``ensure_all`` (a reconnect) tries it again."""
    home = settings.home.db_key
    with _ensured_lock:
        _ensured.difference_update({k for k in _ensured if k[0] == home and k[1] == settings.connection})


def ensure_all(settings: Settings, *, loopback_url: str = "") -> int:
    """Register the webhooks of every connection whose CRM takes them by API and has none
    stored (app start: ``PIPEDRIVE_WEBHOOK_URL`` set after the connection was made).

    ``loopback_url`` (demo mode: the app's own ``/pipedrive/webhook`` on 127.0.0.1) is used
    only for connections whose API is on loopback too, i.e. a local sandbox, never a real
    CRM. Each (database, connection, URL) registered (or found registered) once per process
    is not asked again; one that could not be opened, or whose webhooks were removed since
    (a disconnect), is tried again at the next call (a reconnect calls it). Returns how many were registered; never
    raises for a CRM (failures are logged).
    """
    with store.open(settings.home) as db:
        registered = db.connections.list()
    done = 0
    for conn in registered:
        if not isinstance(crms.provider_for(conn.crm), WebhookAccounts):
            continue
        target = settings.for_connection(conn)
        host = urlsplit(conn.base_url or target.base_url).hostname or ""
        url = settings.pipedrive_webhook_url or (loopback_url if host in _LOOPBACK_HOSTS else "")
        key = (settings.home.db_key, conn.id, url)
        with _ensured_lock:
            if not url or key in _ensured:
                continue
            _ensured.add(key)
        current = stored(target)
        if current is not None and current.url == url and current.ids:
            continue
        try:
            with crms.provider_of(target).connect(target) as api:
                if ensure_registered(target, api, account_id=conn.account_id, url=url) is not None:
                    done += 1
        except CrmError as exc:
            log.warning("Webhooks of connection %s not registered: %s", conn.id, type(exc).__name__)
            with _ensured_lock:
                _ensured.discard(key)  # tried again at the next call: a (re)connect
    return done


def _main(argv: Sequence[str]) -> int:
    """``register|unregister|show [connection]``, for a Pipedrive connection."""
    from crm.config import load_settings
    from crm.connections import resolve

    if not argv or argv[0] not in ("register", "unregister", "show"):
        print("usage: python -m crm.subscriptions register|unregister|show [connection]", file=sys.stderr)
        return 2
    base = load_settings()
    conn = resolve(base, argv[1] if len(argv) > 1 else None)
    settings = base.for_connection(conn)
    if argv[0] == "show":
        sub = stored(settings)
        print("no webhooks registered" if sub is None else f"{len(sub.ids)} webhook(s) deliver to {sub.url}")
        return 0
    if argv[0] == "register" and not settings.pipedrive_webhook_url:
        print("PIPEDRIVE_WEBHOOK_URL is not set: give the public URL of /pipedrive/webhook", file=sys.stderr)
        return 2
    with crms.provider_of(settings).connect(settings) as api:
        if argv[0] == "unregister":
            print(f"{unregister(settings, api)} webhook(s) removed")
            return 0
        sub = register(settings, api, settings.pipedrive_webhook_url, account_id=conn.account_id)
    print(f"{len(sub.ids)} webhook(s) deliver to {sub.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
