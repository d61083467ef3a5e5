"""What crosses the client edge: records, pages, batch results, request counters.

HubSpot's wire names (``hs_object_id``, ``createdAt``, ``paging.next.after``, camelCase
definitions) are translated here, once; nothing past this module sees them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from crm.errors import HubSpotError

ObjectType = Literal[
    "contacts", "companies", "deals", "tickets", "notes", "calls", "emails", "meetings", "tasks"
]
# Every type but contacts keeps its last-modified time in hs_lastmodifieddate (tickets and
# the engagements too: docs/INTERACTIONS_API.md §2), which search can filter and sort on.
LAST_MODIFIED: dict[str, str] = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "tickets": "hs_lastmodifieddate",
    "notes": "hs_lastmodifieddate",
    "calls": "hs_lastmodifieddate",
    "emails": "hs_lastmodifieddate",
    "meetings": "hs_lastmodifieddate",
    "tasks": "hs_lastmodifieddate",
}
# HUBSPOT_DEFINED association type ids from an engagement to the record it is logged on
# (docs/INTERACTIONS_API.md §4): (contact, company, deal, ticket) per engagement. Used when
# creating a note or task with its associations, and to read a list page's inline ones. (The
# sandbox keeps its own copy of these facts, as HubSpot's stand-in: crm.hubspot never imports it.)
_ENGAGEMENT_TYPE_IDS = {
    "note": (202, 190, 214, 228),
    "call": (194, 182, 206, 220),
    "email": (198, 186, 210, 224),
    "meeting": (200, 188, 212, 226),
    "task": (204, 192, 216, 230),
}
_LINKED = (("contacts", "contact"), ("companies", "company"), ("deals", "deal"), ("tickets", "ticket"))
ENGAGEMENT_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    (engagement + "s", to_type): type_id
    for engagement, ids in _ENGAGEMENT_TYPE_IDS.items()
    for (to_type, _), type_id in zip(_LINKED, ids, strict=True)
}
REQUEST_KINDS = ("list", "search", "batch", "assoc", "other")
# The ``type`` names a v3 list page gives associations it carries inline (``associations=``),
# as HUBSPOT_DEFINED type ids (HUBSPOT_API.md §2.3 and §6): the primary (or only) type by
# its plain name, the unlabeled one beside a primary with ``_unlabeled``. Only the pairs a
# full pull reads inline are here; any other name sends its record to a v4 batch read.
# Engagements and tickets: docs/INTERACTIONS_API.md §4.
INLINE_ASSOCIATION_TYPES: dict[tuple[str, str], dict[str, int]] = {
    ("contacts", "companies"): {"contact_to_company": 1, "contact_to_company_unlabeled": 279},
    ("deals", "contacts"): {"deal_to_contact": 3},
    ("deals", "companies"): {"deal_to_company": 5, "deal_to_company_unlabeled": 341},
    ("tickets", "contacts"): {"ticket_to_contact": 16},
    ("tickets", "companies"): {"ticket_to_company": 26, "ticket_to_company_unlabeled": 339},
    ("tickets", "deals"): {"ticket_to_deal": 28},
    **{
        (engagement + "s", to_type): {
            f"{engagement}_to_{singular}": ENGAGEMENT_ASSOCIATION_TYPES[(engagement + "s", to_type)]
        }
        for engagement in _ENGAGEMENT_TYPE_IDS
        for to_type, singular in _LINKED
    },
}


@dataclass(frozen=True)
class Record:
    """One CRM record; property values are HubSpot's strings, absent and null both None."""

    id: str
    properties: dict[str, str | None]
    created_at: str | None
    updated_at: str | None
    archived: bool = False


@dataclass
class Page:
    """One list page. With ``associations=`` asked, ``associations[to_type][record id]`` holds
    each record's ``(to id, type id)`` pairs, and ``unread`` the ids whose inline lists could
    not be taken as complete (paged, or a type name not in INLINE_ASSOCIATION_TYPES)."""

    records: list[Record]
    next_after: str | None
    associations: dict[str, dict[str, list[tuple[str, int]]]] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)


@dataclass
class SearchPage:
    records: list[Record]
    total: int
    next_after: str | None


@dataclass
class BatchResult:
    """Records that worked and per-input errors of a 207.

    Each error's ``.body["context"]`` keeps HubSpot's context (ids, objectWriteTraceId).
    ``created_ids`` lists, for an upsert, the ids HubSpot created rather than updated.
    """

    records: list[Record]
    errors: list[HubSpotError]
    created_ids: list[str] = field(default_factory=list)


class TokenSource(Protocol):
    """Where a client gets its bearer token; one rate limiter per ``portal_key``."""

    portal_key: str

    def access_token(self) -> str:
        """A usable token; refreshes ahead of expiry."""
        ...

    def refresh_after_401(self, rejected: str) -> str:
        """A new token after HubSpot refused ``rejected``; single-flight.

        Raises NeedsReconnect when no new token can be had.
        """
        ...


class ClientStats:
    """Request counters of one client (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.retries = 0
        self.rate_limited = 0

    def count_request(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1

    def count_retry(self, *, rate_limited: bool) -> None:
        with self._lock:
            self.retries += 1
            if rate_limited:
                self.rate_limited += 1

    def count_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"requests": total, "by_kind": {...}, "retries": n, "rate_limited": n}``."""
        with self._lock:
            by_kind = {kind: self.requests.get(kind, 0) for kind in REQUEST_KINDS}
            return {
                "requests": sum(self.requests.values()),
                "by_kind": by_kind,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
            }


def inline_associations_from_wire(
    object_type: str, items: list[dict[str, Any]], to_types: Sequence[str]
) -> tuple[dict[str, dict[str, list[tuple[str, int]]]], set[str]]:
    """The associations a list page carries inline, and the ids to read them for instead.

    HubSpot leaves out a type a record has no associations of, so every asked type starts
    empty for every record; a list with ``paging`` (more than fit inline) or a ``type``
    name outside INLINE_ASSOCIATION_TYPES marks the record unread.
    """
    found: dict[str, dict[str, list[tuple[str, int]]]] = {t: {} for t in to_types}
    unread: set[str] = set()
    for item in items:
        record_id = str(item.get("id"))
        carried = item.get("associations") or {}
        for to_type in to_types:
            names = INLINE_ASSOCIATION_TYPES.get((object_type, to_type), {})
            block = carried.get(to_type) or {}
            pairs: dict[tuple[str, int], None] = {}
            if block.get("paging"):
                unread.add(record_id)
            for row in block.get("results") or []:
                type_id = names.get(str(row.get("type")))
                if type_id is None:
                    unread.add(record_id)
                    continue
                pairs[(str(row.get("id")), type_id)] = None
            found[to_type][record_id] = list(pairs)
    return found, unread


def record_from_wire(item: dict[str, Any]) -> Record:
    """A Record from one HubSpot object JSON."""
    raw = item.get("properties") or {}
    properties: dict[str, str | None] = {}
    for name, value in raw.items():
        if name == "hs_object_id":
            continue
        properties[name] = None if value is None else str(value)
    return Record(
        id=str(item.get("id") or raw.get("hs_object_id") or ""),
        properties=properties,
        created_at=item.get("createdAt"),
        updated_at=item.get("updatedAt"),
        archived=bool(item.get("archived", False)),
    )


def merge_records(first: Record, second: Record) -> Record:
    """``first`` with ``second``'s properties added (two reads of one record)."""
    properties = dict(first.properties)
    properties.update(second.properties)
    updated = max(filter(None, (first.updated_at, second.updated_at)), default=None)
    return Record(first.id, properties, first.created_at or second.created_at, updated, first.archived)


def next_after(body: dict[str, Any]) -> str | None:
    """The cursor of the next page, or None on the last page (however HubSpot says it)."""
    paging = body.get("paging")
    if not isinstance(paging, dict):
        return None
    nxt = paging.get("next")
    if not isinstance(nxt, dict):
        return None
    after = nxt.get("after")
    return None if after in (None, "") else str(after)


def thread_from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """A conversations inbox thread (docs/INTERACTIONS_API.md §6), snake_case."""
    contact = item.get("associatedContactId")
    return {
        "id": str(item.get("id")),
        "status": item.get("status"),
        "channel_id": str(item.get("originalChannelId") or ""),
        "contact_id": str(contact) if contact not in (None, "") else None,
        "assigned_to": item.get("assignedTo"),
        "created_at": item.get("createdAt"),
        "latest_at": item.get("latestMessageTimestamp"),
        "closed_at": item.get("closedAt"),
        "archived": bool(item.get("archived", False)),
    }


def message_from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """One message of a thread: who, when, which way, and its plain ``text`` (never ``richText``)."""
    senders = item.get("senders") or []
    sender = senders[0] if senders and isinstance(senders[0], dict) else {}
    delivery = sender.get("deliveryIdentifier") or {}
    return {
        "id": str(item.get("id")),
        "type": item.get("type"),
        "created_at": item.get("createdAt"),
        "direction": item.get("direction"),
        "sender": sender.get("name") or delivery.get("value") or sender.get("actorId"),
        "text": item.get("text"),
        "subject": item.get("subject"),
        "truncated": str(item.get("truncationStatus") or "NOT_TRUNCATED") != "NOT_TRUNCATED",
        "archived": bool(item.get("archived", False)),
    }


def transcript_from_wire(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A call transcript's utterances, in order: speaker, text, start_ms (docs/INTERACTIONS_API.md §2)."""
    found = []
    for u in item.get("transcriptUtterances") or []:
        speaker = u.get("speaker") or {}
        found.append(
            {
                "speaker": speaker.get("name") or speaker.get("email") or speaker.get("id"),
                "text": u.get("text"),
                "start_ms": u.get("startTimeMillis"),
            }
        )
    found.sort(key=lambda u: (u["start_ms"] is None, u["start_ms"] or 0))
    return found


def property_from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """A property definition in snake_case."""
    meta = item.get("modificationMetadata") or {}
    options = [
        {
            "label": opt.get("label"),
            "value": opt.get("value"),
            "display_order": opt.get("displayOrder"),
            "hidden": bool(opt.get("hidden", False)),
        }
        for opt in item.get("options") or []
        if isinstance(opt, dict)
    ]
    calculated = bool(item.get("calculated", False))
    return {
        "name": item.get("name"),
        "label": item.get("label"),
        "type": item.get("type"),
        "field_type": item.get("fieldType"),
        "group_name": item.get("groupName"),
        "description": item.get("description"),
        "options": options,
        "read_only": bool(meta.get("readOnlyValue", False)) or calculated,
        "calculated": calculated,
        "hubspot_defined": bool(item.get("hubspotDefined", False)),
        "has_unique_value": bool(item.get("hasUniqueValue", False)),
        "archived": bool(item.get("archived", False)),
    }


_DEFINITION_KEYS = {
    "field_type": "fieldType",
    "group_name": "groupName",
    "display_order": "displayOrder",
    "has_unique_value": "hasUniqueValue",
    "form_field": "formField",
    "calculation_formula": "calculationFormula",
    "external_options": "externalOptions",
    "referenced_object_type": "referencedObjectType",
    "number_display_hint": "numberDisplayHint",
    "text_display_hint": "textDisplayHint",
    "show_currency_symbol": "showCurrencySymbol",
    "currency_property_name": "currencyPropertyName",
    "data_sensitivity": "dataSensitivity",
}


def property_to_wire(definition: dict[str, Any]) -> dict[str, Any]:
    """A property definition for HubSpot; snake_case or HubSpot's own keys both accepted."""
    wire: dict[str, Any] = {}
    for key, value in definition.items():
        if key == "options" and isinstance(value, list):
            value = [
                {_DEFINITION_KEYS.get(k, k): v for k, v in opt.items()} if isinstance(opt, dict) else opt
                for opt in value
            ]
        wire[_DEFINITION_KEYS.get(key, key)] = value
    return wire


def pipeline_from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """A pipeline with its stages, metadata strings turned into numbers and booleans."""
    stages = []
    for stage in item.get("stages") or []:
        meta = stage.get("metadata") or {}
        stages.append(
            {
                "id": str(stage.get("id")),
                "label": stage.get("label"),
                "display_order": stage.get("displayOrder", 0),
                "probability": _float_or_none(meta.get("probability")),
                # Deal stages say isClosed; ticket stages say ticketState OPEN/CLOSED
                # (docs/INTERACTIONS_API.md §3).
                "is_closed": str(meta.get("isClosed", "false")).lower() == "true"
                or str(meta.get("ticketState", "")).upper() == "CLOSED",
                "archived": bool(stage.get("archived", False)),
            }
        )
    stages.sort(key=lambda s: (s["display_order"] is None, s["display_order"] or 0))
    return {
        "id": str(item.get("id")),
        "label": item.get("label"),
        "display_order": item.get("displayOrder", 0),
        "archived": bool(item.get("archived", False)),
        "stages": stages,
    }


def owner_from_wire(item: dict[str, Any]) -> dict[str, Any]:
    teams = [
        {"id": str(t.get("id")), "name": t.get("name"), "primary": bool(t.get("primary", False))}
        for t in item.get("teams") or []
        if isinstance(t, dict)
    ]
    user_id = item.get("userId")
    return {
        "id": str(item.get("id")),
        "email": item.get("email"),
        "first_name": item.get("firstName"),
        "last_name": item.get("lastName"),
        "user_id": int(user_id) if user_id not in (None, "") else None,
        "type": item.get("type"),
        "teams": teams,
        "archived": bool(item.get("archived", False)),
    }


def account_from_wire(item: dict[str, Any]) -> dict[str, Any]:
    portal_id = item.get("portalId")
    return {
        "portal_id": int(portal_id) if portal_id not in (None, "") else None,
        "ui_domain": item.get("uiDomain"),
        "time_zone": item.get("timeZone"),
        "currency": item.get("companyCurrency"),
        "utc_offset": item.get("utcOffset"),
        "data_hosting_location": item.get("dataHostingLocation"),
        "account_type": item.get("accountType"),
    }


def iso_to_ms(value: str | None) -> int | None:
    """Epoch milliseconds of a HubSpot timestamp (ISO-8601, or already milliseconds)."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def ms_to_iso(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds (``2026-03-01T12:00:00.250Z``), as HubSpot writes times."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _float_or_none(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
