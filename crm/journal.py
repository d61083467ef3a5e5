"""Live updates without a public URL: one process polls HubSpot's webhooks journal.

    JournalPoller (a daemon thread per cache file and process, every ``CRM_LIVE_POLL`` s)
      -> the "journal" lease (one poller across processes; the others stand by)
      -> subscriptions ensured once per process (crm.hubspot.journal)
      -> from the saved offset: ``next`` (or ``earliest`` when the saved position is "start")
      -> each entry's events go into the webhook inbox, and the offset moves, in ONE
         transaction: an entry is never lost nor taken twice, whatever stops the process
      -> webhooks.process_pending(): the same fetch-on-notify path as webhooks, which bumps
         cache_version, so open pages rerun (ui/live.py)

The offset and the status live in ``meta`` under ``journal.*``. The token is the app's
client-credentials token, held in memory only (crm.hubspot.tokens.ClientCredentialsToken).

Gaps. HubSpot keeps three days. When the saved offset has left retention (``next``
answers 404: the app was off for days), the poller says so (log, and a note the Sync page
shows), restarts from the journal's newest entry, and starts an incremental sync, which
reads everything modified since the last sync, so the missed days are covered. The same
happens on the very first start after a sync (the journal holds nothing from before the
subscriptions existed). A gap stays open on the page until that sync has succeeded; a
busy or failed sync is retried on a later poll.

Facts and sources: docs/JOURNAL_AND_LIMITS_API.md §1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from crm import oauth, store, webhooks
from crm.config import Settings
from crm.errors import CrmError
from crm.hubspot.journal import Entry, JournalClient, OffsetExpired, Pointer
from crm.logs import in_run
from crm.store import Store
from crm.store.syncstate import new_owner

log = logging.getLogger(__name__)

LEASE = "journal"
PREFIX = "journal."
OFFSET = PREFIX + "offset"  # the last entry applied; "" = start at the journal's earliest
CURRENT_TO = PREFIX + "current_to"  # epoch s up to which the cache is known current
LAST_POLL = PREFIX + "last_poll_at"
LAST_EVENT = PREFIX + "last_event"  # JSON {"at": epoch s, "what": "contact 12: propertyChange"}
LAST_ERROR = PREFIX + "last_error"
GAP = PREFIX + "gap"  # JSON {"at", "text", "state": closing|closed, "run_id"?, "error"?}
START = ""
# Entries taken per poll; the rest wait for the next poll (a few seconds).
ENTRIES_PER_POLL = 50
# A failed or busy gap sync is tried again after this long.
GAP_RETRY_S = 60.0

_ACTION_KINDS = {
    "CREATE": "creation",
    "UPDATE": "propertyChange",
    "DELETE": "deletion",
    "MERGE": "merge",
    "RESTORE": "restore",
    "ASSOCIATION_ADDED": "associationChange",
    "ASSOCIATION_REMOVED": "associationChange",
    "GDPR_DELETE": "privacyDeletion",
}
_TYPE_NAMES = {"0-1": "contact", "0-2": "company", "0-3": "deal"}


def inbox_event(event: Mapping[str, Any], *, offset: str, index: int, portal_id: int) -> dict[str, Any]:
    """A journal event in the shape the webhook inbox takes (its dedupe key and event name).

    The journal's event file is UNCERTAIN in its details (§1.4): a missing ``eventId`` is
    derived from the entry's offset and the event's place in it (stable, so a re-read entry
    is recognised), a missing ``subscriptionType`` from ``action`` and ``objectTypeId``.
    """
    shaped = dict(event)
    shaped.setdefault("portalId", portal_id)
    shaped.setdefault("subscriptionId", 0)
    if shaped.get("eventId") is None:
        digest = hashlib.sha256(f"{offset}:{index}".encode()).digest()
        shaped["eventId"] = int.from_bytes(digest[:7], "big")
    if not shaped.get("subscriptionType"):
        kind = _ACTION_KINDS.get(str(shaped.get("action") or ""), "")
        name = _TYPE_NAMES.get(str(shaped.get("objectTypeId") or ""), "")
        if kind and name:
            shaped["subscriptionType"] = f"{name}.{kind}"
    if isinstance(shaped.get("occurredAt"), str):
        seconds = _epoch(shaped["occurredAt"])
        if seconds is None:
            shaped.pop("occurredAt")
        else:
            shaped["occurredAt"] = int(seconds * 1000)
    return shaped


def _describe_event(event: Mapping[str, Any]) -> str:
    name = str(event.get("subscriptionType") or event.get("action") or "change")
    noun, _, kind = name.partition(".")
    return f"{noun} {event.get('objectId')}: {kind or name}"


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class JournalPoller:
    """Polls the journal for one cache; ``tick()`` is one poll, ``start()`` runs them on a thread.

    Args:
        settings: the app's settings (``live_poll_s`` is the pause between polls).
        journal_factory: builds the journal client (tests pass one with a short timeout).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        journal_factory: Callable[[Settings], JournalClient] | None = None,
    ) -> None:
        self.settings = settings
        self.owner = new_owner()
        self._journal_factory = journal_factory or (lambda s: JournalClient(s))
        self._journal: JournalClient | None = None
        self._subscribed_portal: int | None = None
        self._runner: Any = None
        self._gap_tried_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._retry_at = 0.0
        self.holds_lease = False

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"journal:{self.settings.db_label}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and give the lease up, so another process can take over at once.

        A gap's sync started by this poller is given ``timeout`` to finish too.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._runner is not None:
            self._runner.wait(timeout)
        self.release()

    def release(self) -> None:
        if self.holds_lease:
            try:
                with store.open(self.settings) as db:
                    db.syncstate.release_lease(LEASE, self.owner)
            except CrmError as exc:
                log.info("could not release the journal lease: %s", exc)
            self.holds_lease = False
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("journal poll crashed")
            self._stop.wait(self.settings.live_poll_s)

    # -- one poll ----------------------------------------------------------------------------

    def _lease_ttl(self) -> float:
        return max(30.0, 6 * self.settings.live_poll_s)

    @in_run("journal")
    def tick(self) -> dict[str, Any]:
        """Take (or keep) the lease, then poll once; returns what happened.

        ``{"polled": False, "reason": "standby"}`` when another process holds the lease;
        ``"backoff"`` while waiting after failed polls (5 s, 10 s, 20 s... up to 5 minutes, so a
        refused secret or HubSpot being down is not asked again every few seconds).
        """
        if time.monotonic() < self._retry_at:
            return {"polled": False, "reason": "backoff"}
        with store.open(self.settings) as db:
            if self.holds_lease:
                self.holds_lease = db.syncstate.renew_lease(LEASE, self.owner, ttl_s=self._lease_ttl())
            if not self.holds_lease:
                self.holds_lease = db.syncstate.acquire_lease(LEASE, self.owner, ttl_s=self._lease_ttl())
            if not self.holds_lease:
                return {"polled": False, "reason": "standby"}
        try:
            result = self._poll()
        except CrmError as exc:
            self._failures += 1
            self._retry_at = time.monotonic() + min(
                self.settings.live_poll_s * 2 ** (self._failures - 1), webhooks.MAX_BACKOFF_S
            )
            message = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("journal poll failed (attempt %d): %s", self._failures, message)
            with store.open(self.settings) as db:
                db.meta.put(LAST_ERROR, message)
            return {"polled": False, "reason": "error", "error": message}
        self._failures = 0
        return {"polled": True, **result}

    def _client(self) -> JournalClient:
        if self._journal is None:
            self._journal = self._journal_factory(self.settings)
        return self._journal

    def _poll(self) -> dict[str, Any]:
        portal_id = oauth.connection_info(self.settings).portal_id
        if portal_id is None:
            return {"entries": 0, "reason": "not connected"}
        journal = self._client()
        if self._subscribed_portal != portal_id:
            sent = journal.ensure_subscriptions(portal_id)
            if sent:
                log.info("journal subscriptions created or widened: %d", sent)
            self._subscribed_portal = portal_id
        with store.open(self.settings) as db:
            offset = db.meta.get(OFFSET)
        if offset is None:
            offset = self._first_start(journal, portal_id)
        entries, caught_up, gapped = 0, False, False
        while entries < ENTRIES_PER_POLL and not self._stop.is_set():
            try:
                pointer = self._after(journal, offset, portal_id)
            except OffsetExpired:
                if gapped:  # the newest entry's offset refused at once: try again later
                    raise
                offset, gapped = self._open_gap(journal, offset, portal_id), True
                continue
            if pointer is None:
                caught_up = True
                break
            entry = self._download(journal, pointer, offset, portal_id)
            if not self._take(entry, portal_id):
                log.info("the journal lease passed to another process; this one stands by")
                self.holds_lease = False
                return {"entries": entries, "reason": "lease lost"}
            offset = entry.offset
            entries += 1
        now = time.time()
        with store.open(self.settings) as db, db.atomic():
            db.meta.put(LAST_POLL, repr(now))
            if caught_up:
                db.meta.put(CURRENT_TO, repr(now))
            db.meta.put(LAST_ERROR, None)
        # The same path as webhooks: fetch-on-notify, pending edits win, cache_version moves.
        applied = webhooks.process_pending(self.settings)
        self._close_gap()
        return {"entries": entries, "applied": applied, "caught_up": caught_up}

    @staticmethod
    def _after(journal: JournalClient, offset: str, portal_id: int) -> Pointer | None:
        if offset == START:
            return journal.earliest(portal_id=portal_id)
        return journal.next_after(offset, portal_id=portal_id)

    def _download(self, journal: JournalClient, pointer: Pointer, offset: str, portal_id: int) -> Entry:
        try:
            return journal.download(pointer)
        except CrmError:
            # The pre-signed URL may have expired between the two calls: ask again, once.
            fresh = self._after(journal, offset, portal_id)
            if fresh is None:
                raise
            return journal.download(fresh)

    def _take(self, entry: Entry, portal_id: int) -> bool:
        """Put an entry's events in the inbox and move the offset, in one transaction.

        The lease is renewed in the same transaction; False (nothing written) if it was lost.
        """
        shaped = [
            inbox_event(e, offset=entry.offset, index=i, portal_id=portal_id)
            for i, e in enumerate(entry.events)
        ]
        # Entries carry each event's portalId: another portal's events go to its own
        # connection (or are refused and counted), as webhook deliveries are.
        events = [e for e in shaped if webhooks.valid_id(e.get("portalId")) == portal_id]
        others = [e for e in shaped if webhooks.valid_id(e.get("portalId")) != portal_id]
        now = datetime.now(UTC)
        published = _epoch(entry.published_at)
        with store.open(self.settings) as db, db.atomic():
            if not db.syncstate.renew_lease(LEASE, self.owner, ttl_s=self._lease_ttl()):
                return False
            db.inbox.add_events(events, received_at=now.isoformat(), received_ts=now.timestamp())
            db.meta.put(OFFSET, entry.offset)
            if published is not None:
                db.meta.put(CURRENT_TO, repr(published))
            if events:
                last = events[-1]
                occurred = last.get("occurredAt")
                at = occurred / 1000 if isinstance(occurred, int) else (published or now.timestamp())
                db.meta.put(LAST_EVENT, json.dumps({"at": at, "what": _describe_event(last)}))
        if others:
            self._route_elsewhere(others, now)
        return True

    def _route_elsewhere(self, events: list[dict[str, Any]], now: datetime) -> None:
        """Put events of other portals in their connections' inboxes; count the unknown ones."""
        routed = webhooks.route_events(self.settings, events)
        for portal, count in sorted(routed.unknown.items()):
            webhooks.record_rejection(
                self.settings, "unknown_portal", detail=f"journal: {count} event(s) for portal {portal}"
            )
        for target, group in routed.groups:
            if target.db_key == self.settings.db_key:
                continue  # no connection of their own: this inbox ignores them
            with store.open(target) as db:
                added = db.inbox.add_events(group, received_at=now.isoformat(), received_ts=now.timestamp())
            if added:
                webhooks.notify(target)

    # -- gaps ------------------------------------------------------------------------------

    def _first_start(self, journal: JournalClient, portal_id: int) -> str:
        """No saved position: begin after the journal's newest entry, and close the gap since
        the last sync (nothing before the subscriptions was journalled)."""
        pointer = journal.latest(portal_id=portal_id)
        offset = pointer.offset if pointer is not None else START
        with store.open(self.settings) as db:
            # Any sync, even one still running, may have read a record before it last changed.
            synced = db.syncstate.latest_run() is not None
            with db.atomic():
                db.meta.put(OFFSET, offset)
                if synced:
                    self._note_gap(db, "Live updates from the journal started; an incremental sync "
                                   "catches up on changes since the last sync.")  # fmt: skip
        log.info("journal polling starts %s", "after the newest entry" if pointer else "at the beginning")
        return offset

    def _open_gap(self, journal: JournalClient, lost: str, portal_id: int) -> str:
        """The saved offset left retention: say so, restart from the newest entry, sync the gap."""
        pointer = journal.latest(portal_id=portal_id)
        offset = pointer.offset if pointer is not None else START
        text = (
            "The journal no longer holds the position live updates had reached (the app was off "
            "longer than HubSpot keeps the journal, about three days). An incremental sync closes the gap."
        )
        log.warning(
            "journal offset %s is out of retention; restarting from the newest entry and syncing", lost
        )
        with store.open(self.settings) as db, db.atomic():
            db.meta.put(OFFSET, offset)
            self._note_gap(db, text)
        return offset

    def _note_gap(self, db: Store, text: str) -> None:
        gap = {"at": time.time(), "text": text, "state": "closing"}
        db.meta.put(GAP, json.dumps(gap))
        self._gap_tried_at = 0.0

    def _close_gap(self) -> None:
        """Start the gap's sync, or record its outcome once it ended."""
        with store.open(self.settings) as db:
            gap = _read_json(db.meta.get(GAP))
        if not gap or gap.get("state") != "closing":
            return
        runner = self._runner
        if runner is not None and runner.running:
            return
        if runner is not None and (runner.last_result or runner.last_error):
            outcome = runner.last_result
            if outcome is not None:
                gap.update(state="closed", run_id=outcome.get("id"), closed_at=time.time())
                log.info("journal gap closed by sync %s", outcome.get("id"))
            else:
                gap["error"] = f"{type(runner.last_error).__name__}: {runner.last_error}"[:300]
            self._runner = None
            with store.open(self.settings) as db:
                db.meta.put(GAP, json.dumps(gap))
            if outcome is not None:
                return
        if time.time() - self._gap_tried_at < GAP_RETRY_S:
            return
        self._gap_tried_at = time.time()
        from crm.sync import SyncRunner

        # A sync of its own in the background: polling goes on meanwhile, and both write
        # through the same upsert, where the newer copy of a record wins.
        self._runner = SyncRunner(self.settings)
        if not self._runner.start("incremental", trigger="journal"):
            self._runner = None
            log.info("a sync is already running; the journal gap's sync waits for it")


def _read_json(value: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(value or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


# -- one poller per cache and process ---------------------------------------------------

_pollers: dict[str, JournalPoller] = {}
_pollers_lock = threading.Lock()


def ensure_poller(settings: Settings) -> JournalPoller:
    """Start this process's poller for the settings' cache, once."""
    key = settings.db_key
    with _pollers_lock:
        poller = _pollers.get(key)
        if poller is None:
            poller = _pollers[key] = JournalPoller(settings)
            poller.start()
        return poller


def ensure_pollers(settings: Settings) -> list[JournalPoller]:
    """Start this process's poller of every connection (each polls its own portal's
    journal into its own partition); with none registered, the home cache's one."""
    with store.open(settings.home) as db:
        registered = db.connections.list()
    if not registered:
        return [ensure_poller(settings.home)]
    return [ensure_poller(settings.for_connection(conn)) for conn in registered]


def stop_poller(settings: Settings, timeout: float = 5.0) -> None:
    """Stop this process's poller for the settings' cache, if it runs one."""
    with _pollers_lock:
        poller = _pollers.pop(settings.db_key, None)
    if poller is not None:
        poller.stop(timeout)


# -- status --------------------------------------------------------------------------------


def journal_status(settings: Settings, *, now: float | None = None) -> dict[str, Any]:
    """The journal's side of the live status: who polls, the lag, the last event, any gap.

    ``lag_s`` is how long ago the cache was last known to be current (the last poll that
    found nothing newer, or the newest entry applied); None before the first poll.
    """
    now = time.time() if now is None else now
    with store.open(settings) as db:
        meta = db.meta.get_prefixed(PREFIX)
        holder = db.syncstate.lease_holder(LEASE)
    current_to = meta.get(CURRENT_TO)
    last_poll = meta.get(LAST_POLL)
    return {
        "polling": holder is not None,
        "offset": meta.get(OFFSET),
        "lag_s": max(0.0, now - float(current_to)) if current_to else None,
        "last_poll_at": float(last_poll) if last_poll else None,
        "last_event": _read_json(meta.get(LAST_EVENT)) or None,
        "gap": _read_json(meta.get(GAP)) or None,
        "last_error": meta.get(LAST_ERROR),
    }


def live_overview(settings: Settings) -> dict[str, Any]:
    """Everything the sidebar and the Sync page show about live updates, in either mode.

    ``mode`` and ``why`` (``Settings.live_mode``), the webhook figures of
    ``webhooks.live_status`` (the inbox is shared: journal events go through it too), and
    in journal mode ``journal`` (``journal_status``). Raises StoreUnavailable.
    """
    mode, why = settings.live_mode()
    overview: dict[str, Any] = {"mode": mode, "why": why, **webhooks.live_status(settings)}
    overview["journal"] = journal_status(settings) if mode == "journal" else None
    with store.open(settings) as db:
        overview["merge_notes"] = db.meta.notes(webhooks.MERGE_NOTES)
    return overview
