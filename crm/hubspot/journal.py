"""HubSpot's webhooks journal: the changes an app polls for instead of receiving webhooks.

Facts and sources: docs/JOURNAL_AND_LIMITS_API.md §1. In short: a client-credentials
token of the app (``crm.hubspot.tokens.ClientCredentialsToken``) with the
``developer.webhooks_journal.*`` scopes; subscriptions through the management API say
which changes are journalled; the local journal of one portal answers ``earliest``,
``latest`` and ``offset/{offset}/next`` with a pointer ``{currentOffset, expiresAt, url}``
whose ``url`` is a short-lived download of the entry's JSON file, fetched without a token.
``next`` from the newest offset answers 204 (or a body without ``url``: both mean "nothing
new"); from an offset that left the three-day retention, 404.

``JournalClient`` is a ``HubSpotClient`` so the journal calls share its retries, error
mapping, 401 handling and a rate limiter (keyed by the app, not the portal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx2

from crm.config import Settings
from crm.errors import HubSpotError, NotFound, Unreachable
from crm.hubspot.client import HubSpotClient
from crm.hubspot.paths import PATHS
from crm.hubspot.tokens import ClientCredentialsToken

JOURNAL_SCOPES = (
    "developer.webhooks_journal.read",
    "developer.webhooks_journal.subscriptions.read",
    "developer.webhooks_journal.subscriptions.write",
)
# The cache's types and HubSpot's object type ids (HUBSPOT_API.md §10).
TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
OBJECT_ACTIONS = ("CREATE", "UPDATE", "DELETE", "MERGE", "RESTORE")
ASSOCIATION_ACTIONS = ("ASSOCIATION_ADDED", "ASSOCIATION_REMOVED")


class OffsetExpired(NotFound):
    """The journal no longer holds the saved offset (older than its retention, or unknown)."""


@dataclass(frozen=True)
class Pointer:
    """One journal entry as the journal names it: its offset and where to download it."""

    offset: str
    url: str
    expires_at: str | None


@dataclass(frozen=True)
class Entry:
    """A downloaded entry: its offset, when it was published, and its events."""

    offset: str
    published_at: str | None
    events: list[dict[str, Any]]


def wanted_subscriptions(portal_id: int) -> list[dict[str, Any]]:
    """The subscriptions live updates need: every change of the cached types, their
    associations, and privacy deletions of contacts.

    Empty ``properties`` and ``objectIds`` mean "all" (UNCERTAIN in HubSpot's docs; the
    sandbox reads them so, and a subscription narrower than intended would silently miss
    changes, which a wider one cannot).
    """
    subs: list[dict[str, Any]] = []
    for type_id in TYPE_IDS.values():
        for sub_type, actions in (("OBJECT", OBJECT_ACTIONS), ("ASSOCIATION", ASSOCIATION_ACTIONS)):
            subs.append(
                {
                    "subscriptionType": sub_type,
                    "portalId": portal_id,
                    "objectTypeId": type_id,
                    "actions": list(actions),
                    "objectIds": [],
                    "properties": [],
                }
            )
    subs.append(
        {
            "subscriptionType": "GDPR_PRIVACY_DELETION",
            "portalId": portal_id,
            "objectTypeId": TYPE_IDS["contacts"],
            "actions": ["GDPR_DELETE"],
            "objectIds": [],
            "properties": [],
        }
    )
    return subs


class JournalClient(HubSpotClient):
    """The journal and its subscriptions, with the app's client-credentials token."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx2.BaseTransport | None = None,
        timeout: float | None = None,
        max_retries: int = 3,
    ) -> None:
        super().__init__(
            settings,
            ClientCredentialsToken(settings, JOURNAL_SCOPES, transport=transport),
            transport=transport,
            timeout=timeout,
            max_retries=max_retries,
        )

    # -- subscriptions ---------------------------------------------------------------------

    def ensure_subscriptions(self, portal_id: int) -> int:
        """Create the subscriptions live updates need that are missing; returns how many were sent.

        Listed first, then only what is missing or narrower is upserted, so a restart costs one read.
        """
        path = PATHS["journal_subscriptions"]
        have = self.transport.json(
            "GET", "journal_subscriptions", path, params={"portalId": str(portal_id)}, kind="other"
        )
        current = {
            (s.get("subscriptionType"), str(s.get("objectTypeId"))): s
            for s in have.get("results") or []
            if isinstance(s, dict) and str(s.get("portalId")) == str(portal_id) and not s.get("deletedAt")
        }
        sent = 0
        for wanted in wanted_subscriptions(portal_id):
            existing = current.get((wanted["subscriptionType"], wanted["objectTypeId"]))
            if existing is not None and _covers(existing, wanted):
                continue
            self.transport.json("POST", "journal_subscriptions", path, json=wanted, kind="other")
            sent += 1
        return sent

    # -- reading ----------------------------------------------------------------------------

    # ``portal_id`` picks one account's journal (``installPortalId``), so an app installed
    # in several portals reads only the connected one's changes.

    def earliest(self, *, portal_id: int | None = None) -> Pointer | None:
        """The oldest entry the journal holds, or None when it is empty."""
        return self._pointer("earliest", portal_id)

    def latest(self, *, portal_id: int | None = None) -> Pointer | None:
        """The newest entry, or None when the journal is empty."""
        return self._pointer("latest", portal_id)

    def next_after(self, offset: str, *, portal_id: int | None = None) -> Pointer | None:
        """The entry after ``offset``; None when there is nothing newer.

        Raises:
            OffsetExpired: the journal no longer holds ``offset``.
        """
        try:
            return self._pointer("offset/" + quote(offset, safe="") + "/next", portal_id)
        except NotFound as exc:
            raise OffsetExpired(
                "The journal no longer holds the saved position (older than its retention)",
                status_code=404,
                category=exc.category,
            ) from None

    def download(self, pointer: Pointer) -> Entry:
        """The entry's events, from its pre-signed URL (sent without a token).

        Raises:
            HubSpotError: the URL was refused (expired); ask the journal for a fresh pointer.
            Unreachable: no answer.
        """
        try:
            response = self.transport.http.get(pointer.url)
        except httpx2.TransportError as exc:
            raise Unreachable(f"Could not download a journal entry ({type(exc).__name__})") from exc
        if response.status_code >= 300:
            raise HubSpotError(
                f"The journal entry download answered HTTP {response.status_code}",
                status_code=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            raise HubSpotError("A journal entry is not JSON", status_code=response.status_code) from None
        return entry_from_wire(body, pointer.offset)

    def _pointer(self, position: str, portal_id: int | None) -> Pointer | None:
        path = PATHS["journal"].format(position=position)
        params = {"installPortalId": str(portal_id)} if portal_id is not None else None
        body = self.transport.json("GET", "journal", path, params=params, kind="other")
        url, offset = body.get("url"), body.get("currentOffset")
        if not url or not offset:
            return None  # 204, an empty body or one without a URL: nothing there
        expires = body.get("expiresAt")
        return Pointer(offset=str(offset), url=str(url), expires_at=str(expires) if expires else None)


def entry_from_wire(body: Any, offset: str) -> Entry:
    """An entry file in whatever shape it comes (UNCERTAIN, §1.4): ``journalEvents``, else
    any top-level list of events, else the body itself when it is one event."""
    events: list[Any] = []
    published: Any = None
    if isinstance(body, list):
        events = body
    elif isinstance(body, dict):
        published = body.get("publishedAt")
        listed = body.get("journalEvents")
        if listed is None:
            listed = next((v for v in body.values() if isinstance(v, list)), None)
        events = listed if isinstance(listed, list) else [body] if "objectId" in body else []
        offset = str(body.get("offset") or offset)
    return Entry(
        offset=offset,
        published_at=str(published) if published else None,
        events=[e for e in events if isinstance(e, dict)],
    )


def _covers(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether an existing subscription already delivers everything ``wanted`` asks for."""
    actions = set(existing.get("actions") or [])
    return (
        set(wanted["actions"]) <= actions and not existing.get("objectIds") and not existing.get("properties")
    )
