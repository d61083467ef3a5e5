"""Webhooks (HubSpot, Pipedrive): check a delivery, keep it in the inbox, apply it in the background.

    POST /hubspot/webhook (ui/webhook_route.py)
      -> size cap (the route, while streaming) -> receive(): timestamp window, v3 signature
      -> inbox (deduplicated on portalId, subscriptionId, eventId) -> 204 at once
      -> notify(): this process's worker thread wakes
      -> process_pending(): fetch-on-notify, re-read the affected records from HubSpot in
         batches and apply them through the sync engine's merge (pending edits win)

    POST /pipedrive/webhook -> receive_from(): meta.company_id -> that company's connection
      -> its stored Basic credentials (crm.subscriptions) checked by Pipedrive.read_webhook
      -> neutral events in that connection's inbox -> process_pending() re-reads them
         through the CRM interface (CrmApi.batch_read; gone -> archived)

Fetch-on-notify means an event is only a hint that something changed: the cache always
takes HubSpot's *current* state, so duplicate and out-of-order deliveries cannot corrupt
it. A failed round (HubSpot unreachable, connection needing a reconnect) leaves the
events pending with the error recorded; they are retried with backoff up to
``MAX_ATTEMPTS`` times and stay in the inbox afterwards.

Signature (HUBSPOT_API.md §9.1): base64 HMAC-SHA256 with the app's client secret over
method + URI + raw body + timestamp, where the URI is the *public* URL HubSpot called
(``settings.webhook_url``), not the one this process sees behind a proxy. The check and
the body parsing are pure and live in ``crm.hubspot.deliveries`` (re-exported here), so
the CRM interface's webhook verification (``crm.hubspot.provider``) is the same code.

Refused requests are counted in memory (``Refusals``), never in the database, and logged
as at most one summary line a minute: a flood of forged requests costs neither disk
writes nor log volume. The counts restart with the process; the sidebar shows them.

Numbers in a delivery are checked before anything parses or stores them: the timestamp
header must be 1-16 ASCII digits (``int()`` of a 5,000-digit string raises), and the
event keys must fit SQLite's signed 64-bit INTEGER (a bigger Python int fails the insert
with OverflowError). A signed batch that breaks these is refused as ``malformed`` (400).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm import crms, oauth, store, subscriptions
from crm.config import Settings
from crm.errors import CrmError, NotFound, WebhookRejected
from crm.hubspot import HubSpotClient, Record
from crm.hubspot.deliveries import MAX_ID as MAX_ID
from crm.hubspot.deliveries import SIGNATURE_HEADER as SIGNATURE_HEADER
from crm.hubspot.deliveries import SINGULAR_TYPES as _SINGULAR
from crm.hubspot.deliveries import TIMESTAMP_HEADER as TIMESTAMP_HEADER
from crm.hubspot.deliveries import TIMESTAMP_TOLERANCE_MS as TIMESTAMP_TOLERANCE_MS
from crm.hubspot.deliveries import event_object_type as event_object_type
from crm.hubspot.deliveries import parse_events as _parse_events
from crm.hubspot.deliveries import public_uri as public_uri
from crm.hubspot.deliveries import signature_v3 as signature_v3
from crm.hubspot.deliveries import valid_id as valid_id
from crm.hubspot.deliveries import verify_v3 as verify_v3
from crm.interface import CrmApi, Event, Interaction, ListsInteractions, WebhookAccounts, WebhookRequest
from crm.logs import in_run
from crm.store import Store, inbox
from crm.store.interactions import THREADS
from crm.sync.pull import pull_properties, read_transcripts, writer_for
from crm.sync.runstate import ASSOCIATIONS

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_ATTEMPTS = 10
# Between failed rounds the worker waits 5 s, 10 s, 20 s... up to this; ten attempts span
# about twenty minutes before events are left for a sync to cover.
MAX_BACKOFF_S = 300.0
# Per round: HubSpot sends at most 100 events a request, so this is a handful of requests.
EVENTS_PER_ROUND = 500
BATCH_READ_SIZE = 100
# Processed events are kept longer than HubSpot's 24 h retry window, so a late
# redelivery is still recognised as a duplicate.
KEEP_PROCESSED = timedelta(days=3)
# Ids a batch read left out are read one by one (a single read follows a merge) up to this
# many per type and round; the rest are flagged archived and the next sync sorts them out.
MERGE_PROBES = 20
# HubSpot lists the ids merged into a record here (ids separated by ";"); asked for explicitly.
MERGED_IDS = "hs_merged_object_ids"
# meta key of the merge notes the Sync page shows, and what a privacy deletion leaves in audit.
MERGE_NOTES = "live.merge_notes"
PRIVACY_NOTE = "values removed: the contact was deleted in HubSpot under GDPR"
# How long the receiving request may wait for the SQLite write lock before answering
# 503 (HubSpot times out after 5 s and retries a 5xx).
INBOX_WAIT_S = 3.0

# A refusal summary goes to the log at most this often.
REFUSAL_LOG_INTERVAL_S = 60.0

_ASSOCIATION_TYPE_RE = re.compile(r"^(CONTACT|COMPANY|DEAL|TICKET)_TO_(CONTACT|COMPANY|DEAL|TICKET)(?:_|$)")
_SINGULAR_OF = {plural: singular for singular, plural in _SINGULAR.items()}
# The association pairs the cache keeps, as the sync engine reads them (from -> to).
ASSOCIATION_PAIRS = tuple(pair for pairs in ASSOCIATIONS.values() for pair in pairs)


# --- checking a delivery -------------------------------------------------------------


def configuration(settings: Settings) -> tuple[bool, str]:
    """Whether this app can accept webhooks, and if not, what is missing."""
    mode, why = settings.live_mode()
    if mode != "webhooks" and settings.live:
        return False, f"{why}: live updates do not use webhooks"
    if not settings.client_secret:
        if settings.mode == "private_app":
            return False, (
                "private-app mode without a client secret: set HUBSPOT_CLIENT_SECRET "
                "to the app's client secret so deliveries can be verified"
            )
        return False, "no HubSpot client secret is configured to verify deliveries"
    if not settings.webhook_url:
        if settings.is_sandbox:
            return False, "the sandbox in use does not deliver webhooks to this app (set HUBSPOT_WEBHOOK_URL)"
        return False, (
            "HUBSPOT_WEBHOOK_URL is not set: give the public https URL of this app's "
            "/hubspot/webhook, as entered in the HubSpot app's webhook settings"
        )
    return True, f"HubSpot delivers to {settings.webhook_url}"


def receiving(settings: Settings) -> bool:
    """Whether webhooks reach this connection: HubSpot's app settings (``configuration``),
    or webhooks the connection registered itself (``crm.subscriptions``: Pipedrive).

    Not for checking a delivery: ``receive`` verifies HubSpot's with ``configuration``
    alone, so a registered Pipedrive webhook never makes an unsigned HubSpot delivery pass.
    """
    return configuration(settings)[0] or subscriptions.stored(settings) is not None


@in_run("webhook")
def receive(
    settings: Settings,
    *,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    now_ms: int | None = None,
    delivered: list[Settings] | None = None,
) -> int:
    """Verify a delivery and store its events in their connections' inboxes; return how
    many were new.

    One route serves every connection: the events are grouped by ``portalId`` and each
    group goes to the inbox of the connection of that portal (``route_events``); the
    Settings of each connection that got new events are appended to ``delivered`` (the
    route wakes their workers). Events for a portal no connection has are dropped and
    counted as refusals (``unknown_portal``); when no event of the delivery is for a
    connected portal, the whole delivery is refused. Refused requests are counted in
    memory by reason (``live_status`` shows them) and logged at most once a minute.

    Raises:
        WebhookRejected: the request failed a check (``reason`` says which), its signed
            body is not a JSON array of events with sane keys (``malformed``), or none of
            its events is for a connected portal (``unknown_portal``).
        StoreUnavailable: the cache cannot be written; the route answers 503.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected("The request body is larger than 1 MiB.", reason="too_large")
        enabled, why = configuration(settings)
        if not enabled:
            raise WebhookRejected(f"Webhooks are not set up: {why}.", reason="not_configured")
        verify_v3(
            client_secret=settings.client_secret,
            method=method,
            uri=settings.webhook_url,
            body=body,
            timestamp=lowered.get(TIMESTAMP_HEADER, "").strip(),
            signature=lowered.get(SIGNATURE_HEADER, ""),
            now_ms=now_ms,
        )
        events = _parse_events(body)
        routed = route_events(settings, events)
        if events and not routed.groups:
            raise WebhookRejected(
                f"No event is for a connected portal (portals {sorted(routed.unknown)}).",
                reason="unknown_portal",
            )
    except WebhookRejected as exc:
        record_rejection(settings, exc.reason, detail=exc.message)
        raise
    for portal_id, count in sorted(routed.unknown.items()):
        record_rejection(
            settings, "unknown_portal", detail=f"{count} event(s) for portal {portal_id}, not connected"
        )
    now = datetime.now(UTC)
    new = 0
    for target, group in routed.groups:
        with store.open(target, wait_s=INBOX_WAIT_S) as db:
            added = db.inbox.add_events(group, received_at=now.isoformat(), received_ts=now.timestamp())
        new += added
        if added and delivered is not None:
            delivered.append(target)
    return new


# --- deliveries of CRMs that verify per connection (Pipedrive) ---------------------------

# The event kinds a neutral (interface) event is stored under in the inbox: a payload with
# "change" is one (``neutral_payload``); HubSpot's stored events never have that key.
_NEUTRAL_MARK = "change"


@in_run("webhook")
def receive_from(
    settings: Settings,
    crm_name: str,
    *,
    method: str,
    uri: str,
    headers: Mapping[str, str],
    body: bytes,
    delivered: list[Settings] | None = None,
) -> int:
    """Verify a delivery of a CRM whose webhooks each connection registers itself
    (``crm.interface.WebhookAccounts``: Pipedrive) and store its events; return how many were new.

    The delivery names its account (Pipedrive: ``meta.company_id``); the connection of that
    account is looked up in the registry, and the delivery is verified with *that
    connection's* stored credentials (``crm.subscriptions.secret``) by the CRM's
    ``read_webhook`` (constant-time), on the raw bytes. Its events go to that connection's
    inbox as neutral events (``neutral_payload``), and its Settings are appended to
    ``delivered``. Refusals are counted and logged like HubSpot's (``record_rejection``):
    under the connection once the delivery's account names one (its pages show them), else
    under ``settings``.

    Raises:
        WebhookRejected: too large, unreadable (``malformed``), an account no connection
            has (``unknown_account``), or credentials that do not match (401 reasons).
        StoreUnavailable: the cache cannot be read or written; the route answers 503.
    """
    counted = settings
    try:
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected("The request body is larger than 1 MiB.", reason="too_large")
        provider = crms.provider_for(crm_name)
        if not isinstance(provider, WebhookAccounts):
            raise WebhookRejected(
                f"{provider.words.crm} deliveries are not taken here.", reason="not_configured"
            )
        account = provider.webhook_account(body)
        with store.open(settings.home, wait_s=INBOX_WAIT_S) as db:
            conn = db.connections.by_account(provider.name, account)
        if conn is None:
            raise WebhookRejected(
                f"A delivery for {provider.words.account_label(account)}, which no connection has.",
                reason="unknown_account",
            )
        target = counted = settings.for_connection(conn)
        request = WebhookRequest(method=method, uri=uri, headers=headers, body=body)
        events = provider.read_webhook(request, secret=subscriptions.secret(target, account))
    except WebhookRejected as exc:
        record_rejection(counted, exc.reason, detail=exc.message)
        raise
    rows = [row for row in (neutral_row(e) for e in events if e.account_id == account) if row is not None]
    now = datetime.now(UTC)
    with store.open(target, wait_s=INBOX_WAIT_S) as db:
        added = db.inbox.add_keyed(
            rows, offered=len(events), received_at=now.isoformat(), received_ts=now.timestamp()
        )
    if added and delivered is not None:
        delivered.append(target)
    return added


def neutral_payload(event: Event) -> dict[str, Any]:
    """What the inbox keeps of a neutral event (``crm.interface.Event``): which record changed
    and how, never the values the CRM sent along (the worker reads the record back)."""
    return {
        "account_id": event.account_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        _NEUTRAL_MARK: event.change,
        "occurred_at": event.occurred_at,
        "event_id": event.event_id,
    }


def neutral_row(event: Event) -> inbox.KeyedEvent | None:
    """A neutral event keyed for the inbox: (account, delivery source, event id as a number).

    The CRM's event id (Pipedrive: a UUID) becomes 63 bits of its SHA-256, so a redelivery
    of the same event is recognised; the source is the webhook's id when the CRM names it.
    None for an event without an id or a numeric account (it could not be deduplicated).
    """
    account = valid_id(event.account_id)
    if account is None or not event.event_id:
        return None
    digest = hashlib.sha256(str(event.event_id).encode("utf-8")).digest()
    source = valid_id(event.raw.get("webhook_id")) or 0
    occurred: int | None = None
    if event.occurred_at:
        try:
            occurred = int(
                datetime.fromisoformat(str(event.occurred_at).replace("Z", "+00:00")).timestamp() * 1000
            )
        except ValueError:
            occurred = None
    return inbox.KeyedEvent(
        key=(account, source, int.from_bytes(digest[:8], "big") >> 1),
        subscription_type=f"{event.object_type or 'other'}.{event.change}",
        object_id=event.object_id or None,
        occurred_at=occurred,
        payload=neutral_payload(event),
    )


@dataclass
class Routed:
    """A delivery's events grouped by the connection of their ``portalId``.

    ``groups``: (that connection's Settings, its events); ``unknown``: portal id -> events
    for portals no connection has. Events without a usable portalId go with the first
    group (the inbox skips what it cannot key).
    """

    groups: list[tuple[Settings, list[dict[str, Any]]]] = field(default_factory=list)
    unknown: dict[int, int] = field(default_factory=dict)


def route_events(settings: Settings, events: Sequence[Mapping[str, Any]]) -> Routed:
    """Send each event to the connection of its portal (the registry in the home database).

    With no connection registered at all (a new install, or a cache from before that no
    portal has claimed yet), everything goes to the home database, as it always did; the
    worker there ignores events of a portal other than the one connected.
    """
    home = settings.home
    by_portal: dict[int | None, list[dict[str, Any]]] = {}
    for event in events:
        by_portal.setdefault(valid_id(event.get("portalId")), []).append(dict(event))
    routed = Routed()
    with store.open(home, wait_s=INBOX_WAIT_S) as db:
        db.connections.adopt_home()
        registered = db.connections.list()
        if not registered:
            routed.groups.append((home, [e for group in by_portal.values() for e in group]))
            return routed
        for portal_id, group in by_portal.items():
            if portal_id is None:
                continue
            conn = db.connections.by_account("hubspot", portal_id)
            if conn is None:
                routed.unknown[portal_id] = len(group)
            else:
                routed.groups.append((settings.for_connection(conn), group))
    if None in by_portal and routed.groups:
        routed.groups[0][1].extend(by_portal[None])
    return routed


class Refusals:
    """Refused requests of one cache, counted in memory, summarised in the log once a minute.

    Nothing is written to the database: a forger who can send requests must not be able
    to make the app write to disk or fill the log. The first refusal after a quiet minute
    is logged at once; the ones after it are only counted until a minute has passed, and
    the next refusal (or a status read) logs how many there were and why.
    """

    def __init__(self, *, clock: Any = time.monotonic, interval_s: float = REFUSAL_LOG_INTERVAL_S) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}
        self._last_detail = ""
        self._logged_at: float | None = None

    def add(self, reason: str, detail: str = "") -> None:
        with self._lock:
            self._totals[reason] = self._totals.get(reason, 0) + 1
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            self._last_detail = detail
        self.flush()

    def flush(self) -> None:
        """Log the refusals not logged yet, if the last line is a minute old."""
        with self._lock:
            now = self._clock()
            if not self._unlogged or (
                self._logged_at is not None and now - self._logged_at < self._interval_s
            ):
                return
            counts, detail = self._unlogged, self._last_detail
            self._unlogged, self._logged_at = {}, now
        total = sum(counts.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
        log.warning(
            "%d webhook request%s refused (%s); last: %s",
            total,
            "s" if total != 1 else "",
            reasons,
            detail[:200],
        )

    def counts(self) -> dict[str, int]:
        """Refusals by reason since this process started."""
        with self._lock:
            return dict(sorted(self._totals.items()))


_refusals: dict[str, Refusals] = {}
_refusals_lock = threading.Lock()


def refusals(settings: Settings) -> Refusals:
    """This process's refusal counter for the settings' cache."""
    key = settings.db_key
    with _refusals_lock:
        return _refusals.setdefault(key, Refusals())


def record_rejection(settings: Settings, reason: str, *, detail: str = "") -> None:
    """Count a refused request (in memory) and log it, at most one line a minute."""
    refusals(settings).add(reason, detail)


# --- processing ----------------------------------------------------------------------


@dataclass
class ReadPlan:
    """What one round must read from HubSpot, gathered from a set of events."""

    reread: dict[str, set[str]] = field(default_factory=dict)  # type -> ids to batch-read
    archived: dict[str, set[str]] = field(default_factory=dict)  # type -> ids known gone
    associations: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # pair -> from ids
    merges: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (type, winner) -> losers
    purged: dict[str, set[str]] = field(default_factory=dict)  # type -> ids deleted for privacy

    def add(self, bucket: dict[Any, set[str]], key: Any, *ids: Any) -> None:
        for record_id in ids:
            # HubSpot record ids are numbers; anything else in a signed event is ignored
            # rather than sent on, where one bad id could fail a whole batch read (or a
            # 5,000-digit one crash the worker's int()).
            number = valid_id(record_id)
            if number is not None:
                bucket.setdefault(key, set()).add(str(number))


def plan_events(events: Sequence[Mapping[str, Any]]) -> ReadPlan:
    """Turn events into reads: which records and which associations to fetch again."""
    plan = ReadPlan()
    for event in events:
        object_type = event_object_type(event)
        if object_type is None:
            continue
        kind = str(event.get("subscriptionType") or "").split(".", 1)[-1]
        object_id = event.get("objectId")
        if kind == "merge":
            # Contacts and companies merge into a record with a new id; every other id
            # named (the merged ones, and the primary when it is not the new one) is gone.
            survivor = event.get("newObjectId") or event.get("primaryObjectId") or object_id
            listed = event.get("mergedObjectIds")
            merged = [*listed] if isinstance(listed, list) else []
            merged.append(event.get("primaryObjectId"))
            winner = valid_id(survivor)
            if winner is not None:
                plan.add(
                    plan.merges, (object_type, str(winner)), *(i for i in merged if str(i) != str(winner))
                )
            plan.add(plan.reread, object_type, survivor)
            _add_association_reads(plan, object_type, survivor)
        elif kind == "privacyDeletion":
            # Gone for good, with its personal data: nothing to read back.
            plan.add(plan.purged, object_type, object_id)
        elif kind == "associationChange":
            _plan_association_change(plan, object_type, event)
        else:
            # creation, propertyChange, deletion, restore, privacyDeletion (a thread: also
            # newMessage): re-read; a record HubSpot no longer returns is flagged archived
            # (or followed to the record it merged into).
            plan.add(plan.reread, object_type, object_id)
            if kind in ("creation", "restore"):
                _add_association_reads(plan, object_type, object_id)
    return plan


def _add_association_reads(plan: ReadPlan, object_type: str, object_id: Any) -> None:
    for pair in ASSOCIATION_PAIRS:
        if pair[0] == object_type:
            plan.add(plan.associations, pair, object_id)


def _plan_association_change(plan: ReadPlan, object_type: str, event: Mapping[str, Any]) -> None:
    match = _ASSOCIATION_TYPE_RE.match(str(event.get("associationType") or ""))
    if match is None:
        _add_association_reads(plan, object_type, event.get("fromObjectId") or event.get("objectId"))
        return
    ends = {
        _SINGULAR[match.group(1).lower()]: event.get("fromObjectId"),
        _SINGULAR[match.group(2).lower()]: event.get("toObjectId"),
    }
    for from_type, to_type in ASSOCIATION_PAIRS:
        if from_type in ends and to_type in ends and from_type != to_type:
            plan.add(plan.associations, (from_type, to_type), ends[from_type])


@in_run("webhooks")
def process_pending(
    settings: Settings, *, client: HubSpotClient | None = None, api: CrmApi | None = None
) -> int:
    """Apply pending inbox events to the cache; return how many events were handled.

    Reads the affected records (and associations) from HubSpot in batches, then applies
    them through the sync engine, so a field with a pending local edit keeps the local
    value (and becomes a conflict if HubSpot's value moved away from the edit's base).
    Events for another portal than the connected one are marked handled and ignored, and
    a round whose portal was switched while it read HubSpot writes nothing.

    Neutral events (a CRM's ``read_webhook`` events, stored by ``receive_from``) are applied
    through the CRM interface instead (``_process_neutral``): the connection's API
    (``api``, else ``crms.provider_of(settings).connect(settings)``) reads them back.

    Raises:
        CrmError (Unreachable, NotConnected, HubSpotError...): HubSpot could not be read.
            The events of the round stay pending with the error and one more attempt.
    """
    active: HubSpotClient | None = client
    handled = 0
    try:
        with store.open(settings) as db:
            events = db.inbox.pending_events(max_attempts=MAX_ATTEMPTS, limit=EVENTS_PER_ROUND)
            neutral = [e for e in events if _NEUTRAL_MARK in e.payload]
            if neutral:
                handled += _process_neutral(settings, db, neutral, api)
                events = [e for e in events if _NEUTRAL_MARK not in e.payload]
                if not events:
                    db.inbox.clear_last_error()
                    db.inbox.prune(processed_before=(datetime.now(UTC) - KEEP_PROCESSED).isoformat())
                    return handled
            if not events:
                return 0
            if active is None:
                try:
                    active = oauth.open_client(settings)
                except CrmError as exc:
                    db.inbox.mark_failed([e.key for e in events], _describe(exc))
                    raise
            portal_id = _connected_portal(db)
            while events:
                keys = [e.key for e in events]
                mine = [e.payload for e in events if portal_id is None or e.key[0] == portal_id]
                try:
                    fetched = _fetch(db, active, plan_events(mine))
                except CrmError as exc:
                    db.inbox.mark_failed(keys, _describe(exc))
                    raise
                if _connected_portal(db) != portal_id:
                    # HubSpot was read for the portal connected before a switch: those records
                    # must not land in the new portal's cache. The events stay pending; the
                    # next round sorts them by the new portal.
                    log.info("The connected portal changed during a webhook round; its reads were dropped")
                    break
                _apply(db, fetched, keys)
                handled += len(keys)
                if len(events) < EVENTS_PER_ROUND:
                    break
                events = db.inbox.pending_events(max_attempts=MAX_ATTEMPTS, limit=EVENTS_PER_ROUND)
            db.inbox.clear_last_error()
            db.inbox.prune(processed_before=(datetime.now(UTC) - KEEP_PROCESSED).isoformat())
            return handled
    finally:
        if client is None and active is not None:
            active.close()


def _process_neutral(
    settings: Settings, db: Store, events: Sequence[inbox.InboxEvent], api: CrmApi | None
) -> int:
    """Apply neutral events through the CRM interface: fetch-on-notify, like HubSpot's.

    Every named record of a type the cache keeps (the provider's object types) is read
    back with ``CrmApi.batch_read``: what comes back is upserted through the store's
    merge (pending edits win), what does not (deleted) is flagged archived. So a delete,
    a late ``change`` after it, or a redelivery all end in the CRM's current state.
    Events naming one of the API's interaction feeds (``ListsInteractions``: Pipedrive's
    notes and activities) are read back the same way for the timeline (pdtimeline); events
    of other types are marked handled.
    """
    kept = {info.name for info in crms.provider_of(settings).object_types()}
    wanted: dict[str, set[str]] = {}
    others: dict[str, set[str]] = {}
    for event in events:
        object_type = event.payload.get("object_type")
        number = valid_id(event.payload.get("object_id"))
        if object_type and number is not None:
            (wanted if object_type in kept else others).setdefault(str(object_type), set()).add(str(number))
    keys = [e.key for e in events]
    found: dict[str, list[Any]] = {}
    gone: dict[str, set[str]] = {}
    timeline: list[tuple[str, list[Interaction], set[str], tuple[str, ...]]] = []
    if wanted or others:
        opened = api is None
        try:
            active = crms.provider_of(settings).connect(settings) if api is None else api
        except CrmError as exc:
            db.inbox.mark_failed(keys, _describe(exc))
            raise
        try:
            for object_type, ids in wanted.items():
                records = active.batch_read(
                    object_type, sorted(ids, key=_id_order), properties=pull_properties(db, object_type)
                )
                found[object_type] = [r for r in records if not r.archived]
                gone[object_type] = ids - {r.id for r in found[object_type]}
            feeds = active.interaction_feeds() if isinstance(active, ListsInteractions) else {}
            for feed, ids in others.items():
                if feed in feeds and isinstance(active, ListsInteractions):
                    items = active.read_interactions(feed, sorted(ids, key=_id_order))
                    timeline.append((feed, items, ids - {i.id for i in items}, feeds[feed]))
        except CrmError as exc:
            db.inbox.mark_failed(keys, _describe(exc))
            raise
        finally:
            if opened:
                active.close()
    for object_type, records in found.items():
        writer_for(db, object_type).upsert_records(object_type, records)
    for object_type, ids in gone.items():
        if ids:
            writer_for(db, object_type).mark_archived(object_type, ids)
    for _feed, items, deleted, kinds in timeline:
        db.interactions.upsert_interactions(items, kinds=kinds)
        for kind in kinds if deleted else ():
            db.interactions.mark_archived(kind, deleted)
    db.inbox.mark_processed(keys, at=datetime.now(UTC).isoformat())
    return len(keys)


def _describe(exc: CrmError) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _connected_portal(db: Store) -> int | None:
    """The portal the cache belongs to, as the connection row records it (no HubSpot call)."""
    row = db.auth.read_connection()
    portal_id = row.get("portal_id") if row else None
    return int(portal_id) if portal_id else None


@dataclass
class _Fetched:
    records: dict[str, list[Record]] = field(default_factory=dict)  # type -> records read
    archived: dict[str, set[str]] = field(default_factory=dict)  # type -> ids now gone
    associations: dict[tuple[str, str], tuple[set[str], dict[str, list[tuple[str, int]]]]] = field(
        default_factory=dict
    )
    threads: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)
    transcripts: dict[str, str] = field(default_factory=dict)  # call id -> transcript text
    channels: dict[str, str] = field(default_factory=dict)
    merges: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (type, winner) -> losers
    purged: dict[str, set[str]] = field(default_factory=dict)  # type -> ids deleted for privacy


def _fetch(db: Store, client: HubSpotClient, plan: ReadPlan) -> _Fetched:
    """Read everything the plan names from HubSpot; nothing is written here."""
    fetched = _Fetched(merges={k: set(v) for k, v in plan.merges.items()}, purged=plan.purged)
    for object_type, ids in plan.reread.items():
        ids = ids - plan.purged.get(object_type, set())
        if not ids:
            continue
        wanted = sorted(ids, key=_id_order)
        if object_type == THREADS:
            _fetch_threads(client, wanted, fetched)
            continue
        properties = pull_properties(db, object_type)
        found = client.batch_read(object_type, wanted, properties=properties)
        if object_type == "calls":
            fetched.transcripts = read_transcripts(client, found, on_missing=lambda *_: None)
        # Batch read leaves out what it cannot return: deleted records, and ids merged
        # into another record. A single read follows a merge (it answers with the new id),
        # so the first few missing ids are asked one by one to tell the two apart.
        gone = ids - {r.id for r in found if not r.archived}
        for record_id in sorted(gone, key=_id_order)[:MERGE_PROBES]:
            try:
                record = client.get_object(object_type, record_id, properties=[*properties, MERGED_IDS])
            except NotFound:
                continue
            if record.id != record_id and not record.archived:
                found.append(record)
                # Every id merged into it goes, not only the one asked about.
                listed = str(record.properties.get(MERGED_IDS) or "").split(";")
                losers = {record_id, *(i.strip() for i in listed if valid_id(i.strip()) is not None)}
                fetched.merges.setdefault((object_type, record.id), set()).update(losers - {record.id})
                gone.discard(record_id)
        fetched.records[object_type] = found
        if gone:
            fetched.archived.setdefault(object_type, set()).update(gone)
    for object_type, ids in plan.archived.items():
        fetched.archived.setdefault(object_type, set()).update(ids)
    for (object_type, _winner), losers in fetched.merges.items():
        # A loser's row is deleted, not flagged archived.
        fetched.archived.get(object_type, set()).difference_update(losers)
    for (from_type, to_type), from_ids in plan.associations.items():
        wanted = sorted(from_ids, key=_id_order)
        fetched.associations[(from_type, to_type)] = (
            set(wanted),
            client.read_associations(from_type, to_type, wanted),
        )
    return fetched


def _fetch_threads(client: HubSpotClient, ids: list[str], fetched: _Fetched) -> None:
    """Inbox threads with their messages (one read each: the inbox has no batch read)."""
    for thread_id in ids:
        try:
            thread = client.get_thread(thread_id)
        except NotFound:
            fetched.archived.setdefault(THREADS, set()).add(thread_id)
            continue
        fetched.threads.append((thread, client.list_messages(thread_id)))
    if fetched.threads and not fetched.channels:
        fetched.channels = client.list_channels()


def _id_order(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


def _apply(db: Store, fetched: _Fetched, keys: list[inbox.EventKey]) -> None:
    """Write what was read into the cache, then mark the events processed.

    Records go through the sync engine's ``upsert_records``, which keeps a field with a
    pending local edit and turns it into a conflict when HubSpot's value moved away
    from the edit's base. The steps are separate transactions; a crash in between only
    means the events are applied again, which fetch-on-notify makes harmless.
    """
    for object_type, found in fetched.records.items():
        if object_type == "calls":
            db.interactions.upsert_records(object_type, found, transcripts=fetched.transcripts)
        else:
            writer_for(db, object_type).upsert_records(object_type, found)
    for object_type, ids in fetched.archived.items():
        writer_for(db, object_type).mark_archived(object_type, ids)
    for (object_type, winner), losers in sorted(fetched.merges.items()):
        apply_merge(db, object_type, winner, sorted(losers, key=_id_order))
    for (from_type, to_type), (from_ids, links) in fetched.associations.items():
        writer_for(db, from_type).replace_associations(from_type, to_type, from_ids, links)
    if fetched.threads:
        db.interactions.upsert_threads(fetched.threads, fetched.channels)
    db.inbox.mark_processed(keys, at=datetime.now(UTC).isoformat())
    for object_type, ids in fetched.purged.items():
        apply_privacy_deletion(db, object_type, sorted(ids, key=_id_order))


def apply_merge(db: Store, object_type: str, winner: str, losers: Sequence[str]) -> None:
    """Follow a merge in HubSpot: losers' rows go, their associations and queued edits move.

    A note for the Sync page (``MERGE_NOTES``) says what happened, in one transaction with it.
    """
    gone = [i for i in losers if i != winner]
    if not gone:
        return
    noun = _SINGULAR_OF.get(object_type, object_type)
    ids = ", ".join(gone)
    note = f"{noun} {ids} merged into {winner} in HubSpot"
    with db.atomic():
        removed = db.records.merge_away(object_type, gone, winner)
        moved = db.outbox.repoint_edits(object_type, gone, winner, note=note)
        db.meta.add_note(
            MERGE_NOTES,
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "object_type": object_type,
                "winner": winner,
                "losers": gone,
                "rows_removed": removed,
                "edits_moved": moved,
                "text": note
                + (
                    f"; {moved} queued edit{'s' if moved != 1 else ''} now appl{'y' if moved != 1 else 'ies'} to it"
                    if moved
                    else ""
                ),
            },
        )
    log.info(
        "%s %s merged into %s: %d cached rows removed, %d edits re-pointed", noun, ids, winner, removed, moved
    )


def apply_privacy_deletion(db: Store, object_type: str, ids: Sequence[str]) -> None:
    """A GDPR deletion: the record, its associations, its edits and the values in its audit go.

    The audit log keeps that each edit happened; the events that named the record leave the
    inbox (their payloads can carry its values). Ids are not logged beyond a count.
    """
    if not ids:
        return
    with db.atomic():
        removed = db.records.purge(object_type, ids)
        edits = db.outbox.forget_record(object_type, ids, note=PRIVACY_NOTE)
        db.inbox.forget_objects(_SINGULAR_OF.get(object_type, object_type), ids)
    log.info("privacy deletion: %d cached record(s) removed, %d queued edit(s) dropped", removed, edits)


# --- the background worker -----------------------------------------------------------


class _Worker:
    """One daemon thread per cache file and process that drains the inbox when woken."""

    IDLE_POLL_S = 60.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"webhooks:{Path(settings.db_key).name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            # Leftovers from before a restart are drained on the first pass.
            self._wake.clear()
            try:
                process_pending(self.settings)
                failures = 0
            except CrmError as exc:
                failures += 1
                log.warning("webhook processing failed (attempt %d): %s", failures, _describe(exc))
            except Exception:
                failures += 1
                log.exception("webhook processing crashed")
            if failures:
                # Back off even if new deliveries arrive: they would fail the same way.
                deadline = time.monotonic() + min(5.0 * 2 ** (failures - 1), MAX_BACKOFF_S)
                while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                    self._stop.wait(left)
            else:
                self._wake.wait(self.IDLE_POLL_S)


_workers: dict[str, _Worker] = {}
_workers_lock = threading.Lock()


def ensure_worker(settings: Settings) -> None:
    """Start this process's worker for the settings' cache, once; later calls update its settings."""
    key = settings.db_key
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None:
            worker = _workers[key] = _Worker(settings)
            worker.start()
        else:
            worker.settings = settings


def ensure_workers(settings: Settings) -> None:
    """Start this process's worker of every connection (each drains its own partition's
    inbox, leftovers from before a restart first); with none registered, the home's one."""
    with store.open(settings.home) as db:
        registered = db.connections.list()
    for target in [settings.for_connection(conn) for conn in registered] or [settings.home]:
        ensure_worker(target)


def notify(settings: Settings) -> None:
    """Wake the worker (starting it if needed): new events are in the inbox."""
    ensure_worker(settings)
    with _workers_lock:
        _workers[settings.db_key].wake()


def stop_worker(settings: Settings, timeout: float = 5.0) -> None:
    """Stop the worker for the settings' cache, if this process runs one."""
    with _workers_lock:
        worker = _workers.pop(settings.db_key, None)
    if worker is not None:
        worker.stop(timeout)


# --- status ----------------------------------------------------------------------------


def live_status(settings: Settings) -> dict[str, Any]:
    """How live updates are doing, for the UI.

    Returns a dict with ``enabled`` (bool) and ``reason`` (why not, or where HubSpot
    delivers), ``last_event_at`` (epoch seconds of the last accepted delivery, or None),
    counts ``received``, ``duplicates``, ``processed``, ``pending``, ``failed`` (out of
    attempts), ``rejected`` (requests this process refused, by reason) and ``last_error``.

    Raises StoreUnavailable when the cache cannot be read.
    """
    enabled, reason = configuration(settings)
    registered = subscriptions.stored(settings)
    provider = crms.provider_of(settings)
    if registered is not None:
        # A connection that registered its own webhooks (Pipedrive) needs no app secret.
        enabled, reason = True, f"{provider.words.crm} delivers to {registered.url}"
    elif isinstance(provider, WebhookAccounts):
        # Its webhooks are registered per connection, not set up in an app: HubSpot's
        # settings (``configuration``) say nothing about them.
        enabled, reason = (
            False,
            (
                f"no webhooks are registered at {provider.words.crm} for this {provider.words.account} "
                "(set PIPEDRIVE_WEBHOOK_URL to this app's public https URL of /pipedrive/webhook)"
            ),
        )
    with store.open(settings) as db:
        figures = db.inbox.status(max_attempts=MAX_ATTEMPTS)
    counter = refusals(settings)
    counter.flush()
    return {
        "enabled": enabled,
        "reason": reason,
        **figures,
        "rejected": counter.counts(),
        "refusals_hint": provider.words.webhook_refusals,
    }
