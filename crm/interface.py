"""The CRM interface: what a CRM implements so pages, sync, store and validation need not know which.

A CRM is two objects:

    Crm (one per CRM, no connection)         CrmApi (one connected account, one session)
    ├── name, words, object_types            ├── identity()
    ├── oauth(settings) -> OAuthDetails      ├── properties(type), create_property(type, Property)
    ├── exchange_code / refresh / revoke     ├── owners(), pipelines(type)
    ├── open(settings, tokens) -> CrmApi     ├── list_page / iter_modified_since / batch_read
    ├── connect(settings) -> CrmApi          ├── batch_create / batch_update / batch_upsert
    ├── read_webhook(request, secret)        ├── associations(from, to, ids)
    ├── record_url(type, id, account)        └── close() (a context manager)
    └── account_url(account)

Everything crossing the interface is neutral: object types are ``"contacts"``,
``"companies"``, ``"deals"`` (a CRM maps its own names, e.g. Pipedrive's persons), values
are the CRM's strings (``None`` for absent or empty), times are ISO-8601 UTC text, ids are
strings. A CRM's wire names never cross it.

Errors: every method raises only ``crm.errors.CrmError`` subclasses: ``NotConnected`` /
``NeedsReconnect`` (no usable credentials), ``Unreachable`` (no answer), ``RateLimited``
(still limited after the implementation's own bounded retries), ``NotFound``,
``ValidationFailed`` (the CRM refused values; ``field_errors`` names them), ``AlreadyExists``,
``WebhookRejected`` (webhooks), ``OAuthFlowError`` (code exchange). Nothing else leaks.

Implementations: ``crm.hubspot.provider.HubSpot`` (``crm.crms.provider_for("hubspot")``).
The conformance suite every implementation passes is ``tests/interface/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, Self, runtime_checkable

from crm.config import Settings

if TYPE_CHECKING:
    import httpx2

ChangeKind = Literal[
    "created", "updated", "deleted", "restored", "merged", "associations", "privacy_deleted", "other"
]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)


def safe_host(value: object) -> str | None:
    """A plain dotted hostname (``app.hubspot.com``), lower-cased, or None for anything else.

    What a ``record_url`` puts after ``https://``: a value from the CRM never becomes a
    link to somewhere else (no scheme, port, path, user info or spaces).
    """
    host = str(value or "").strip().lower()
    return host if _HOSTNAME.match(host) else None


# --- neutral values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One CRM record, neutral.

    ``properties`` are the CRM's values as strings (absent and empty both None).
    ``associations`` maps an object type to the ids of the records linked to this one,
    filled only by calls that say so (``CrmApi.associations`` is the general way).
    """

    id: str
    type: str
    properties: Mapping[str, str | None]
    created_at: str | None
    updated_at: str | None
    associations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    archived: bool = False


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    display_order: int = 0
    hidden: bool = False


@dataclass(frozen=True)
class Property:
    """A field of an object type: built in or custom.

    ``type`` is the neutral value type: ``string``, ``number``, ``date``, ``datetime``,
    ``bool``, ``enumeration`` (one of ``options``) or ``multi`` (several of them).
    """

    name: str
    label: str
    type: str
    options: tuple[Option, ...] = ()
    read_only: bool = False
    custom: bool = False
    unique: bool = False
    group: str | None = None


@dataclass(frozen=True)
class Owner:
    """Someone records can be assigned to (HubSpot: an owner; Pipedrive: a user)."""

    id: str
    email: str | None
    name: str
    archived: bool = False


@dataclass(frozen=True)
class Stage:
    id: str
    label: str
    display_order: int = 0
    probability: float | None = None
    is_closed: bool = False


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...]
    display_order: int = 0


@dataclass(frozen=True)
class Identity:
    """Who a connection is: the CRM account, its name, the user who connected (if known).

    ``ui_host`` is the host the CRM's own UI serves the account on (record links).
    ``currency`` is the account's default currency code (HubSpot's company currency,
    Pipedrive's user default): what a deal amount naming no currency is in; None when the
    CRM does not say.
    """

    account_id: str
    account_name: str
    user: str | None = None
    ui_host: str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Event:
    """One change a webhook delivery reported, neutral.

    ``object_type`` is None for objects the dashboard does not keep; ``occurred_at`` is
    ISO-8601 UTC (None if the CRM did not say). ``raw`` is the CRM's event as received,
    for the inbox (it is left out of comparisons).
    """

    account_id: str
    object_type: str | None
    object_id: str
    change: ChangeKind
    occurred_at: str | None
    event_id: str | None = None
    raw: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class WebhookRequest:
    """A delivery as the route saw it; ``uri`` is the public URL the CRM called."""

    method: str
    uri: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class OAuthDetails:
    """Where a CRM's OAuth flow runs, for these settings."""

    authorize_url: str
    token_url: str
    revoke_url: str | None
    scopes: tuple[str, ...]
    optional_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grant:
    """What a code exchange or refresh returned (secrets: kept out of repr)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...]
    account_id: str | None
    user_id: str | None = None
    # Where this account's API calls go when the CRM says so (Pipedrive's api_domain); None:
    # the CRM's usual base URL.
    api_base: str | None = None


@dataclass
class Page:
    """One page of a list; ``next_cursor`` is None on the last page."""

    records: list[Record]
    next_cursor: str | None


@dataclass(frozen=True)
class WriteFailure:
    """One input a batch write refused: ``ref`` is its id (update/upsert) or trace (create)."""

    ref: str | None
    error: Exception


@dataclass
class WriteResult:
    """A batch write's outcome: records written, inputs refused, ids created by an upsert."""

    records: list[Record]
    failures: list[WriteFailure] = field(default_factory=list)
    created_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectTypeInfo:
    """A neutral object type as this CRM has it, and which of its fields play known roles.

    ``owner``, ``stage``, ``pipeline``, ``email`` and ``phone`` name the CRM's property for that
    role (None when the type has no such field); ``title`` the properties a record's
    label is made of (those before the email role joined by spaces; when that is empty,
    the first later one with a value).
    """

    name: str
    label: str
    singular: str
    owner: str | None = None
    stage: str | None = None
    pipeline: str | None = None
    email: str | None = None
    title: tuple[str, ...] = ()
    # The property holding a contact's (primary) phone number, where the type has one
    # (added for contacts created in several CRMs at once, crm.sync.links).
    phone: str | None = None
    # --- what the list and record pages show (additive, issue #15) ---
    # ``columns``: the list page's columns in order; ``editable``: those edited inline;
    # ``search``: the properties its search box matches; ``sorts``: (column, descending
    # first) in the order offered (``updated_at`` is the record's last change as cached);
    # ``related``: the columns of this type in another record's associated list;
    # ``labels``: a column's title on the pages where it differs from ``Words.fields``;
    # ``search_hint``: what the search box says it matches.
    columns: tuple[str, ...] = ()
    editable: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    sorts: tuple[tuple[str, bool], ...] = ()
    related: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # More roles: an amount of money (a deal's value), its currency code (None: one currency,
    # the account's; a record whose code is empty is in the account's, ``Identity.currency``;
    # sums never add two currencies), a deal's close date; the property holding the id of the company a record belongs to
    # (Pipedrive's org_id; None where the link is an association).
    search_hint: str = ""
    amount: str | None = None
    currency: str | None = None
    close_date: str | None = None
    company: str | None = None
    # A deal's open/won/lost field and its values for open and won (Pipedrive's status);
    # None: the stage says (HubSpot's closed stages and their probability).
    status: str | None = None
    status_open: str | None = None
    status_won: str | None = None

    def title_parts(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``title`` split as a record's name is made: (joined by spaces, fallbacks in order)."""
        title = self.title
        cut = title.index(self.email) if self.email in title else min(1, len(title))
        return title[:cut], title[cut:]

    def label_of(self, name: str, words: Words, defs: Mapping[str, Mapping[str, object]]) -> str:
        """A column's title: this type's own, else the CRM's word for it, else its definition's
        label, else the name made readable."""
        own = dict(self.labels).get(name)
        if own:
            return own
        if name in words.fields:
            return words.fields[name]
        label = (defs.get(name) or {}).get("label")
        return str(label) if label else words.field_label(name)


@dataclass(frozen=True)
class Words:
    """The CRM's own words, for pages and messages: never an ``if hubspot`` in a page.

    ``fields`` maps a property name to the label the CRM's UI gives it
    (``lifecyclestage`` -> "Lifecycle stage"). ``interactions`` is what the CRM calls the
    notes, calls, tasks... its sync keeps for the activity timelines (a Sync page count, a
    run-history column) and ``interactions_detail`` what they are; None when its sync keeps
    none (a provider names them exactly when its sync reads them: tests/interface).
    ``webhook_refusals`` is what to check when many webhook deliveries are refused (Markdown
    without CRM data: the settings and the command that set the CRM's webhooks right).
    """

    crm: str
    account: str
    owner: str = "owner"
    fields: Mapping[str, str] = field(default_factory=dict)
    interactions: str | None = None
    interactions_detail: str = ""
    webhook_refusals: str = ""

    @property
    def open_record(self) -> str:
        return f"Open in {self.crm}"

    def account_label(self, account_id: object) -> str:
        """``"portal 101"``."""
        return f"{self.account} {account_id}"

    def field_label(self, name: str) -> str:
        """The CRM's label of a property, else the name made readable."""
        return self.fields.get(name) or name.replace("_", " ").capitalize()


class TokenSource(Protocol):
    """Where a connected API gets its bearer token.

    ``portal_key`` keys the account's rate limiter, shared by every client of the account
    in the process (the name is historical; it is any account's key).
    """

    portal_key: str

    def access_token(self) -> str: ...

    def refresh_after_401(self, rejected: str) -> str:
        """A new token after the CRM refused ``rejected``; NeedsReconnect if none can be had."""
        ...


# --- the protocols --------------------------------------------------------------------------


@runtime_checkable
class CrmApi(Protocol):
    """One connected CRM account: reads and writes records and their definitions.

    Thread-safe; one per sync run. Rate limits are the implementation's business: calls
    wait for the account's budget and retry what is safe to retry (reads, updates,
    upserts) within a bound, then raise RateLimited / Unreachable.
    """

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def identity(self) -> Identity:
        """The connected account (id, name) and its UI host."""
        ...

    def properties(self, object_type: str) -> list[Property]:
        """Every property of the type, built-in and custom, archived ones left out."""
        ...

    def create_property(self, object_type: str, prop: Property) -> Property:
        """Create a custom property (enumerations with their options).

        Raises AlreadyExists when the type has a property with that name.
        """
        ...

    def owners(self) -> list[Owner]:
        """Every active owner, in no particular order."""
        ...

    def pipelines(self, object_type: str) -> list[Pipeline]:
        """The type's pipelines and stages in display order ([] for a type without)."""
        ...

    def list_page(
        self, object_type: str, *, properties: Sequence[str], cursor: str | None = None, limit: int = 100
    ) -> Page:
        """One page of at most ``limit`` live (not archived) records, in a stable order.

        ``limit`` is capped at the CRM's own page maximum. Paging guarantee: following
        ``next_cursor`` from None to the end yields every record that existed for the
        whole walk exactly once.
        """
        ...

    def iter_modified_since(
        self, object_type: str, since_ms: int, *, properties: Sequence[str]
    ) -> Iterator[list[Record]]:
        """Records changed at or after ``since_ms`` (epoch milliseconds), in batches.

        Guarantee: every record whose ``updated_at`` is at or after ``since_ms`` when the
        walk starts is yielded at least once (duplicates possible, batches may be empty).
        """
        ...

    def batch_read(self, object_type: str, ids: Sequence[str], *, properties: Sequence[str]) -> list[Record]:
        """The records with these ids, in any order; unknown or archived ids are left out."""
        ...

    def batch_create(self, object_type: str, inputs: Sequence[Mapping[str, str | None]]) -> WriteResult:
        """Create one record per input (property values).

        Not idempotent and never blindly retried: after a timeout the caller reconciles.
        A refused input fails alone (``failures[i].ref`` is ``"input-<index>"``).
        """
        ...

    def batch_update(self, object_type: str, updates: Mapping[str, Mapping[str, str | None]]) -> WriteResult:
        """Set properties on existing records (``{id: {property: value}}``; None clears).

        Idempotent. A refused or unknown id fails alone (``ref`` is its id).
        """
        ...

    def batch_upsert(
        self, object_type: str, inputs: Sequence[Mapping[str, str | None]], *, key: str
    ) -> WriteResult:
        """Create or update records matched on the unique property ``key`` (e.g. email).

        Idempotent: sending the same inputs twice leaves one record per key value;
        ``created_ids`` lists the records this call created. An input without a value
        for ``key`` fails alone (``ref`` is ``"input-<index>"``).
        """
        ...

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """``{from id: [linked ids of to_type]}`` for every id asked about ([] for none)."""
        ...


# --- optional capabilities (pdweb, issue #15): checked with isinstance ----------------------


@runtime_checkable
class WebhookAccounts(Protocol):
    """A CRM whose deliveries are verified with a secret of the *connection* (Pipedrive's
    Basic credentials), so the receiver must know the account before it can verify.

    ``webhook_account`` reads the account id a delivery claims, unverified: it only picks
    whose credentials ``read_webhook`` then checks. Raises WebhookRejected (``malformed``)
    for a body it cannot read.
    """

    def webhook_account(self, body: bytes) -> str: ...


@runtime_checkable
class WebhookSubscriptions(Protocol):
    """A connected API that registers webhooks by API call (Pipedrive's ``/api/v1/webhooks``).

    ``subscribe_webhooks`` registers deliveries of the kept object types to ``url`` with
    HTTP Basic ``user``/``password`` (replacing any webhook already delivering to ``url``)
    and returns the new subscriptions' ids;
    ``unsubscribe_webhooks`` removes them (ids the CRM no longer has are ignored).
    """

    def subscribe_webhooks(self, url: str, *, user: str, password: str) -> list[str]: ...

    def unsubscribe_webhooks(self, ids: Sequence[str]) -> None: ...


@runtime_checkable
class DeletionFeed(Protocol):
    """Optional capability of a ``CrmApi``: the CRM lists the records deleted since a moment.

    An incremental pull asks for it with ``isinstance(api, DeletionFeed)``; without it (or for
    a type it returns None for) deletions reach the cache by the next full pull, which flags
    every record it did not see, or by webhooks.
    """

    def deleted_since(self, object_type: str, since_ms: int) -> list[str] | None:
        """Ids of the type's records deleted at or after ``since_ms`` (epoch ms), duplicates
        possible; None when the CRM keeps no such list for this type."""
        ...


@runtime_checkable
class LinksOnRecords(Protocol):
    """Optional capability of a ``CrmApi``: some associations are fields of the records.

    A CRM that keeps a record's link on the record itself (Pipedrive: a person's ``org_id``,
    a deal's ``person_id`` and ``org_id``) hands it back with every list page, so a pull
    writes those associations from the page's records instead of asking
    ``CrmApi.associations``, which would read the same records again. Checked with
    ``isinstance(api, LinksOnRecords)``; without it the pull asks ``associations``.
    """

    def links_on_records(self, object_type: str) -> dict[str, str]:
        """``{to_type: property}``: the associations of ``object_type`` its records carry as
        the property's value (the other record's id; empty when unlinked). Only the pairs
        listed; ``{}`` when the type carries none."""
        ...


@runtime_checkable
class WindowedList(Protocol):
    """Optional capability of a ``CrmApi``: a type's list splits into independent windows.

    A cursor walk is one chain of requests, each waiting for the one before; a CRM whose list
    can be filtered into disjoint windows that together hold every record (Pipedrive: by
    update time) lets a full pull walk the windows at once, each by its own cursor, so more
    requests are in flight within the rate limit. A record edited during the walk may move
    out of a window a walker already passed; the pull reads what changed since it began
    before flagging unseen records archived. Checked with ``isinstance(api, WindowedList)``.
    """

    def list_windows(self, object_type: str, parts: int) -> list[str]:
        """At most ``parts`` windows (opaque, JSON-safe strings kept in the resume state),
        disjoint and together covering every record of the type, including records created
        after this call; one window when the type cannot usefully be split."""
        ...

    def list_window_page(
        self,
        object_type: str,
        window: str,
        *,
        properties: Sequence[str],
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """One page of the window's live records, as ``CrmApi.list_page`` for the whole type."""
        ...


@runtime_checkable
class Crm(Protocol):
    """One CRM: what is known without a connection, and how to open one."""

    name: str
    words: Words

    def object_types(self) -> tuple[ObjectTypeInfo, ...]:
        """The neutral object types this CRM provides, in the order pages list them."""
        ...

    def oauth(self, settings: Settings) -> OAuthDetails: ...

    def exchange_code(self, settings: Settings, code: str, *, code_verifier: str | None = None) -> Grant:
        """Redeem an authorization code once. Raises OAuthFlowError."""
        ...

    def refresh(
        self, settings: Settings, refresh_token: str, *, transport: httpx2.BaseTransport | None = None
    ) -> Grant:
        """A new access token. Raises NeedsReconnect only when the refresh token is dead."""
        ...

    def revoke(
        self, settings: Settings, refresh_token: str, *, transport: httpx2.BaseTransport | None = None
    ) -> None:
        """Revoke at the CRM. Raises Unreachable when the CRM did not confirm."""
        ...

    def open(self, settings: Settings, tokens: TokenSource, *, base_url: str | None = None) -> CrmApi:
        """A connected API over these tokens."""
        ...

    def connect(self, settings: Settings) -> CrmApi:
        """A connected API over the credentials stored for ``settings`` (its connection).

        Raises NotConnected / NeedsReconnect.
        """
        ...

    def read_webhook(self, request: WebhookRequest, *, secret: str, now_ms: int | None = None) -> list[Event]:
        """Verify a delivery (in constant time) and parse its events.

        ``secret`` is what the CRM authenticates deliveries with (HubSpot: the app's
        client secret; Pipedrive: ``user:password`` of the webhook's Basic auth).

        Raises:
            WebhookRejected: forged, stale or malformed (``reason`` says which).
        """
        ...

    def record_url(self, object_type: str, record_id: str, *, account: Identity) -> str | None:
        """The record's page in the CRM's own UI (https), or None when it cannot be built.

        None for a host that is not a plain hostname (``safe_host``), an account id or
        record id the CRM would never issue (e.g. a local ``local-…`` id), or a type
        without pages of its own.
        """
        ...

    def account_url(self, account: Identity) -> str | None:
        """The account's home in the CRM's own UI (https), or None."""
        ...

    def consent_missing(self, settings: Settings) -> str | None:
        """Why this app cannot send an admin through the CRM's consent page (what to
        configure, or how to connect instead; Markdown without CRM data), or None when it can.
        """
        ...

    def configured_mode(self, settings: Settings) -> str | None:
        """The connection mode the app's settings impose on this CRM (HubSpot: private_app
        with HUBSPOT_ACCESS_TOKEN, else oauth or sandbox), or None when each connection keeps
        the mode it was made with (``connections.mode``)."""
        ...


# --- optional capabilities (push) ---------------------------------------------------------
# A CrmApi may implement these; callers check with isinstance and do without otherwise.


@runtime_checkable
class ReadsByKey(Protocol):
    """Reads records by the value of a unique property (a contact's email).

    What a push checks before creating: a record the CRM already has under that key is
    reconciled, never written over (crm.sync.push).
    """

    def read_by_key(
        self, object_type: str, values: Sequence[str], *, key: str, properties: Sequence[str]
    ) -> dict[str, Record]:
        """``{value: record}`` for each of ``values`` a live record holds as ``key`` (no match:
        left out). A record matched on a secondary value (a person's second email) counts:
        the caller must not create another record for it."""
        ...


@runtime_checkable
class LogsEngagements(Protocol):
    """Creates notes and tasks linked to records, and finds one by its exact time.

    A create has no idempotency key, so a retried one is first looked for by its timestamp
    (crm.sync.push). What is created comes by role (``roles``: the keys of
    ``crm.store.interactions.LOGGED_ROLES``: time, owner, note_body, task_subject, ...), each
    CRM naming them its own way; what is read back (a ``Record``) carries the cache's
    engagement properties (``LOGGED_ROLES``' values). ``object_type`` is ``notes`` or ``tasks``.
    """

    def find_logged(
        self,
        object_type: str,
        timestamp_ms: int,
        *,
        properties: Sequence[str],
        links: Sequence[tuple[str, str]] = (),
        since_ms: int | None = None,
    ) -> list[Record]:
        """The engagements of the type an earlier attempt to create this one may have made:
        whose timestamp is exactly ``timestamp_ms`` where the CRM keeps the time it was given
        (HubSpot), else (a CRM that stamps its own) among those of the records in ``links``
        (the ``create_logged`` pairs) added since ``since_ms`` (when it was queued) or so.
        The caller matches the text."""
        ...

    def create_logged(
        self, object_type: str, roles: Mapping[str, str | None], links: Sequence[tuple[str, str]]
    ) -> WriteResult:
        """Create one engagement of ``roles`` linked to ``links`` (``(neutral type, record id)`` pairs).

        Never retried blindly: after an unknown outcome the caller looks for it first.
        """
        ...


# -- sched: what a connected API's requests cost (additive) ------------------------------------


@runtime_checkable
class ReportsUsage(Protocol):
    """Optional capability of a ``CrmApi``: what its requests cost, for a sync run's counts
    and the Sync page's gauges (the generic pull asks ``isinstance(api, ReportsUsage)``).

    Both return plain numbers, never a credential, and are safe to call from another thread
    (the run's heartbeat) while requests go on.
    """

    def request_stats(self) -> dict[str, int]:
        """``{"requests", "retries", "rate_limited"}`` since the API was opened."""
        ...

    def rate_gauges(self) -> dict[str, dict[str, float]]:
        """The CRM's rate windows as its last answer reported them, e.g. ``{"burst": {"used",
        "limit", "window_s"}}``; empty before the first answer (or when it sends no figures).
        A ``"daily"`` entry (``used``, ``limit`` in requests), where a CRM reports its day's
        budget, is what a deletion sweep checks it can afford (``crm.sync.sweep``)."""
        ...


# -- pdtimeline: a CRM's notes and activities for the timeline (issue #15, additive) ----------

# The neutral kinds of interaction a timeline shows (the cache's engagement types).
INTERACTION_KINDS = ("notes", "calls", "meetings", "tasks", "emails")


@dataclass(frozen=True)
class Interaction:
    """One note, call, meeting, task or email logged on records, neutral.

    ``kind`` is one of ``INTERACTION_KINDS``; ``occurred_at`` (when it happened, or is due)
    and ``updated_at`` are ISO-8601 UTC; ``owner_id`` is an ``Owner`` id; ``summary`` is one
    short line of facts (status, due time, duration...); ``body`` is plain text, never
    markup (a CRM's HTML reduced with ``crm.plaintext``). ``links`` are the records it shows
    on, as ``(neutral type, id)`` pairs. ``properties`` holds the CRM's other facts as text.
    """

    kind: str
    id: str
    occurred_at: str
    owner_id: str | None
    subject: str | None
    summary: str | None
    body: str
    links: tuple[tuple[str, str], ...]
    updated_at: str | None
    created_at: str | None = None
    archived: bool = False
    properties: Mapping[str, str | None] = field(default_factory=dict)


@runtime_checkable
class ListsInteractions(Protocol):
    """Optional capability of a ``CrmApi``: the notes and activities logged on its records.

    A CRM lists them in one or more *feeds* (Pipedrive: ``notes`` and ``activities``), each
    walked on its own (own cursor). The generic pull (``crm.sync.listpull_interactions``)
    reads every feed in full, then by modified time, and flags what a full read did not
    see as deleted. Checked with ``isinstance(api, ListsInteractions)``; HubSpot's
    engagements keep their own pull. A webhook event about a feed's item names the feed as
    its ``Event.object_type`` (e.g. ``"activities"``); the worker reads it back with
    ``read_interactions``.
    """

    def interaction_feeds(self) -> dict[str, tuple[str, ...]]:
        """``{feed: the kinds its items can have}``; a kind belongs to one feed only."""
        ...

    def iter_interactions(self, feed: str, *, since_ms: int | None = None) -> Iterator[list[Interaction]]:
        """The feed's live items in batches: all of them (``since_ms`` None), else those
        changed at or after ``since_ms`` (epoch ms; duplicates possible). An item changed
        during the walk is yielded at least once, with its latest values or later."""
        ...

    def read_interactions(self, feed: str, ids: Sequence[str]) -> list[Interaction]:
        """The feed's live items with these ids (a webhook named them); deleted or unknown
        ids are left out, so the caller flags them deleted."""
        ...
