"""HubSpot's conversations inbox (threads, messages, channels) and call transcripts.

Cut from the client because the inbox is its own API (``/conversations/v3``, ISO cursors,
page sizes not documented) that feeds the timeline only; call transcripts sit here as the
other conversation text the timeline reads, behind the calling extension's own scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crm.hubspot.models import (
    message_from_wire,
    ms_to_iso,
    next_after,
    thread_from_wire,
    transcript_from_wire,
)
from crm.hubspot.paths import PATHS, flag, path
from crm.hubspot.transport import Transport


def iter_threads(
    transport: Transport, *, archived: bool = False, changed_since_ms: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Pages of inbox threads (``thread_from_wire``): all by id, or those with a message after a moment.

    ``changed_since_ms`` sorts by ``latestMessageTimestamp`` after that moment (HubSpot
    requires the bound with that sort), so an incremental read costs what changed.
    Pages of at most 100 (the endpoint's maximum is UNCERTAIN, §6).
    """
    params: dict[str, str] = {"limit": "100", "archived": flag(archived)}
    if changed_since_ms is None:
        params["sort"] = "id"
    else:
        params["sort"] = "latestMessageTimestamp"
        params["latestMessageTimestampAfter"] = ms_to_iso(changed_since_ms)
    after: str | None = None
    while True:
        query = dict(params, **({"after": after} if after else {}))
        body = transport.json("GET", "threads", PATHS["threads"], params=query, kind="list")
        yield [thread_from_wire(item) for item in body.get("results") or []]
        following = next_after(body)
        if following is None or following == after:
            return
        after = following


def get_transcript(transport: Transport, transcript_id: str) -> list[dict[str, Any]]:
    """A call transcript's utterances (``transcript_from_wire``).

    Needs OAuth and ``crm.extensions_calling_transcripts.read`` (MissingScopes otherwise);
    NotFound when the call has none (any more).
    """
    where = path("transcript", transcript_id=transcript_id)
    return transcript_from_wire(transport.json("GET", "transcript", where, kind="other"))


def get_thread(transport: Transport, thread_id: str) -> dict[str, Any]:
    """One inbox thread (``thread_from_wire``), archived ones too; NotFound when it is gone."""
    where = path("thread", thread_id=thread_id)
    return thread_from_wire(transport.json("GET", "thread", where, kind="other"))


def list_messages(transport: Transport, thread_id: str) -> list[dict[str, Any]]:
    """Every message of a thread, oldest first (``message_from_wire``)."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    where = path("thread_messages", thread_id=thread_id)
    while True:
        query = {"limit": "100", **({"after": after} if after else {})}
        body = transport.json("GET", "thread_messages", where, params=query, kind="list")
        found.extend(message_from_wire(item) for item in body.get("results") or [])
        following = next_after(body)
        if following is None or following == after:
            return found
        after = following


def list_channels(transport: Transport) -> dict[str, str]:
    """Channel id -> name (chat, email, forms...; ids are not documented, names are shown)."""
    body = transport.json("GET", "channels", PATHS["channels"], kind="other")
    return {str(c.get("id")): str(c.get("name") or c.get("id")) for c in body.get("results") or []}
