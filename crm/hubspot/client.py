"""HubSpotClient: every CRM call the product makes, over one shared httpx2 client.

One request goes through the same steps whatever it is:

    circuit breaker -> rate budget (burst, or search) -> bearer token -> send (timeout)
      -> 2xx/207: learn rate-limit headers, return
      -> 401: one refresh (single-flight, in the TokenSource), one retry
      -> 429: honour Retry-After (else backoff with full jitter), pause the shared budget, retry
              (429 DAILY: the portal's day is spent; raise DailyLimitReached, never retry)
      -> 5xx, 423, 477, timeout, dropped connection: backoff with full jitter, retry if safe
      -> other 4xx: raise the crm.errors type (ValidationFailed names the fields)

"If safe" means: reads, search, batch update, upsert and archive are retried; batch create
is only retried when HubSpot cannot have acted on it (a 429, or a connection that never
opened), because a create that timed out may have happened and would be duplicated.

Long ``properties`` lists (hundreds of custom properties) would overflow the URL of list
and get calls (HubSpot answers 414). A list page then carries as many properties as fit
in an 8,000-character URL and fetches the rest for the same ids with one ``batch/read``
(POST body): two requests per page of 100 whatever the number of properties, where
chunking the query string would cost one request per chunk from the same burst budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Self
from urllib.parse import quote

import httpx2

from crm.config import Settings
from crm.errors import (
    DailyBudgetSpent,
    DailyLimitReached,
    HubSpotError,
    NeedsReconnect,
    NotFound,
    RateLimited,
    Unreachable,
)
from crm.hubspot import walks
from crm.hubspot.errors import error_from_batch_item, error_from_response, retry_after_seconds
from crm.hubspot.limits import PortalLimits, full_jitter, limits_for
from crm.hubspot.models import (
    BatchResult,
    ClientStats,
    Page,
    Record,
    SearchPage,
    TokenSource,
    account_from_wire,
    inline_associations_from_wire,
    merge_records,
    message_from_wire,
    ms_to_iso,
    next_after,
    owner_from_wire,
    pipeline_from_wire,
    property_from_wire,
    property_to_wire,
    record_from_wire,
    thread_from_wire,
    transcript_from_wire,
)

log = logging.getLogger("crm.hubspot")

# HubSpot paths, in one table so a version switch (e.g. /crm/objects/2026-03) is one change.
PATHS = {
    "list": "/crm/v3/objects/{object_type}",
    "object": "/crm/v3/objects/{object_type}/{record_id}",
    "batch": "/crm/v3/objects/{object_type}/batch/{action}",
    "search": "/crm/v3/objects/{object_type}/search",
    "assoc_read": "/crm/v4/associations/{from_type}/{to_type}/batch/read",
    "properties": "/crm/v3/properties/{object_type}",
    "pipelines": "/crm/v3/pipelines/{object_type}",
    "owners": "/crm/v3/owners",
    "account": "/account-info/v3/details",
    "threads": "/conversations/v3/conversations/threads",
    "thread": "/conversations/v3/conversations/threads/{thread_id}",
    "thread_messages": "/conversations/v3/conversations/threads/{thread_id}/messages",
    "channels": "/conversations/v3/conversations/channels",
    "transcript": "/crm/extensions/calling/2026-03/transcripts/{transcript_id}",
    "journal": "/webhooks-journal/journal-local/2026-03/{position}",
    "journal_subscriptions": "/webhooks-journal/subscriptions/2026-03",
}

MAX_URL_LENGTH = 8_000
LIST_LIMIT = 100
BATCH_LIMIT = 100
SEARCH_LIMIT = 200
ASSOC_BATCH_LIMIT = 1_000
OWNERS_LIMIT = 100
SEARCH_RESULT_CAP = 10_000
RETRY_AFTER_CAP_S = 60.0
BACKOFF_CAP_S = 30.0
LOCKED_WAIT_S = 2.0  # HubSpot's record locks (423) last 2 s
RETRYABLE_STATUS = frozenset({423, 477, 500, 502, 503, 504, 521, 522, 523, 524})

Retry = Literal["safe", "create"]
_NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"
DAILY_POLICY = "DAILY"


class HubSpotClient:
    """Typed access to HubSpot's CRM API; thread-safe, share one per sync run.

    Args:
        settings: where HubSpot is (``base_url``) and the default timeout.
        tokens: the bearer tokens; its ``portal_key`` picks the shared rate limiter.
        base_url: overrides ``settings.base_url``.
        transport: an httpx2 transport (tests).
        timeout: seconds per request (connect, read, write, pool); default
            ``settings.http_timeout``.
        max_retries: retries per call after the first attempt.
        backoff_base: first backoff step in seconds for 5xx and timeouts.
        limits: the shared budgets and breaker; default the process-wide ones of the portal.
    """

    def __init__(
        self,
        settings: Settings,
        tokens: TokenSource,
        *,
        base_url: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        timeout: float | None = None,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        limits: PortalLimits | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.base_url = (base_url or settings.base_url).rstrip("/")
        self.timeout = float(timeout or settings.http_timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.limits = limits or limits_for(tokens.portal_key)
        self.limits.daily.configure(share=settings.daily_budget, configured_limit=settings.daily_limit)
        # Set (by a sync) to hold every request within the daily budget: the one that would
        # exceed it raises DailyBudgetSpent instead of going out. Off, requests only count.
        self.within_daily_budget = False
        self.search_cap = SEARCH_RESULT_CAP
        self.search_page_size = SEARCH_LIMIT
        self.stats = ClientStats()
        self._http = httpx2.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx2.Timeout(self.timeout),
            limits=httpx2.Limits(max_connections=32, max_keepalive_connections=16),
            headers={"Accept": "application/json", "User-Agent": "crm-dashboard/1"},
            follow_redirects=False,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- objects -----------------------------------------------------------------------

    def list_page(
        self,
        object_type: str,
        *,
        properties: Sequence[str],
        after: str | None = None,
        limit: int = LIST_LIMIT,
        archived: bool = False,
        associations: Sequence[str] = (),
    ) -> Page:
        """One page of records ordered by id; ``next_after`` is None on the last page.

        ``associations`` (to-types) asks HubSpot to carry each record's associations of those
        types inline (``Page.associations``), which costs no request of its own; records whose
        inline lists are incomplete are in ``Page.unread`` (read them with ``read_associations``).
        """
        path = _path("list", object_type=object_type)
        params: dict[str, str] = {"limit": str(max(1, min(limit, LIST_LIMIT))), "archived": _bool(archived)}
        if after:
            params["after"] = after
        if associations:
            params["associations"] = ",".join(associations)
        in_url, rest = self._fit_properties(path, params, properties)
        if in_url:
            params["properties"] = ",".join(in_url)
        body = self._json("GET", "list", path, params=params, kind="list")
        items = body.get("results") or []
        records = [record_from_wire(item) for item in items]
        inline, unread = (
            inline_associations_from_wire(object_type, items, associations) if associations else ({}, set())
        )
        if rest and records:
            extra = {
                r.id: r
                for r in self._batch_read_chunk(object_type, [r.id for r in records], rest, None, archived)
            }
            records = [merge_records(r, extra[r.id]) if r.id in extra else r for r in records]
        return Page(records, next_after(body), inline, unread)

    def iter_pages(
        self,
        object_type: str,
        *,
        properties: Sequence[str],
        archived: bool = False,
        after: str | None = None,
    ) -> Iterator[Page]:
        """Every page from ``after`` (or the start) to the end."""
        while True:
            page = self.list_page(object_type, properties=properties, after=after, archived=archived)
            yield page
            if page.next_after is None or page.next_after == after:
                return
            after = page.next_after

    def get_object(
        self,
        object_type: str,
        record_id: str,
        *,
        properties: Sequence[str],
        id_property: str | None = None,
    ) -> Record:
        """One record by id (or by a unique property).

        Raises:
            NotFound: no such record (or it is archived).
        """
        path = _path("object", object_type=object_type, record_id=record_id)
        params: dict[str, str] = {}
        if id_property:
            params["idProperty"] = id_property
        in_url, rest = self._fit_properties(path, params, properties)
        if rest:
            found = self._batch_read_chunk(object_type, [record_id], list(properties), id_property, False)
            if not found:
                raise NotFound(
                    f"{object_type} {record_id} was not found", status_code=404, category="OBJECT_NOT_FOUND"
                )
            return found[0]
        if in_url:
            params["properties"] = ",".join(in_url)
        return record_from_wire(self._json("GET", "object", path, params=params, kind="other"))

    def batch_read(
        self,
        object_type: str,
        ids: Iterable[str],
        *,
        properties: Sequence[str],
        id_property: str | None = None,
        archived: bool = False,
    ) -> list[Record]:
        """The records with these ids (100 per request); unknown ids are left out."""
        records: list[Record] = []
        for chunk in _chunks(list(dict.fromkeys(str(i) for i in ids)), BATCH_LIMIT):
            records.extend(
                self._batch_read_chunk(object_type, chunk, list(properties), id_property, archived)
            )
        return records

    def batch_update(self, object_type: str, inputs: list[dict[str, Any]]) -> BatchResult:
        """Update records: inputs ``{"id", "properties"}`` (optionally ``"id_property"``).

        Sent 100 at a time and retried on transient failures (an update is idempotent).
        Each input carries its record id as ``objectWriteTraceId``, so HubSpot can refuse
        one input alone (207): its error's ``body["context"]["objectWriteTraceId"]`` is
        ``[record id]``, and unknown ids come back as one NotFound with ``context["ids"]``.

        Raises:
            ValidationFailed: HubSpot refused a chunk as a whole (400); chunks before it
                were applied. Callers that need per-input results send at most 100.
        """
        wire = [_update_input(item) for item in inputs]
        traces = [entry["id"] for entry in wire]
        if len(set(traces)) == len(traces):
            for entry in wire:
                entry["objectWriteTraceId"] = entry["id"]
        return self._batch_write(object_type, "update", wire, retry="safe")

    def batch_upsert(
        self, object_type: str, inputs: list[dict[str, Any]], *, id_property: str
    ) -> BatchResult:
        """Create or update by a unique property: inputs ``{"id", "properties"}`` where
        ``id`` is the value of ``id_property`` (e.g. the email). Safe to retry."""
        wire = [
            {"id": str(item["id"]), "idProperty": id_property, "properties": _props(item.get("properties"))}
            for item in inputs
        ]
        return self._batch_write(object_type, "upsert", wire, retry="safe")

    def batch_create(self, object_type: str, inputs: list[dict[str, Any]]) -> BatchResult:
        """Create records: inputs ``{"properties", "associations"?, "object_write_trace_id"?}``.

        ``associations`` is a list of ``(to id, association type id)`` (HUBSPOT_DEFINED), or
        of HubSpot's own association dicts. Every input gets a trace id so one bad input
        fails alone (207) instead of the whole batch. Never retried after HubSpot may have
        acted on it: a timeout or 5xx raises, and the caller reconciles (e.g. GET by a
        unique property).
        """
        wire = []
        for index, item in enumerate(inputs):
            entry: dict[str, Any] = {"properties": _props(item.get("properties"))}
            if item.get("associations"):
                entry["associations"] = [_association_input(a) for a in item["associations"]]
            trace = item.get("object_write_trace_id") or item.get("objectWriteTraceId") or f"input-{index}"
            entry["objectWriteTraceId"] = str(trace)
            wire.append(entry)
        return self._batch_write(object_type, "create", wire, retry="create")

    def batch_archive(self, object_type: str, ids: Iterable[str]) -> None:
        """Archive (delete) records, 100 per request; archiving twice is harmless."""
        path_args = {"object_type": object_type, "action": "archive"}
        for chunk in _chunks([str(i) for i in ids], BATCH_LIMIT):
            self._send(
                "POST",
                "batch",
                _path("batch", **path_args),
                json={"inputs": [{"id": i} for i in chunk]},
                kind="batch",
            )

    # -- search --------------------------------------------------------------------------

    def search(
        self,
        object_type: str,
        *,
        filter_groups: Sequence[dict[str, Any]] = (),
        sorts: Sequence[Any] = (),
        properties: Sequence[str] = (),
        limit: int = SEARCH_LIMIT,
        after: str | None = None,
        query: str | None = None,
    ) -> SearchPage:
        """One page of search results (search budget: 5 per second per portal).

        Filters take HubSpot's keys or snake_case (``property_name``, ``high_value``);
        a sort is ``"name"``, ``"-name"`` (descending) or a dict.
        """
        body: dict[str, Any] = {
            "filterGroups": [_filter_group(g) for g in filter_groups],
            "sorts": [_sort(s) for s in sorts],
            "properties": list(dict.fromkeys(properties)),
            "limit": max(1, min(limit, SEARCH_LIMIT)),
        }
        if after:
            body["after"] = str(after)
        if query:
            body["query"] = query
        data = self._json(
            "POST", "search", _path("search", object_type=object_type), json=body, kind="search"
        )
        records = [record_from_wire(item) for item in data.get("results") or []]
        return SearchPage(records, int(data.get("total") or 0), next_after(data))

    def iter_modified_since(
        self,
        object_type: str,
        since_ms: int,
        *,
        properties: Sequence[str],
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[list[Record]]:
        """Records modified at or after ``since_ms``, in batches (one per search page),
        ascending by last-modified, past the 10,000-result cap (``crm.hubspot.walks``).

        Batches may be empty; ``on_total`` gets the number of records the window held.
        """
        return walks.modified_since(
            self.search,
            object_type,
            since_ms,
            properties,
            limit=max(2, min(self.search_page_size, SEARCH_LIMIT, self.search_cap)),
            cap=self.search_cap,
            on_total=on_total,
        )

    def find_by_timestamp(
        self, object_type: str, timestamp_ms: int, *, properties: Sequence[str]
    ) -> list[Record]:
        """Engagements whose ``hs_timestamp`` is exactly ``timestamp_ms`` (at most 200).

        How a retried note or task create checks whether the first attempt reached HubSpot:
        creates have no idempotency key (docs/INTERACTIONS_API.md §1), so the push gives
        each one its own millisecond and compares the text of what it finds.
        """
        page = self.search(
            object_type,
            filter_groups=[
                {"filters": [{"propertyName": "hs_timestamp", "operator": "EQ", "value": str(timestamp_ms)}]}
            ],
            properties=properties,
            limit=SEARCH_LIMIT,
        )
        return page.records

    def search_id_range(
        self,
        object_type: str,
        *,
        lower: int | None,
        end: int | None,
        properties: Sequence[str],
        limit: int = SEARCH_LIMIT,
    ) -> SearchPage:
        """One page of records with ``lower <= id < end``, ascending by id (re-anchor on the last id)."""
        return walks.id_range_page(
            self.search, object_type, lower=lower, end=end, properties=properties, limit=limit
        )

    def recently_modified(
        self, object_type: str, *, properties: Sequence[str] = (), limit: int = SEARCH_LIMIT
    ) -> SearchPage:
        """One search page: the most recently modified records, newest first; ``total`` is the type's count."""
        return walks.recently_modified(self.search, object_type, properties=properties, limit=limit)

    def highest_id(self, object_type: str) -> tuple[int | None, int]:
        """The largest numeric record id of a type (None if none) and how many records it has."""
        return walks.highest_id(self.search, object_type)

    # -- associations ------------------------------------------------------------------

    def read_associations(
        self, from_type: str, to_type: str, ids: Iterable[str]
    ) -> dict[str, list[tuple[str, int]]]:
        """``{from id: [(to id, association type id), ...]}`` for every id asked about.

        Uses the v4 batch read (1,000 inputs per request) and follows each input's own
        paging. "No associations" (a 207 with NO_ASSOCIATIONS_FOUND) is an empty list.
        """
        found: dict[str, dict[tuple[str, int], None]] = {str(i): {} for i in ids}
        pending: list[dict[str, str]] = [{"id": i} for i in found]
        path = _path("assoc_read", from_type=from_type, to_type=to_type)
        while pending:
            follow: list[dict[str, str]] = []
            for chunk in _chunks(pending, ASSOC_BATCH_LIMIT):
                body = self._json("POST", "assoc_read", path, json={"inputs": chunk}, kind="assoc")
                for result in body.get("results") or []:
                    from_id = str((result.get("from") or {}).get("id"))
                    pairs = found.setdefault(from_id, {})
                    for target in result.get("to") or []:
                        to_id = str(target.get("toObjectId"))
                        for kind in target.get("associationTypes") or []:
                            if kind.get("typeId") is not None:
                                pairs[(to_id, int(kind["typeId"]))] = None
                    cursor = next_after(result)
                    if cursor:
                        follow.append({"id": from_id, "after": cursor})
                for item in body.get("errors") or []:
                    error = error_from_batch_item(item)
                    sub = str((item or {}).get("subCategory") or "")
                    if sub == _NO_ASSOCIATIONS or isinstance(error, NotFound):
                        continue
                    raise error
            pending = follow
        return {from_id: list(pairs) for from_id, pairs in found.items()}

    # -- definitions -------------------------------------------------------------------

    def list_properties(self, object_type: str) -> list[dict[str, Any]]:
        """Every property definition of the object type, in snake_case."""
        body = self._json("GET", "properties", _path("properties", object_type=object_type), kind="other")
        return [property_from_wire(item) for item in body.get("results") or []]

    def create_property(self, object_type: str, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a property (snake_case or HubSpot keys).

        Raises:
            AlreadyExists: a property with that name exists (409).
        """
        body = self._json(
            "POST",
            "properties",
            _path("properties", object_type=object_type),
            json=property_to_wire(definition),
            kind="other",
        )
        return property_from_wire(body)

    def list_pipelines(self, object_type: str) -> list[dict[str, Any]]:
        """Pipelines with their stages, ordered by display order."""
        body = self._json("GET", "pipelines", _path("pipelines", object_type=object_type), kind="other")
        pipelines = [pipeline_from_wire(item) for item in body.get("results") or []]
        return sorted(pipelines, key=lambda p: (p["display_order"] or 0, p["label"] or ""))

    def iter_owners(self, *, include_archived: bool = False) -> Iterator[dict[str, Any]]:
        """Every active owner (then the archived ones when asked), page by page."""
        for archived in (False, True) if include_archived else (False,):
            after: str | None = None
            while True:
                params = {"limit": str(OWNERS_LIMIT), "archived": _bool(archived)}
                if after:
                    params["after"] = after
                body = self._json("GET", "owners", PATHS["owners"], params=params, kind="other")
                for item in body.get("results") or []:
                    yield owner_from_wire(item)
                cursor = next_after(body)
                if cursor is None or cursor == after:
                    break
                after = cursor

    def account_info(self) -> dict[str, Any]:
        """portal_id, ui_domain, time_zone, currency (and a few more) of the portal."""
        return account_from_wire(self._json("GET", "account", PATHS["account"], kind="other"))

    # -- conversations inbox --------------------------------------------------------------

    def iter_threads(
        self, *, archived: bool = False, changed_since_ms: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of inbox threads (``thread_from_wire``): all by id, or those with a message after a moment.

        ``changed_since_ms`` sorts by ``latestMessageTimestamp`` after that moment (HubSpot
        requires the bound with that sort), so an incremental read costs what changed.
        Pages of at most 100 (the endpoint's maximum is UNCERTAIN, §6).
        """
        params: dict[str, str] = {"limit": "100", "archived": _bool(archived)}
        if changed_since_ms is None:
            params["sort"] = "id"
        else:
            params["sort"] = "latestMessageTimestamp"
            params["latestMessageTimestampAfter"] = ms_to_iso(changed_since_ms)
        after: str | None = None
        while True:
            query = dict(params, **({"after": after} if after else {}))
            body = self._json("GET", "threads", PATHS["threads"], params=query, kind="list")
            yield [thread_from_wire(item) for item in body.get("results") or []]
            following = next_after(body)
            if following is None or following == after:
                return
            after = following

    def get_transcript(self, transcript_id: str) -> list[dict[str, Any]]:
        """A call transcript's utterances (``transcript_from_wire``).

        Needs OAuth and ``crm.extensions_calling_transcripts.read`` (MissingScopes otherwise);
        NotFound when the call has none (any more).
        """
        path = _path("transcript", transcript_id=transcript_id)
        return transcript_from_wire(self._json("GET", "transcript", path, kind="other"))

    def get_thread(self, thread_id: str) -> dict[str, Any]:
        """One inbox thread (``thread_from_wire``), archived ones too; NotFound when it is gone."""
        path = _path("thread", thread_id=thread_id)
        return thread_from_wire(self._json("GET", "thread", path, kind="other"))

    def list_messages(self, thread_id: str) -> list[dict[str, Any]]:
        """Every message of a thread, oldest first (``message_from_wire``)."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        path = _path("thread_messages", thread_id=thread_id)
        while True:
            query = {"limit": "100", **({"after": after} if after else {})}
            body = self._json("GET", "thread_messages", path, params=query, kind="list")
            found.extend(message_from_wire(item) for item in body.get("results") or [])
            following = next_after(body)
            if following is None or following == after:
                return found
            after = following

    def list_channels(self) -> dict[str, str]:
        """Channel id -> name (chat, email, forms...; ids are not documented, names are shown)."""
        body = self._json("GET", "channels", PATHS["channels"], kind="other")
        return {str(c.get("id")): str(c.get("name") or c.get("id")) for c in body.get("results") or []}

    # -- internals -----------------------------------------------------------------------

    def _fit_properties(
        self, path: str, params: dict[str, str], properties: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """Split properties into those that fit in the URL and the rest."""
        names = list(dict.fromkeys(p for p in properties if p))
        if not names:
            return [], []
        url = self._http.build_request("GET", path, params=params).url
        length = len(str(url)) + len("&properties=")
        fitted: list[str] = []
        for index, name in enumerate(names):
            cost = len(quote(name, safe="")) + (3 if fitted else 0)  # "," travels as %2C
            if length + cost > MAX_URL_LENGTH:
                return fitted, names[index:]
            fitted.append(name)
            length += cost
        return fitted, []

    def _batch_read_chunk(
        self, object_type: str, ids: list[str], properties: list[str], id_property: str | None, archived: bool
    ) -> list[Record]:
        body: dict[str, Any] = {
            "properties": list(dict.fromkeys(properties)),
            "inputs": [{"id": i} for i in ids],
        }
        if id_property:
            body["idProperty"] = id_property
        data = self._json(
            "POST",
            "batch",
            _path("batch", object_type=object_type, action="read"),
            params={"archived": _bool(archived)},
            json=body,
            kind="batch",
        )
        for item in data.get("errors") or []:
            error = error_from_batch_item(item)
            if not isinstance(error, NotFound):
                log.debug("batch read of %s: HubSpot reported %s", object_type, error.category)
        return [record_from_wire(item) for item in data.get("results") or []]

    def _batch_write(
        self, object_type: str, action: str, wire: list[dict[str, Any]], *, retry: Retry
    ) -> BatchResult:
        result = BatchResult([], [])
        path = _path("batch", object_type=object_type, action=action)
        for chunk in _chunks(wire, BATCH_LIMIT):
            data = self._json("POST", "batch", path, json={"inputs": chunk}, kind="batch", retry=retry)
            for item in data.get("results") or []:
                record = record_from_wire(item)
                result.records.append(record)
                if item.get("new") is True:
                    result.created_ids.append(record.id)
            result.errors.extend(error_from_batch_item(item) for item in data.get("errors") or [])
        return result

    def _json(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        kind: str,
        retry: Retry = "safe",
    ) -> dict[str, Any]:
        response = self._send(method, template, path, params=params, json=json, kind=kind, retry=retry)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise HubSpotError(
                f"HubSpot answered {PATHS[template]} with something that is not JSON",
                status_code=response.status_code,
                correlation_id=response.headers.get("x-hubspot-correlation-id"),
            ) from None
        return data if isinstance(data, dict) else {"results": data}

    def _send(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        kind: str,
        retry: Retry = "safe",
    ) -> httpx2.Response:
        """Send with limits, token, retries and error mapping; returns a 2xx response."""
        label = PATHS[template]
        budget = self.limits.search if kind == "search" else self.limits.burst
        breaker = self.limits.breaker
        refreshed: str | None = None
        attempt = 0
        while True:
            # Asked per attempt: a call that waited out a long backoff may need a fresh token.
            token = refreshed or self.tokens.access_token()
            breaker.before_request()
            budget.acquire()
            if not self._take_daily():
                budget.release()
                daily = self.limits.daily.snapshot()
                raise DailyBudgetSpent(
                    f"This app's share of the daily request limit is spent ({daily['used']:,} requests "
                    f"today); it renews at {_clock_time(daily['resets_at'])} (midnight, {daily['time_zone']})",
                    resume_at=float(daily["resets_at"]),
                )
            self.stats.count_request(kind)
            started = time.monotonic()
            sent_at = budget.clock()
            failure: httpx2.TransportError | None = None
            try:
                response = self._http.request(
                    method, path, params=params, json=json, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx2.TransportError as exc:
                failure = exc
            finally:
                budget.release(sent_at=sent_at)
            if failure is not None:
                breaker.record_failure()
                elapsed = (time.monotonic() - started) * 1000
                unreachable = _unreachable(failure, method, label, self.timeout)
                never_sent = isinstance(
                    failure, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
                )
                may_retry = retry == "safe" or never_sent
                log.debug(
                    "%s %s -> %s after %.0f ms (attempt %d)",
                    method,
                    label,
                    type(failure).__name__,
                    elapsed,
                    attempt + 1,
                )
                if not may_retry or attempt >= self.max_retries:
                    raise unreachable from failure
                self._wait(
                    full_jitter(attempt, base_s=self.backoff_base, cap_s=BACKOFF_CAP_S),
                    attempt,
                    rate_limited=False,
                )
                attempt += 1
                continue

            elapsed = (time.monotonic() - started) * 1000
            status = response.status_code
            log.debug("%s %s -> %d in %.0f ms (attempt %d)", method, label, status, elapsed, attempt + 1)
            if kind != "search":
                # A 429's "Remaining: 0" says nothing about when room returns; Retry-After does.
                self._learn(response.headers, remaining=status != 429)
            self._learn_daily(response.headers)

            if status < 300:
                breaker.record_success()
                return response
            body = _body(response)
            if status == 401:
                breaker.record_success()
                if refreshed:
                    raise NeedsReconnect("HubSpot refused the access token even after refreshing it")
                refreshed = self.tokens.refresh_after_401(token)
                continue
            if status == 429:
                breaker.record_success()
                error = error_from_response(status, body, response.headers)
                if isinstance(body, dict) and body.get("policyName") == DAILY_POLICY:
                    self.stats.count_rate_limited()
                    resume_at = self.limits.daily.refused()
                    raise DailyLimitReached(
                        f"HubSpot's daily request limit for this portal is spent; it resets at "
                        f"{_clock_time(resume_at)} (midnight, {self.limits.daily.time_zone})",
                        resume_at=resume_at,
                        retry_after=max(0.0, resume_at - time.time()),
                        status_code=429,
                        category=error.category,
                        correlation_id=error.correlation_id,
                        body=error.body,
                    )
                wait = self._rate_limit_wait(response, kind, attempt)
                budget.pause(wait)
                if attempt >= self.max_retries:
                    self.stats.count_rate_limited()
                    assert isinstance(error, RateLimited)
                    raise error
                self._wait(wait, attempt, rate_limited=True)
                attempt += 1
                continue
            if status in RETRYABLE_STATUS or status >= 500:
                breaker.record_failure()
                error = error_from_response(status, body, response.headers)
                if retry != "safe" or attempt >= self.max_retries:
                    raise error
                wait = full_jitter(attempt, base_s=self.backoff_base, cap_s=BACKOFF_CAP_S)
                hinted = retry_after_seconds(response.headers)
                if hinted is not None:
                    wait = min(hinted, RETRY_AFTER_CAP_S)
                if status == 423:
                    wait = max(wait, LOCKED_WAIT_S)
                self._wait(wait, attempt, rate_limited=False)
                attempt += 1
                continue
            breaker.record_success()
            raise error_from_response(status, body, response.headers)

    def _rate_limit_wait(self, response: httpx2.Response, kind: str, attempt: int) -> float:
        hinted = retry_after_seconds(response.headers)
        if hinted is not None:
            return min(hinted, RETRY_AFTER_CAP_S)
        budget = self.limits.search if kind == "search" else self.limits.burst
        # Without Retry-After, step in tenths of the window HubSpot counts in.
        return full_jitter(attempt, base_s=budget.window_s / 10, cap_s=budget.window_s)

    def _wait(self, seconds: float, attempt: int, *, rate_limited: bool) -> None:
        self.stats.count_retry(rate_limited=rate_limited)
        log.debug("retry %d in %.2f s%s", attempt + 1, seconds, " (rate limited)" if rate_limited else "")
        if seconds > 0:
            time.sleep(seconds)

    def _learn(self, headers: httpx2.Headers, *, remaining: bool = True) -> None:
        limit = _int_header(headers, "x-hubspot-ratelimit-max")
        left = _int_header(headers, "x-hubspot-ratelimit-remaining") if remaining else None
        interval = _int_header(headers, "x-hubspot-ratelimit-interval-milliseconds")
        if limit is None and left is None:
            return
        self.limits.burst.learn(limit=limit, window_s=interval / 1000 if interval else None, remaining=left)

    def _take_daily(self) -> bool:
        if self.within_daily_budget:
            return self.limits.daily.take()
        self.limits.daily.count()
        return True

    def _learn_daily(self, headers: httpx2.Headers) -> None:
        limit = _int_header(headers, "x-hubspot-ratelimit-daily")
        left = _int_header(headers, "x-hubspot-ratelimit-daily-remaining")
        if limit is not None or left is not None:
            self.limits.daily.learn(limit=limit, remaining=left)


def _clock_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _path(template: str, **parts: str) -> str:
    return PATHS[template].format(**{k: quote(str(v), safe="") for k, v in parts.items()})


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _props(properties: Any) -> dict[str, str]:
    """Property values as HubSpot wants them: strings ("" clears a value)."""
    out: dict[str, str] = {}
    for name, value in (properties or {}).items():
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _association_input(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    to_id, type_id = item
    return {
        "to": {"id": str(to_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": int(type_id)}],
    }


def _update_input(item: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": str(item["id"]), "properties": _props(item.get("properties"))}
    id_property = item.get("id_property") or item.get("idProperty")
    if id_property:
        entry["idProperty"] = id_property
    return entry


_FILTER_KEYS = {"property_name": "propertyName", "high_value": "highValue"}


def _filter_group(group: dict[str, Any]) -> dict[str, Any]:
    filters = group.get("filters", [])
    return {"filters": [{_FILTER_KEYS.get(k, k): v for k, v in f.items()} for f in filters]}


def _sort(sort: Any) -> dict[str, str]:
    if isinstance(sort, str):
        descending = sort.startswith("-")
        return {"propertyName": sort.lstrip("-"), "direction": "DESCENDING" if descending else "ASCENDING"}
    name = sort.get("propertyName") or sort.get("property_name")
    return {"propertyName": str(name), "direction": str(sort.get("direction", "ASCENDING")).upper()}


def _body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int_header(headers: httpx2.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _unreachable(exc: httpx2.TransportError, method: str, label: str, timeout: float) -> Unreachable:
    if isinstance(exc, httpx2.TimeoutException):
        return Unreachable(f"HubSpot did not answer {method} {label} within {timeout:g} s")
    if isinstance(exc, httpx2.ConnectError):
        return Unreachable(f"Could not connect to HubSpot for {method} {label}")
    return Unreachable(f"HubSpot dropped the connection during {method} {label} ({type(exc).__name__})")
