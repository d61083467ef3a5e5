"""HubSpotClient: every CRM call the product makes, as one object over one ``Transport``.

A facade, not a place for logic: each method hands its call to the module of the HubSpot
API area it belongs to, so a change in one area (HubSpot versions them one at a time) is
made in that area's module only:

    transport      one shared httpx2 client: limits, bearer token, retries, error mapping
    paths          the endpoint table (a version switch is one change)
    paging         list pages and single gets, with the properties that do not fit the URL
    batches        batch read, update, upsert, create, archive
    search         one search page and the lookups built on one; walks past the cap: walks
    associations   the v4 associations batch read
    metadata       properties, pipelines, owners, account info
    conversations  the inbox (threads, messages, channels) and call transcripts

The walks and lookups built on search call ``self.search`` and ``iter_pages`` calls
``self.list_page`` (the one loop kept here), so a subclass that overrides either (tests)
changes what is built on it, as before the split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Self, Unpack

from crm.config import Settings
from crm.hubspot import associations, batches, conversations, metadata, paging, walks
from crm.hubspot import search as searching
from crm.hubspot.limits import PortalLimits
from crm.hubspot.models import BatchResult, ClientStats, Page, Record, SearchPage, TokenSource
from crm.hubspot.search import SEARCH_LIMIT, SEARCH_RESULT_CAP
from crm.hubspot.transport import Transport, TransportOptions

__all__ = ["HubSpotClient"]


class HubSpotClient:
    """Typed access to HubSpot's CRM API; thread-safe, share one per sync run.

    Args:
        settings: where HubSpot is (``base_url``) and the default timeout.
        tokens: the bearer tokens; its ``portal_key`` picks the shared rate limiter.
        options: how requests are sent, handed to the ``Transport`` (``TransportOptions``:
            base_url, transport, timeout, max_retries, backoff_base, limits).
    """

    def __init__(self, settings: Settings, tokens: TokenSource, **options: Unpack[TransportOptions]) -> None:
        self.transport = Transport(settings, tokens, **options)
        self.search_cap = SEARCH_RESULT_CAP
        self.search_page_size = SEARCH_LIMIT

    # -- what the transport holds, read where callers read it ----------------------------

    @property
    def settings(self) -> Settings:
        return self.transport.settings

    @property
    def tokens(self) -> TokenSource:
        return self.transport.tokens

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def timeout(self) -> float:
        return self.transport.timeout

    @property
    def max_retries(self) -> int:
        return self.transport.max_retries

    @property
    def limits(self) -> PortalLimits:
        return self.transport.limits

    @property
    def stats(self) -> ClientStats:
        return self.transport.stats

    @property
    def within_daily_budget(self) -> bool:
        """Set (by a sync) to hold every request within the daily budget (``Transport``)."""
        return self.transport.within_daily_budget

    @within_daily_budget.setter
    def within_daily_budget(self, value: bool) -> None:
        self.transport.within_daily_budget = value

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- objects (crm.hubspot.paging, crm.hubspot.batches) -------------------------------

    def list_page(
        self,
        object_type: str,
        *,
        properties: Sequence[str],
        after: str | None = None,
        limit: int = paging.LIST_LIMIT,
        archived: bool = False,
        associations: Sequence[str] = (),
    ) -> Page:
        """One page of records ordered by id (``paging.list_page``)."""
        return paging.list_page(
            self.transport,
            object_type,
            properties=properties,
            after=after,
            limit=limit,
            archived=archived,
            associations=associations,
        )

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
        """One record by id or by a unique property (``paging.get_object``; NotFound if none)."""
        return paging.get_object(
            self.transport, object_type, record_id, properties=properties, id_property=id_property
        )

    def batch_read(
        self,
        object_type: str,
        ids: Iterable[str],
        *,
        properties: Sequence[str],
        id_property: str | None = None,
        archived: bool = False,
    ) -> list[Record]:
        """The records with these ids (``batches.batch_read``); unknown ids are left out."""
        return batches.batch_read(
            self.transport,
            object_type,
            ids,
            properties=properties,
            id_property=id_property,
            archived=archived,
        )

    def batch_update(self, object_type: str, inputs: list[dict[str, Any]]) -> BatchResult:
        """Update records, retried on transient failures (``batches.batch_update``)."""
        return batches.batch_update(self.transport, object_type, inputs)

    def batch_upsert(
        self, object_type: str, inputs: list[dict[str, Any]], *, id_property: str
    ) -> BatchResult:
        """Create or update by a unique property (``batches.batch_upsert``)."""
        return batches.batch_upsert(self.transport, object_type, inputs, id_property=id_property)

    def batch_create(self, object_type: str, inputs: list[dict[str, Any]]) -> BatchResult:
        """Create records, never retried once HubSpot may have acted (``batches.batch_create``)."""
        return batches.batch_create(self.transport, object_type, inputs)

    def batch_archive(self, object_type: str, ids: Iterable[str]) -> None:
        """Archive (delete) records; archiving twice is harmless (``batches.batch_archive``)."""
        batches.batch_archive(self.transport, object_type, ids)

    # -- search (crm.hubspot.search, crm.hubspot.walks) ----------------------------------

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
        """One page of search results (``search.search``; 5 per second per portal)."""
        return searching.search(
            self.transport,
            object_type,
            filter_groups=filter_groups,
            sorts=sorts,
            properties=properties,
            limit=limit,
            after=after,
            query=query,
        )

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
        """Engagements whose ``hs_timestamp`` is exactly ``timestamp_ms`` (``search.find_by_timestamp``)."""
        return searching.find_by_timestamp(self.search, object_type, timestamp_ms, properties=properties)

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

    # -- associations (crm.hubspot.associations) -----------------------------------------

    def read_associations(
        self, from_type: str, to_type: str, ids: Iterable[str]
    ) -> dict[str, list[tuple[str, int]]]:
        """``{from id: [(to id, association type id), ...]}`` for every id asked about."""
        return associations.read_associations(self.transport, from_type, to_type, ids)

    # -- definitions (crm.hubspot.metadata) ----------------------------------------------

    def list_properties(self, object_type: str) -> list[dict[str, Any]]:
        """Every property definition of the object type, in snake_case."""
        return metadata.list_properties(self.transport, object_type)

    def create_property(self, object_type: str, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a property (AlreadyExists if the name is taken)."""
        return metadata.create_property(self.transport, object_type, definition)

    def list_pipelines(self, object_type: str) -> list[dict[str, Any]]:
        """Pipelines with their stages, ordered by display order."""
        return metadata.list_pipelines(self.transport, object_type)

    def iter_owners(self, *, include_archived: bool = False) -> Iterator[dict[str, Any]]:
        """Every active owner (then the archived ones when asked), page by page."""
        return metadata.iter_owners(self.transport, include_archived=include_archived)

    def account_info(self) -> dict[str, Any]:
        """portal_id, ui_domain, time_zone, currency (and a few more) of the portal."""
        return metadata.account_info(self.transport)

    # -- conversations inbox (crm.hubspot.conversations) ---------------------------------

    def iter_threads(
        self, *, archived: bool = False, changed_since_ms: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of inbox threads: all by id, or those with a message after a moment."""
        return conversations.iter_threads(
            self.transport, archived=archived, changed_since_ms=changed_since_ms
        )

    def get_transcript(self, transcript_id: str) -> list[dict[str, Any]]:
        """A call transcript's utterances (MissingScopes without the calling scope)."""
        return conversations.get_transcript(self.transport, transcript_id)

    def get_thread(self, thread_id: str) -> dict[str, Any]:
        """One inbox thread, archived ones too; NotFound when it is gone."""
        return conversations.get_thread(self.transport, thread_id)

    def list_messages(self, thread_id: str) -> list[dict[str, Any]]:
        """Every message of a thread, oldest first."""
        return conversations.list_messages(self.transport, thread_id)

    def list_channels(self) -> dict[str, str]:
        """Channel id -> name (chat, email, forms...)."""
        return conversations.list_channels(self.transport)
