"""HubSpot's endpoint paths, and the small helpers every request builder shares.

Cut from the client because it changes when HubSpot versions an endpoint (e.g.
``/crm/objects/2026-03``): the table is the one place such a switch is made, whichever
area's module builds the request. The transport reads it too, to name a path in errors
and logs without the ids in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

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


def path(template: str, **parts: str) -> str:
    """The path of ``PATHS[template]`` with each part URL-quoted (ids may hold ``/``)."""
    return PATHS[template].format(**{k: quote(str(v), safe="") for k, v in parts.items()})


def flag(value: bool) -> str:
    """A boolean query parameter as HubSpot reads it."""
    return "true" if value else "false"


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in slices of at most ``size`` (a request's input limit)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
