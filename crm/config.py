"""Settings from environment variables and the secrets the app passes in.

``crm`` never reads ``st.secrets`` itself: app.py (or the CLI, or a test) hands a plain
mapping to ``load_settings``, so every entry point shares one code path.

Which HubSpot the app talks to follows from what is configured:

- ``HUBSPOT_ACCESS_TOKEN`` set: *private app* mode, a static token, no OAuth.
- ``HUBSPOT_CLIENT_ID`` and ``HUBSPOT_CLIENT_SECRET`` set: *oauth* mode (a real portal).
- neither: *sandbox* mode, the embedded HubSpot sandbox (``crm.sandbox``), filled in by
  ``Settings.for_sandbox`` once the sandbox is listening.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from crm.errors import ConfigError

Mode = Literal["oauth", "private_app", "sandbox"]

HUBSPOT_API_URL = "https://api.hubapi.com"
HUBSPOT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
# v1 is switched off on 2027-02-16; 2026-03 is the first date-versioned GA release.
TOKEN_PATH = "/oauth/2026-03/token"
DEFAULT_REDIRECT_URI = "http://localhost:8501/hubspot/callback"
DEFAULT_DB = "data/crm.db"
DEFAULT_SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.owners.read",
    "crm.schemas.contacts.read",
)
# Creating the "pronouns" contact property needs schema write; a portal may refuse it.
DEFAULT_OPTIONAL_SCOPES = ("crm.schemas.contacts.write", "crm.schemas.deals.read")
SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"

KNOWN_KEYS = (
    "HUBSPOT_CLIENT_ID",
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_REDIRECT_URI",
    "HUBSPOT_SCOPES",
    "HUBSPOT_OPTIONAL_SCOPES",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_BASE_URL",
    "HUBSPOT_AUTHORIZE_URL",
    "HUBSPOT_TOKEN_PATH",
    "HUBSPOT_WEBHOOK_URL",
    "HUBSPOT_PKCE",
    "CRM_DB",
    "CRM_SECRET_KEY",
    "CRM_SANDBOX_SEED",
    "CRM_SANDBOX_PORT",
    "CRM_SANDBOX_URL",
    "CRM_STAFF_EMAILS",
    "CRM_STAFF_DOMAINS",
    "CRM_ADMIN_EMAILS",
    "CRM_OPEN_ACCESS",
    "CRM_HTTP_TIMEOUT",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything ``crm`` needs to know, resolved and validated once."""

    mode: Mode
    db_path: Path
    base_url: str = HUBSPOT_API_URL
    authorize_url: str = HUBSPOT_AUTHORIZE_URL
    token_path: str = TOKEN_PATH
    client_id: str = ""
    client_secret: str = dataclasses.field(default="", repr=False)
    redirect_uri: str = DEFAULT_REDIRECT_URI
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    optional_scopes: tuple[str, ...] = DEFAULT_OPTIONAL_SCOPES
    access_token: str = dataclasses.field(default="", repr=False)
    webhook_url: str = ""
    pkce: bool = False
    secret_keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    sandbox_seed: int = 42
    sandbox_port: int = 0
    # A sandbox already running elsewhere (tests, benchmarks); empty: start an embedded one.
    sandbox_url: str = ""
    staff_emails: tuple[str, ...] = ()
    staff_domains: tuple[str, ...] = ()
    admin_emails: tuple[str, ...] = ()
    open_access: bool = False
    http_timeout: float = 30.0

    @property
    def introspect_path(self) -> str:
        return self.token_path.rstrip("/") + "/introspect"

    @property
    def revoke_path(self) -> str:
        return self.token_path.rstrip("/") + "/revoke"

    @property
    def token_url(self) -> str:
        return self.base_url.rstrip("/") + self.token_path

    @property
    def is_sandbox(self) -> bool:
        return self.mode == "sandbox"

    def for_sandbox(self, sandbox_url: str) -> Settings:
        """These settings pointed at an embedded sandbox listening at ``sandbox_url``."""
        url = sandbox_url.rstrip("/")
        return dataclasses.replace(
            self,
            base_url=url,
            authorize_url=url + "/oauth/authorize",
            client_id=self.client_id or SANDBOX_CLIENT_ID,
            client_secret=self.client_secret or SANDBOX_CLIENT_SECRET,
        )


def load_settings(
    env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
) -> Settings:
    """Build Settings from the environment (first) and secrets.toml values (second).

    Raises ConfigError naming the first bad setting.
    """
    env = os.environ if env is None else env
    secrets = secrets or {}

    def get(name: str, default: str = "") -> str:
        value = env.get(name)
        if value is None or value == "":
            raw = secrets.get(name)
            value = "" if raw is None else str(raw)
        return value.strip() or default

    access_token = get("HUBSPOT_ACCESS_TOKEN")
    client_id = get("HUBSPOT_CLIENT_ID")
    client_secret = get("HUBSPOT_CLIENT_SECRET")
    if client_id and not client_secret and not access_token:
        raise ConfigError("HUBSPOT_CLIENT_SECRET", "is required when HUBSPOT_CLIENT_ID is set")
    if client_secret and not client_id and not access_token:
        raise ConfigError("HUBSPOT_CLIENT_ID", "is required when HUBSPOT_CLIENT_SECRET is set")
    mode: Mode
    if access_token:
        mode = "private_app"
    elif client_id:
        mode = "oauth"
    else:
        mode = "sandbox"

    base_url = _url(get("HUBSPOT_BASE_URL", HUBSPOT_API_URL), "HUBSPOT_BASE_URL")
    authorize_url = _url(get("HUBSPOT_AUTHORIZE_URL", HUBSPOT_AUTHORIZE_URL), "HUBSPOT_AUTHORIZE_URL")
    redirect_uri = _url(get("HUBSPOT_REDIRECT_URI", DEFAULT_REDIRECT_URI), "HUBSPOT_REDIRECT_URI")
    webhook_url = get("HUBSPOT_WEBHOOK_URL")
    if webhook_url:
        _url(webhook_url, "HUBSPOT_WEBHOOK_URL")
    token_path = get("HUBSPOT_TOKEN_PATH", TOKEN_PATH)
    if not token_path.startswith("/"):
        raise ConfigError("HUBSPOT_TOKEN_PATH", "must be a path starting with '/'")

    keys = tuple(k for k in _split(get("CRM_SECRET_KEY"), ",") if k)
    for key in keys:
        if not _is_fernet_key(key):
            raise ConfigError(
                "CRM_SECRET_KEY",
                "each comma-separated key must be a Fernet key (32 url-safe base64 bytes); "
                "make one with: python -m crm keygen",
            )
    if mode == "oauth" and not keys:
        raise ConfigError(
            "CRM_SECRET_KEY",
            "is required to encrypt HubSpot tokens at rest; make one with: python -m crm keygen",
        )

    return Settings(
        mode=mode,
        db_path=Path(get("CRM_DB", DEFAULT_DB)),
        base_url=base_url,
        authorize_url=authorize_url,
        token_path=token_path,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        scopes=_scopes(get("HUBSPOT_SCOPES"), DEFAULT_SCOPES),
        optional_scopes=_scopes(get("HUBSPOT_OPTIONAL_SCOPES"), DEFAULT_OPTIONAL_SCOPES),
        access_token=access_token,
        webhook_url=webhook_url,
        pkce=_bool(get("HUBSPOT_PKCE", "false"), "HUBSPOT_PKCE"),
        secret_keys=keys,
        sandbox_seed=_int(get("CRM_SANDBOX_SEED", "42"), "CRM_SANDBOX_SEED"),
        sandbox_port=_int(get("CRM_SANDBOX_PORT", "0"), "CRM_SANDBOX_PORT"),
        sandbox_url=_url(get("CRM_SANDBOX_URL"), "CRM_SANDBOX_URL") if get("CRM_SANDBOX_URL") else "",
        staff_emails=tuple(e.lower() for e in _split(get("CRM_STAFF_EMAILS"), ",")),
        staff_domains=tuple(d.lower().lstrip("@") for d in _split(get("CRM_STAFF_DOMAINS"), ",")),
        admin_emails=tuple(e.lower() for e in _split(get("CRM_ADMIN_EMAILS"), ",")),
        open_access=_bool(get("CRM_OPEN_ACCESS", "false"), "CRM_OPEN_ACCESS"),
        http_timeout=_float(get("CRM_HTTP_TIMEOUT", "30"), "CRM_HTTP_TIMEOUT"),
    )


def _split(value: str, sep: str) -> list[str]:
    return [part.strip() for part in value.split(sep) if part.strip()]


def _scopes(value: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return default
    return tuple(s for s in value.replace(",", " ").split() if s)


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(name, f"must be an absolute http(s) URL, got {value!r}")
    return value


def _bool(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(name, f"must be true or false, got {value!r}")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {value!r}") from None


def _float(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(name, "must be greater than zero")
    return number


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False
