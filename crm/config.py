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
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from crm.errors import ConfigError

Mode = Literal["oauth", "private_app", "sandbox"]
LiveMode = Literal["webhooks", "journal", "off"]
LIVE_MODES: tuple[LiveMode, ...] = ("webhooks", "journal", "off")
# The journal is polled every few seconds; HubSpot keeps three days, so a minute's pause costs nothing.
MIN_LIVE_POLL_S = 1.0
MAX_LIVE_POLL_S = 300.0

HUBSPOT_API_URL = "https://api.hubapi.com"
HUBSPOT_AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
# v1 is switched off on 2027-02-16; 2026-03 is the first date-versioned GA release.
TOKEN_PATH = "/oauth/2026-03/token"
DEFAULT_REDIRECT_URI = "http://localhost:8501/hubspot/callback"
DEFAULT_DB = "data/crm.db"
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
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
# Interactions (docs/INTERACTIONS_API.md §5): tickets need "tickets", email content needs
# "sales-email-read", the inbox "conversations.read", call transcripts (OAuth only)
# "crm.extensions_calling_transcripts.read"; notes, calls, meetings, tasks and
# email metadata ride on the contacts scopes. Optional: a portal that refuses them still
# connects and syncs the rest, and the pages say what is missing.
DEFAULT_OPTIONAL_SCOPES = (
    "crm.schemas.contacts.write",
    "crm.schemas.deals.read",
    "tickets",
    "sales-email-read",
    "conversations.read",
    "crm.extensions_calling_transcripts.read",
)
SANDBOX_CLIENT_ID = "sandbox-client-id"
# Pipedrive's OAuth server (docs/PIPEDRIVE_API.md §1) and this app's callback for it.
PIPEDRIVE_OAUTH_URL = "https://oauth.pipedrive.com"
PIPEDRIVE_REDIRECT_URI = "http://localhost:8501/pipedrive/callback"
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
    "PIPEDRIVE_WEBHOOK_URL",
    "HUBSPOT_PKCE",
    "PIPEDRIVE_CLIENT_ID",
    "PIPEDRIVE_CLIENT_SECRET",
    "PIPEDRIVE_OAUTH_URL",
    "PIPEDRIVE_REDIRECT_URI",
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
    "CRM_LOG_LEVEL",
    "CRM_LOG_FORMAT",
    "CRM_SYNC_INTERVAL",
    "CRM_LIVE",
    "CRM_LIVE_POLL",
    "CRM_CONNECTION",
    "CRM_DAILY_BUDGET",
    "CRM_DAILY_LIMIT",
    "CRM_DELETION_SWEEP",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# Shorter than a minute would spend HubSpot's daily budget on polling; longer than a week
# is not a schedule anyone means.
MIN_SYNC_INTERVAL_S = 60
MAX_SYNC_INTERVAL_S = 7 * 24 * 3600
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything ``crm`` needs to know, resolved and validated once."""

    mode: Mode
    # The CRM of the connection these settings are for (``crm.crms.provider_of``): where
    # its words, record links and API come from. "hubspot" unless a connection names another.
    crm: str = "hubspot"
    # Pipedrive's OAuth app: PIPEDRIVE_CLIENT_ID, PIPEDRIVE_CLIENT_SECRET, PIPEDRIVE_OAUTH_URL
    # (authorize and token live under it), PIPEDRIVE_REDIRECT_URI.
    pipedrive_client_id: str = ""
    pipedrive_client_secret: str = dataclasses.field(default="", repr=False)
    pipedrive_oauth_url: str = PIPEDRIVE_OAUTH_URL
    pipedrive_redirect_uri: str = PIPEDRIVE_REDIRECT_URI
    # CRM_DB as given: a ``postgresql://`` URL, or a SQLite file path. Never a Path (that
    # would drop a slash of "postgresql://"), never in repr (a URL may carry a password).
    db: str = dataclasses.field(default=DEFAULT_DB, repr=False)
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
    # The public URL of this app's /pipedrive/webhook (PIPEDRIVE_WEBHOOK_URL): set, a Pipedrive
    # connection registers its webhooks there (crm.subscriptions); empty, it does not.
    pipedrive_webhook_url: str = ""
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
    log_level: str = "INFO"
    log_format: str = "text"
    # Seconds between scheduled syncs (an incremental sync, then a push); 0: no schedule.
    sync_interval_s: int = 0
    # How live updates arrive (CRM_LIVE): "webhooks", "journal", "off", or "" to let
    # ``live_mode`` pick what the configuration allows.
    live: str = ""
    # Seconds between polls of the webhooks journal (CRM_LIVE_POLL).
    live_poll_s: float = 5.0
    # The connection these settings serve (its id; see crm.connections): "" for the home
    # database, where the registry of connections and the OAuth states live. ``for_connection``
    # sets it together with ``db`` (the connection's partition), so it never names one
    # connection while ``db`` is another's.
    connection: str = ""
    # CRM_DB as configured, when ``db`` is a connection's partition ("" when ``db`` is it).
    home_db: str = dataclasses.field(default="", repr=False)
    # CRM_CONNECTION: the connection a CLI run uses when none is named (an id or a name).
    preferred_connection: str = ""
    # The share of the portal's daily request limit this app may spend (CRM_DAILY_BUDGET),
    # in (0, 1]; other integrations draw from the same day.
    daily_budget: float = 0.5
    # The portal's daily limit when HubSpot does not say (OAuth apps get no daily headers);
    # 0: unknown, so a sync never pauses for it (CRM_DAILY_LIMIT).
    daily_limit: int = 0
    # How often an incremental pull walks a type's live ids to find deletions the CRM does
    # not list (CRM_DELETION_SWEEP; Pipedrive's persons and organizations; 0: never, deletions
    # then wait for the next full pull or a webhook). One sweep reads the type's list once,
    # 500 records a request: 20 requests per 10,000 records. Pipedrive charges a v2 list
    # request about 10 of its daily tokens (docs/PIPEDRIVE_API.md §6), so every 4 hours (6
    # sweeps a day) of 10,000 persons and 10,000 organizations costs 2 x 6 x 20 x 10 = 2,400
    # tokens, 8% of the smallest company budget (30,000 a day, Essential with one seat);
    # hourly would cost 32% of it. A ghost then stays 4 hours at most instead of a day.
    deletion_sweep_s: int = 4 * 3600

    def live_mode(self) -> tuple[LiveMode, str]:
        """How live updates arrive, and why.

        CRM_LIVE chooses; unset, the configuration decides: webhooks in demo (sandbox) mode,
        where the embedded sandbox posts to the app itself, and when deliveries can be
        verified (a client secret and the public URL HubSpot posts to); else the journal
        when the app's client id and secret can get a client-credentials token; else off.
        """
        can_receive = bool(self.client_secret and self.webhook_url)
        can_poll = bool(self.client_id and self.client_secret)
        if self.live == "off":
            return "off", "CRM_LIVE=off"
        if self.live == "webhooks":
            return "webhooks", "CRM_LIVE=webhooks"
        if self.live == "journal":
            if not can_poll:
                return "off", "CRM_LIVE=journal needs HUBSPOT_CLIENT_ID and HUBSPOT_CLIENT_SECRET"
            return "journal", "CRM_LIVE=journal"
        if self.is_sandbox:
            return "webhooks", "demo mode: the sandbox delivers webhooks to the app"
        if can_receive:
            return "webhooks", "a webhook URL and client secret are set"
        if can_poll:
            return "journal", "no public webhook URL; the app's client credentials can read the journal"
        return "off", "neither a webhook URL nor the app's client id and secret are set"

    @property
    def db_is_postgresql(self) -> bool:
        """Whether the cache is a PostgreSQL database (``CRM_DB=postgresql://...``)."""
        return is_postgresql_url(self.db)

    @property
    def db_path(self) -> Path:
        """The SQLite cache file.

        Raises:
            ConfigError: the cache is PostgreSQL, which has no file.
        """
        if self.db_is_postgresql:
            raise ConfigError("CRM_DB", "names a PostgreSQL database, not a file")
        return Path(self.db)

    @property
    def db_key(self) -> str:
        """The cache as one string per database, for a process's per-cache state (locks,
        workers): the resolved file path, or the URL without its password."""
        if self.db_is_postgresql:
            return redact_db_url(self.db)
        return str(Path(self.db).resolve())

    @property
    def db_label(self) -> str:
        """The cache for people and logs: "PostgreSQL at host:port/db", or the file path;
        never a password."""
        if self.db_is_postgresql:
            parts = urlsplit(self.db)
            label = f"PostgreSQL at {parts.hostname or 'localhost'}{_port_suffix(parts)}{parts.path or '/'}"
            schema = re.search(r"search_path=([A-Za-z0-9_]+)", unquote(parts.query))
            return label + (f", schema {schema.group(1)}" if schema else "")
        return self.db

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

    @property
    def home(self) -> Settings:
        """These settings on the home database (the registry, OAuth states), no connection chosen."""
        if not self.home_db and not self.connection:
            return self
        return dataclasses.replace(self, db=self.home_db or self.db, home_db="", connection="")

    def for_connection(self, connection: ConnectionRef) -> Settings:
        """These settings for one connection (a ``crm.store.connections.Connection``): ``db``
        is its partition of the home database and ``connection`` its id; everything that
        takes Settings (sync, push, webhooks, tokens) then works on that connection alone."""
        home = self.home_db or self.db
        chosen = dataclasses.replace(
            self,
            db=partition_target(home, connection.target),
            home_db=home,
            connection=connection.id,
            crm=connection.crm,
        )
        if connection.base_url:
            chosen = dataclasses.replace(chosen, base_url=connection.base_url)
        return chosen

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


class ConnectionRef(Protocol):
    """What settings need of a connection (``crm.store.connections.Connection`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def crm(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def base_url(self) -> str: ...


# A connection's partition of the cache (issue 14) is named by a slug; its database is a
# sibling file of a SQLite cache, or a schema of a PostgreSQL one. The naming lives here,
# beside the other readings of CRM_DB, so settings can address a partition without the store.
PARTITION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
PARTITION_SCHEMA_PREFIX = "c_"


def partition_schema(partition: str) -> str:
    """The PostgreSQL schema of a partition: ``c_hubspot_101``."""
    return PARTITION_SCHEMA_PREFIX + partition.replace("-", "_")


def partition_target(home: str, partition: str) -> str:
    """The database target of a partition of the home cache ``home`` (a path or a URL).

    ``""`` is the home itself. A SQLite partition is a sibling file; a PostgreSQL one is the
    same URL with ``options=-csearch_path=<schema>`` (added to any options already there).
    """
    if not partition:
        return home
    if not PARTITION_ID.match(partition):
        raise ValueError(f"not a partition name: {partition!r}")
    if is_postgresql_url(home):
        parts = urlsplit(home)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = " ".join(v for k, v in query if k == "options")
        options = (options + " " if options else "") + f"-csearch_path={partition_schema(partition)}"
        query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
        return parts._replace(query=urlencode(query, quote_via=quote)).geturl()
    path = Path(home)
    return str(path.with_name(f"{path.stem}.{partition}{path.suffix}"))


def load_settings(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> Settings:
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
        pipedrive_client_id=get("PIPEDRIVE_CLIENT_ID"),
        pipedrive_client_secret=get("PIPEDRIVE_CLIENT_SECRET"),
        pipedrive_oauth_url=_url(
            get("PIPEDRIVE_OAUTH_URL", PIPEDRIVE_OAUTH_URL), "PIPEDRIVE_OAUTH_URL"
        ).rstrip("/"),
        pipedrive_redirect_uri=_url(
            get("PIPEDRIVE_REDIRECT_URI", PIPEDRIVE_REDIRECT_URI), "PIPEDRIVE_REDIRECT_URI"
        ),
        db=_db(get("CRM_DB", DEFAULT_DB)),
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
        pipedrive_webhook_url=(
            _url(get("PIPEDRIVE_WEBHOOK_URL"), "PIPEDRIVE_WEBHOOK_URL")
            if get("PIPEDRIVE_WEBHOOK_URL")
            else ""
        ),
        pkce=_bool(get("HUBSPOT_PKCE", "false"), "HUBSPOT_PKCE"),
        secret_keys=keys,
        sandbox_seed=_int(get("CRM_SANDBOX_SEED", "42"), "CRM_SANDBOX_SEED"),
        sandbox_port=_port(get("CRM_SANDBOX_PORT", "0"), "CRM_SANDBOX_PORT"),
        sandbox_url=_url(get("CRM_SANDBOX_URL"), "CRM_SANDBOX_URL") if get("CRM_SANDBOX_URL") else "",
        staff_emails=tuple(e.lower() for e in _split(get("CRM_STAFF_EMAILS"), ",")),
        staff_domains=tuple(d.lower().lstrip("@") for d in _split(get("CRM_STAFF_DOMAINS"), ",")),
        admin_emails=tuple(e.lower() for e in _split(get("CRM_ADMIN_EMAILS"), ",")),
        open_access=_bool(get("CRM_OPEN_ACCESS", "false"), "CRM_OPEN_ACCESS"),
        http_timeout=_float(get("CRM_HTTP_TIMEOUT", "30"), "CRM_HTTP_TIMEOUT"),
        log_level=_choice(get("CRM_LOG_LEVEL", "INFO").upper(), LOG_LEVELS, "CRM_LOG_LEVEL"),
        log_format=_choice(get("CRM_LOG_FORMAT", "text").lower(), LOG_FORMATS, "CRM_LOG_FORMAT"),
        sync_interval_s=parse_interval(get("CRM_SYNC_INTERVAL"), "CRM_SYNC_INTERVAL"),
        live=_choice(get("CRM_LIVE").lower(), ("", *LIVE_MODES), "CRM_LIVE"),
        live_poll_s=_poll(get("CRM_LIVE_POLL", "5"), "CRM_LIVE_POLL"),
        preferred_connection=get("CRM_CONNECTION"),
        daily_budget=parse_share(get("CRM_DAILY_BUDGET", "50%"), "CRM_DAILY_BUDGET"),
        daily_limit=_count(get("CRM_DAILY_LIMIT", "0"), "CRM_DAILY_LIMIT"),
        deletion_sweep_s=parse_interval(get("CRM_DELETION_SWEEP", "4h"), "CRM_DELETION_SWEEP"),
    )


def is_postgresql_url(target: str) -> bool:
    """Whether a ``CRM_DB`` value names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(POSTGRESQL_SCHEMES)


def redact_db_url(target: str) -> str:
    """``target`` with any password in a ``postgresql://`` URL replaced by ``***``."""
    if not is_postgresql_url(target):
        return target
    parts = urlsplit(target)
    if parts.password is None:
        return target
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _port_suffix(parts: SplitResult) -> str:
    try:
        port = parts.port
    except ValueError:
        return ""
    return f":{port}" if port else ""


def _db(value: str) -> str:
    """CRM_DB checked: a PostgreSQL URL names a database; anything else is a file path."""
    if value.startswith(("postgresql:", "postgres:")) and not is_postgresql_url(value):
        raise ConfigError("CRM_DB", "a PostgreSQL URL starts with postgresql:// (two slashes)")
    if is_postgresql_url(value):
        parts = urlsplit(value)
        if not parts.path.strip("/"):
            raise ConfigError(
                "CRM_DB", f"must name a database, like postgresql://user@host/crm; got {redact_db_url(value)}"
            )
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ConfigError(
                "CRM_DB", f"has a port that is not a number from 1 to 65535: {redact_db_url(value)}"
            ) from None
    return value


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
    try:
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535 or not a number
    except ValueError:
        raise ConfigError(name, f"has a port that is not a number from 1 to 65535, got {value!r}") from None
    return value


def _port(value: str, name: str) -> int:
    port = _int(value, name)
    if not 0 <= port <= 65535:
        raise ConfigError(name, f"must be a port from 1 to 65535 (or 0 for any free port), got {port}")
    return port


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def parse_interval(value: str, name: str = "CRM_SYNC_INTERVAL") -> int:
    """Seconds in a duration like ``90s``, ``15m``, ``1h``, ``1h30m`` or ``2d``; empty or ``off``: 0.

    A bare number is seconds. Raises ConfigError naming ``name`` for anything else, and
    for intervals under a minute or over a week.
    """
    text = value.strip().lower().replace(" ", "")
    if text in ("", "off", "none"):
        return 0
    if text.isdigit():
        seconds = int(text)
    else:
        parts = re.findall(r"(\d+)([smhd])", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ConfigError(name, f"must be a duration like 90s, 15m, 1h or 1h30m (or off), got {value!r}")
        seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in parts)
    if not MIN_SYNC_INTERVAL_S <= seconds <= MAX_SYNC_INTERVAL_S:
        raise ConfigError(
            name, f"must be between 1m and 7d (or off), got {value!r}; 0 or a negative value is no schedule"
        )
    return seconds


def parse_share(value: str, name: str = "CRM_DAILY_BUDGET") -> float:
    """A share in (0, 1] from ``50%``, ``12.5%`` or ``0.5``; ConfigError naming ``name`` otherwise.

    A bare number above 1 is refused rather than read as a percentage: ``50`` could mean
    50% or a request count, and guessing wrong would spend a whole day's limit.
    """
    text = value.strip().replace(" ", "")
    percent = text.endswith("%")
    try:
        number = float(text[:-1] if percent else text)
    except ValueError:
        raise ConfigError(name, f"must be a share like 50% or 0.5, got {value!r}") from None
    share = number / 100 if percent else number
    if not math.isfinite(share) or not 0 < share <= 1:
        raise ConfigError(name, f"must be more than 0% and at most 100% (or 0.5 for half), got {value!r}")
    return share


def _count(value: str, name: str) -> int:
    number = _int(value.replace("_", "").replace(",", ""), name)
    if number < 0:
        raise ConfigError(name, f"must be 0 (unknown) or a positive whole number, got {value!r}")
    return number


def _poll(value: str, name: str) -> float:
    seconds = _float(value, name)
    if not MIN_LIVE_POLL_S <= seconds <= MAX_LIVE_POLL_S:
        raise ConfigError(
            name, f"must be between {MIN_LIVE_POLL_S:g} and {MAX_LIVE_POLL_S:g} seconds, got {value!r}"
        )
    return seconds


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
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(name, f"must be a number greater than zero, got {value!r}")
    return number


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False
