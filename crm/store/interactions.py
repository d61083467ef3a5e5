"""Engagements (notes, calls, emails, meetings, tasks): their rows, bodies and timeline links.

Tables owned here (``crm.store.schema`` migration 5):

    interactions        one row per engagement: when it happened (``hs_timestamp``), owner,
                        subject, a one-line summary (direction, status, outcome...), the
                        first line of its text, the other HubSpot properties as JSON
    interaction_bodies  the full text, once per distinct text (keyed by its SHA-256)
    interaction_links   engagement -> contact/company/deal/ticket, with the engagement's time

Bodies are stored as plain text (``crm.plaintext``): HTML from HubSpot (notes, call notes,
emails sent from a record) is reduced to what a reader sees, so neither the cache nor a
page ever holds markup to render. A body a scope withheld (emails without
``sales-email-read`` come back with null content, docs/INTERACTIONS_API.md §2) is flagged
``body_hidden`` instead of being stored as an empty email.

The verbs mirror ``Records`` (``upsert_records``, ``mark_archived``, ``archive_unseen``,
``replace_associations``), so the pull drives both the same way. ``upsert_records`` takes
HubSpot's engagements; any other CRM's notes and activities arrive already neutral
(``crm.interface.Interaction``) through ``upsert_interactions``, rows and links together.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm.plaintext import body_text, first_line, normalise_space
from crm.store.owner import TableOwner
from crm.store.records import ID_CHUNK, LOCAL_ID_PREFIX, RecordLike, UpsertResult, marks
from crm.store.values import now_iso, to_column

ENGAGEMENT_TYPES = ("notes", "calls", "emails", "meetings", "tasks")
# Conversations inbox threads (chat, email, forms...) are kept beside them, one row per
# thread with its messages as the text, linked to the thread's contact.
THREADS = "threads"
INTERACTION_TYPES = (*ENGAGEMENT_TYPES, THREADS)
# The records an engagement shows on (the timeline's owners).
LINKED_TYPES = ("contacts", "companies", "deals", "tickets")
# Properties the pull asks for; HubSpot returns only a few unless named (§2).
ENGAGEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "notes": ("hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_lastmodifieddate"),
    "calls": (
        "hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_status",
        "hs_call_duration", "hs_call_disposition", "hs_call_from_number", "hs_call_to_number",
        "hs_call_recording_url", "hs_call_transcription_id", "hubspot_owner_id", "hs_lastmodifieddate",
    ),
    "emails": (
        "hs_timestamp", "hs_email_subject", "hs_email_text", "hs_email_html", "hs_email_direction",
        "hs_email_status", "hs_email_from_email", "hs_email_to_email", "hubspot_owner_id",
        "hs_lastmodifieddate",
    ),
    "meetings": (
        "hs_timestamp", "hs_meeting_title", "hs_meeting_body", "hs_internal_meeting_notes",
        "hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_location", "hs_meeting_outcome",
        "hubspot_owner_id", "hs_lastmodifieddate",
    ),
    "tasks": (
        "hs_timestamp", "hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority",
        "hs_task_type", "hubspot_owner_id", "hs_lastmodifieddate",
    ),
}  # fmt: skip
# Properties kept as their own columns (or as the body), not repeated in ``properties``.
_SUBJECT = {
    "notes": None,
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "tasks": "hs_task_subject",
}
_BODIES = {
    "notes": ("hs_note_body",),
    "calls": ("hs_call_body",),
    "emails": ("hs_email_text", "hs_email_html"),
    "meetings": ("hs_meeting_body", "hs_internal_meeting_notes"),
    "tasks": ("hs_task_body",),
}
# A note or task logged here is queued by role (crm.sync.edits; the outbox row's ``roles``):
# time (epoch ms: when, or when due), owner, note_body, task_subject, task_body (HTML),
# task_status (TASK_OPEN / TASK_DONE), task_type, task_priority. Each CRM's ``LogsEngagements``
# sends them under its own names. This maps each role to the cache's engagement property (the
# rows are HubSpot-shaped): a pending one is shown, and a CRM's answer is cached, under these.
LOGGED_ROLES = {
    "time": "hs_timestamp",
    "owner": "hubspot_owner_id",
    "note_body": "hs_note_body",
    "task_subject": "hs_task_subject",
    "task_body": "hs_task_body",
    "task_status": "hs_task_status",
    "task_type": "hs_task_type",
    "task_priority": "hs_task_priority",
}
TASK_DONE = "COMPLETED"
TASK_OPEN = "NOT_STARTED"
PREVIEW_CHARS = 160
TIMELINE_PAGE = 25


def cache_properties(roles: Mapping[str, str | None]) -> dict[str, str | None]:
    """A logged note's or task's roles as the cache's engagement properties (``LOGGED_ROLES``)."""
    return {LOGGED_ROLES[role]: value for role, value in roles.items() if role in LOGGED_ROLES}


def queued_roles(payload: Mapping[str, Any]) -> dict[str, str | None]:
    """The roles of a queued note or task (an outbox row's payload), in either shape: ``roles``,
    or the cache's property names of a row queued before the outbox was neutral (still pushed)."""
    if "roles" in payload:
        return dict(payload.get("roles") or {})
    named = {prop: role for role, prop in LOGGED_ROLES.items()}
    return {named[k]: v for k, v in (payload.get("properties") or {}).items() if k in named}


def check_engagement(object_type: str) -> str:
    """``object_type`` if it is an engagement type; raises ValueError otherwise."""
    if object_type not in ENGAGEMENT_TYPES:
        raise ValueError(f"unknown engagement type: {object_type!r}")
    return object_type


def check_interaction(object_type: str) -> str:
    """``object_type`` if it is an engagement type or ``threads``; raises ValueError otherwise."""
    if object_type not in INTERACTION_TYPES:
        raise ValueError(f"unknown interaction type: {object_type!r}")
    return object_type


class NeutralInteraction(Protocol):
    """What ``upsert_interactions`` needs of an interaction (``crm.interface.Interaction`` fits)."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def occurred_at(self) -> str: ...
    @property
    def owner_id(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def body(self) -> str: ...
    @property
    def links(self) -> Sequence[tuple[str, str]]: ...
    @property
    def updated_at(self) -> str | None: ...
    @property
    def created_at(self) -> str | None: ...
    @property
    def archived(self) -> bool: ...
    @property
    def properties(self) -> Mapping[str, str | None]: ...


@dataclass(frozen=True)
class InteractionRow:
    """An engagement as the cache keeps it (``row_from_record`` makes one)."""

    object_type: str
    id: str
    occurred_at: str
    owner_id: str | None
    subject: str | None
    summary: str | None
    body: str
    body_hidden: bool
    properties: dict[str, str | None]


def _duration(ms: str | None) -> str | None:
    try:
        seconds = int(float(ms or "")) // 1000
    except ValueError:
        return None
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _summary(object_type: str, p: Mapping[str, str | None]) -> str | None:
    """One short line of the engagement's facts, as HubSpot's values (unknown ones kept as they are)."""
    if object_type == "calls":
        parts = [p.get("hs_call_direction"), p.get("hs_call_status"), _duration(p.get("hs_call_duration"))]
    elif object_type == "emails":
        sender = p.get("hs_email_from_email")
        parts = [p.get("hs_email_direction"), p.get("hs_email_status"), f"from {sender}" if sender else None]
    elif object_type == "meetings":
        parts = [p.get("hs_meeting_outcome"), p.get("hs_meeting_location")]
    elif object_type == "tasks":
        parts = [p.get("hs_task_status"), p.get("hs_task_priority"), p.get("hs_task_type")]
    else:
        parts = []
    text = " · ".join(str(x) for x in parts if x)
    return text or None


def row_from_record(object_type: str, record: RecordLike) -> InteractionRow:
    """The cache row of one engagement read from HubSpot (pure).

    The time is ``hs_timestamp`` (required by HubSpot), else when it was created. The body
    is the plain text of the type's body properties (an email's text part, else its HTML
    made plain; a meeting's description and internal notes one after the other).
    """
    check_engagement(object_type)
    props = dict(record.properties)
    stamp = to_column(props.get("hs_timestamp"), "datetime") or record.created_at or ""
    subject_prop = _SUBJECT[object_type]
    subject = (props.get(subject_prop) or "").strip() if subject_prop else ""
    texts: list[str] = []
    if object_type == "emails":
        # The text part is plain text: kept as written (shown as text, never rendered); only
        # the HTML part is reduced to its words.
        text = normalise_space(props.get("hs_email_text") or "") or body_text(props.get("hs_email_html"))
        texts = [text] if text else []
    else:
        texts = [t for t in (body_text(props.get(name)) for name in _BODIES[object_type]) if t]
    hidden = object_type == "emails" and all(
        props.get(name) is None for name in ("hs_email_subject", "hs_email_text", "hs_email_html")
    )
    kept = {
        k: v
        for k, v in props.items()
        if k not in _BODIES[object_type]
        and k != subject_prop
        and k not in ("hs_timestamp", "hubspot_owner_id")
    }
    return InteractionRow(
        object_type=object_type,
        id=str(record.id),
        occurred_at=str(stamp),
        owner_id=props.get("hubspot_owner_id") or None,
        # HubSpot's subjects and titles are plain text: "<b>renewal</b>" is what was typed,
        # and is shown as typed (as text, never rendered), not stripped to "renewal".
        subject=normalise_space(subject) or None,
        summary=_summary(object_type, props),
        body="\n\n".join(texts),
        body_hidden=hidden,
        properties=kept,
    )


def row_from_thread(
    thread: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], channel: str | None
) -> InteractionRow:
    """The cache row of one inbox thread (as ``HubSpotClient.iter_threads`` / ``list_messages``
    give them; pure): its time is its latest message, its text every message's plain ``text``
    (never ``richText``), each line saying when, who and which way; internal comments are marked.
    """
    lines = []
    subject = None
    for message in messages:
        if message.get("archived"):
            continue
        subject = subject or (message.get("subject") or None)
        when = str(to_column(message.get("created_at"), "datetime") or "")[:16].replace("T", " ")
        who = message.get("sender") or "unknown"
        kind = " (internal comment)" if message.get("type") == "COMMENT" else ""
        way = {"INCOMING": "in", "OUTGOING": "out"}.get(str(message.get("direction")), "")
        head = " · ".join(p for p in (when, f"{who}{kind}", way) if p)
        text = normalise_space(str(message.get("text") or ""))  # plain text; richText is never used
        more = " [truncated by HubSpot]" if message.get("truncated") else ""
        lines.append(f"{head}\n{text}{more}" if text else head)
    latest = to_column(thread.get("latest_at"), "datetime") or to_column(thread.get("created_at"), "datetime")
    name = channel or "Conversation"
    return InteractionRow(
        object_type=THREADS,
        id=str(thread["id"]),
        occurred_at=str(latest or ""),
        owner_id=None,
        subject=normalise_space(subject or "") or f"{name} conversation",
        summary=" · ".join(str(x) for x in (thread.get("status"), name, f"{len(lines)} messages") if x),
        body="\n\n".join(lines),
        body_hidden=False,
        properties={
            "status": thread.get("status"),
            "channel_id": thread.get("channel_id"),
            "assigned_to": thread.get("assigned_to"),
            "closed_at": thread.get("closed_at"),
        },
    )


def format_transcript(utterances: Sequence[Mapping[str, Any]]) -> str:
    """A call transcript as plain text: one ``[m:ss] Speaker: words`` line per utterance."""
    lines = []
    for u in utterances:
        start = u.get("start_ms")
        stamp = ""
        if isinstance(start, (int, float)):
            seconds = int(start) // 1000
            stamp = f"[{seconds // 60}:{seconds % 60:02d}] "
        text = normalise_space(str(u.get("text") or ""))
        if text:
            lines.append(f"{stamp}{u.get('speaker') or 'unknown'}: {text}")
    return "\n".join(lines)


def with_transcript(row: InteractionRow, transcript: str | None) -> InteractionRow:
    """``row`` with a call transcript after its notes (unchanged without one)."""
    if not transcript:
        return row
    body = f"{row.body}\n\nTranscript\n{transcript}" if row.body else f"Transcript\n{transcript}"
    return dataclasses.replace(row, body=body)


def body_key(text: str) -> str:
    """The key a body is stored under: the SHA-256 of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Local:
    """An engagement made here, shaped as a record read from HubSpot (``RecordLike``)."""

    id: str
    properties: dict[str, str | None]
    created_at: str | None
    updated_at: str | None = None
    archived: bool = False


@dataclass
class TimelinePage:
    """One page of a record's timeline, newest first.

    ``rows``: dicts with object_type, id, occurred_at, owner_id, subject, summary, preview,
    body_hidden, has_body, pending (made here, not pushed yet). ``next_cursor``: pass as ``before`` for the next (older) page;
    None on the last page. ``total``: how many interactions match the filters.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None
    total: int = 0


def encode_cursor(occurred_at: str, object_type: str, record_id: str) -> str:
    """An opaque keyset position (URL- and widget-safe)."""
    raw = json.dumps([occurred_at, object_type, record_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii")


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    """The position ``encode_cursor`` made; ValueError for anything else."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError) as exc:
        raise ValueError("not a timeline position") from exc
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise ValueError("not a timeline position")
    return value[0], value[1], value[2]


# An engagement (alias i, its body b) whose subject, summary or text holds a _like pattern
# (three parameters, the same pattern each time).
# A search box without a word to look for finds nothing (as the contacts search).
_NOTHING = "1 = 0"


class Interactions(TableOwner):
    """Writes and reads of engagements, their bodies and timeline links."""

    # ------------------------------------------------------------------ writes

    def upsert_records(
        self,
        object_type: str,
        records: Iterable[RecordLike],
        *,
        synced_at: str | None = None,
        transcripts: Mapping[str, str] | None = None,
    ) -> UpsertResult:
        """Write engagements read from HubSpot, in one transaction (as ``Records.upsert_records``).

        An older copy never overwrites a newer one (``updated_at``); ``synced_at`` always
        moves. A body no engagement uses any more is deleted. ``transcripts`` (call id ->
        ``format_transcript`` text) is added to those calls' text.
        """
        check_engagement(object_type)
        batch = {str(r.id): r for r in records}
        rows = [
            (
                with_transcript(row_from_record(object_type, r), (transcripts or {}).get(str(r.id))),
                bool(r.archived),
                r.created_at,
                r.updated_at,
            )
            for r in batch.values()
        ]
        return self._write(object_type, rows, synced_at=synced_at)

    def upsert_threads(
        self,
        threads: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
        channels: Mapping[str, str],
        *,
        synced_at: str | None = None,
    ) -> UpsertResult:
        """Write inbox threads with their messages (``row_from_thread``), each linked to its contact."""
        rows = []
        for thread, messages in threads:
            row = row_from_thread(thread, messages, channels.get(str(thread.get("channel_id") or "")))
            latest = to_column(thread.get("latest_at"), "datetime")
            rows.append((row, bool(thread.get("archived")), thread.get("created_at"), latest))
        with self.db.atomic():
            result = self._write(THREADS, rows, synced_at=synced_at)
            ids = [str(t["id"]) for t, _ in threads]
            self.replace_associations(
                THREADS,
                "contacts",
                ids,
                {str(t["id"]): [(str(t["contact_id"]), 0)] for t, _ in threads if t.get("contact_id")},
            )
        return result

    def upsert_interactions(
        self, items: Sequence[NeutralInteraction], *, kinds: Sequence[str], synced_at: str | None = None
    ) -> UpsertResult:
        """Write neutral interactions (``crm.interface.Interaction``) and make their links equal
        theirs, in one transaction: the generic pull's verb for any CRM's notes and activities.

        ``kinds``: the kinds the items' feed can have. An item whose kind changed (a Pipedrive
        activity edited from call to meeting) leaves its row under the other ``kinds``, so it
        never shows twice. Bodies must be plain text already; as ``upsert_records``, an older
        copy never overwrites a newer one, and ``synced_at`` moves all the same.
        """
        feed = [check_engagement(k) for k in kinds]
        for item in items:
            if item.kind not in feed:
                raise ValueError(f"{item.kind!r} is not one of the feed's kinds {feed}")
        result = UpsertResult()
        with self.db.atomic():
            # A copy older than the cached one (a webhook's read racing a pull) changes
            # nothing: not its row, not its kind, not its links.
            cached = self._stamps(feed, [str(i.id) for i in items])
            by_kind: dict[str, list[NeutralInteraction]] = {}
            older: list[str] = []
            for item in items:
                newer = cached.get(str(item.id))
                if newer is not None and item.updated_at is not None and item.updated_at < newer:
                    older.append(str(item.id))
                    continue
                by_kind.setdefault(item.kind, []).append(item)
            # Yet the item was read live: its ``synced_at`` moves (as ``upsert_records``'), so a
            # full read's ``archive_unseen`` does not take a live item for a deleted one.
            self._mark_seen(feed, older, synced_at or now_iso())
            for kind, group in by_kind.items():
                ids = list(dict.fromkeys(str(i.id) for i in group))
                for other in feed:
                    if other != kind:
                        self._drop(other, ids)
                rows = [
                    (
                        InteractionRow(
                            object_type=kind,
                            id=str(i.id),
                            occurred_at=str(to_column(i.occurred_at, "datetime") or i.occurred_at),
                            owner_id=i.owner_id or None,
                            subject=normalise_space(i.subject or "") or None,
                            summary=i.summary or None,
                            body=normalise_space(i.body or ""),
                            body_hidden=False,
                            properties=dict(i.properties),
                        ),
                        bool(i.archived),
                        i.created_at,
                        i.updated_at,
                    )
                    for i in group
                ]
                result.written += self._write(kind, rows, synced_at=synced_at).written
                for record_type in LINKED_TYPES:
                    self.replace_associations(
                        kind,
                        record_type,
                        ids,
                        {str(i.id): [(rid, 0) for t, rid in i.links if t == record_type] for i in group},
                    )
        return result

    def _mark_seen(self, kinds: Sequence[str], ids: Sequence[str], synced_at: str) -> None:
        """Move ``synced_at`` of these interactions (any of ``kinds``), nothing else."""
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            self.conn.execute(
                f"UPDATE interactions SET synced_at = ? WHERE object_type IN ({marks(len(kinds))}) "
                f"AND id IN ({marks(len(chunk))})",
                (synced_at, *kinds, *chunk),
            )

    def _stamps(self, kinds: Sequence[str], ids: Sequence[str]) -> dict[str, str]:
        """``{id: its latest cached updated_at}`` over these kinds (ids without one left out)."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), ID_CHUNK):
            chunk = unique[start : start + ID_CHUNK]
            for record_id, stamp in self.conn.execute(
                f"SELECT id, updated_at FROM interactions WHERE object_type IN ({marks(len(kinds))}) "
                f"AND id IN ({marks(len(chunk))}) AND updated_at IS NOT NULL",
                (*kinds, *chunk),
            ).fetchall():
                found[str(record_id)] = max(found.get(str(record_id), ""), str(stamp))
        return found

    def _drop(self, object_type: str, ids: Sequence[str]) -> None:
        """Delete these interactions of one type, their links and bodies no one else uses."""
        old = self._body_keys(object_type, ids)
        for start in range(0, len(ids), ID_CHUNK):
            chunk = list(ids[start : start + ID_CHUNK])
            for table in ("interaction_links", "interactions"):
                self.conn.execute(
                    f"DELETE FROM {table} WHERE object_type = ? AND id IN ({marks(len(chunk))})",
                    (object_type, *chunk),
                )
        self._drop_unused_bodies(old)

    def _write(
        self,
        object_type: str,
        items: Sequence[tuple[InteractionRow, bool, str | None, str | None]],
        *,
        synced_at: str | None,
    ) -> UpsertResult:
        """Upsert rows (row, archived, created_at, updated_at) with their bodies, in one transaction."""
        result = UpsertResult()
        if not items:
            return result
        synced_at = synced_at or now_iso()
        rows = []
        bodies: dict[str, str] = {}
        for row, archived, created_at, updated_at in items:
            key = body_key(row.body) if row.body else None
            if key:
                bodies[key] = row.body
            rows.append(
                (
                    object_type,
                    row.id,
                    int(archived),
                    row.occurred_at,
                    created_at,
                    updated_at,
                    synced_at,
                    row.owner_id,
                    row.subject,
                    row.summary,
                    first_line(row.body, PREVIEW_CHARS) or None,
                    key,
                    int(row.body_hidden),
                    json.dumps(row.properties, ensure_ascii=False, sort_keys=True),
                )
            )
        ids = [row.id for row, _, _, _ in items]
        fresh = (
            "(excluded.updated_at IS NULL OR interactions.updated_at IS NULL "
            "OR excluded.updated_at >= interactions.updated_at)"
        )
        names = (
            "archived", "occurred_at", "created_at", "updated_at", "owner_id", "subject", "summary",
            "preview", "body_hash", "body_hidden", "properties",
        )  # fmt: skip
        updates = ", ".join(
            f"{n} = CASE WHEN {fresh} THEN excluded.{n} ELSE interactions.{n} END" for n in names
        )
        with self.db.atomic():
            old = self._body_keys(object_type, ids)
            self.conn.executemany(
                "INSERT INTO interaction_bodies (hash, body, chars) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING",
                # In key order: writers sharing a body then lock it in the same order (no deadlock).
                [(k, text, len(text)) for k, text in sorted(bodies.items())],
            )
            self.conn.executemany(
                "INSERT INTO interactions (object_type, id, archived, occurred_at, created_at, updated_at, "
                "synced_at, owner_id, subject, summary, preview, body_hash, body_hidden, properties) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (object_type, id) DO UPDATE SET synced_at = excluded.synced_at, {updates}",
                rows,
            )
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start : start + ID_CHUNK]
                self.conn.execute(
                    "UPDATE interaction_links SET occurred_at = (SELECT i.occurred_at FROM interactions i "
                    "WHERE i.object_type = interaction_links.object_type AND i.id = interaction_links.id) "
                    f"WHERE object_type = ? AND id IN ({marks(len(chunk))})",
                    (object_type, *chunk),
                )
            self._drop_unused_bodies(old)
            self.db.meta.bump_cache_version()
        result.written = len(rows)
        return result

    def _body_keys(self, object_type: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), ID_CHUNK):
            chunk = list(ids[start : start + ID_CHUNK])
            found.update(
                str(r[0])
                for r in self.conn.execute(
                    f"SELECT body_hash FROM interactions WHERE object_type = ? AND id IN ({marks(len(chunk))}) "
                    "AND body_hash IS NOT NULL",
                    (object_type, *chunk),
                ).fetchall()
            )
        return found

    def _drop_unused_bodies(self, keys: Iterable[str]) -> None:
        wanted = sorted(keys)
        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            self.conn.execute(
                f"DELETE FROM interaction_bodies WHERE hash IN ({marks(len(chunk))}) AND NOT EXISTS "
                "(SELECT 1 FROM interactions i WHERE i.body_hash = interaction_bodies.hash)",
                chunk,
            )

    def mark_archived(self, object_type: str, ids: Iterable[str]) -> int:
        """Flag engagements (or threads) as archived (deleted in HubSpot); returns how many changed."""
        check_interaction(object_type)
        id_list = list(dict.fromkeys(str(i) for i in ids))
        changed = 0
        stamp = now_iso()
        with self.db.atomic():
            for start in range(0, len(id_list), ID_CHUNK):
                chunk = id_list[start : start + ID_CHUNK]
                changed += self.conn.execute(
                    "UPDATE interactions SET archived = 1, synced_at = ? "
                    f"WHERE object_type = ? AND archived = 0 AND id IN ({marks(len(chunk))})",
                    (stamp, object_type, *chunk),
                ).rowcount
            if changed:
                self.db.meta.bump_cache_version()
        return changed

    def archive_unseen(self, object_type: str, *, seen_since: str) -> int:
        """After a complete full pull: flag engagements (or threads) not seen since ``seen_since`` as archived."""
        check_interaction(object_type)
        with self.db.atomic():
            changed = int(
                self.conn.execute(
                    "UPDATE interactions SET archived = 1 WHERE object_type = ? AND archived = 0 "
                    "AND id NOT LIKE ? AND (synced_at IS NULL OR synced_at < ?)",
                    (object_type, LOCAL_ID_PREFIX + "%", seen_since),
                ).rowcount
            )
            if changed:
                self.db.meta.bump_cache_version()
        return changed

    def replace_associations(
        self,
        from_type: str,
        to_type: str,
        from_ids: Iterable[str],
        found: Mapping[str, Sequence[tuple[str, int]]],
    ) -> int:
        """Make the ``to_type`` records each engagement of ``from_ids`` shows on equal ``found``.

        Returns the number of links written.
        """
        check_interaction(from_type)
        if to_type not in LINKED_TYPES:
            raise ValueError(f"engagements are not linked to {to_type!r}")
        ids = list(dict.fromkeys(str(i) for i in from_ids))
        with self.db.atomic():
            when: dict[str, str] = {}
            for start in range(0, len(ids), ID_CHUNK):
                chunk = ids[start : start + ID_CHUNK]
                self.conn.execute(
                    "DELETE FROM interaction_links WHERE object_type = ? AND record_type = ? "
                    f"AND id IN ({marks(len(chunk))})",
                    (from_type, to_type, *chunk),
                )
                when.update(
                    (str(r[0]), str(r[1]))
                    for r in self.conn.execute(
                        "SELECT id, occurred_at FROM interactions WHERE object_type = ? "
                        f"AND id IN ({marks(len(chunk))})",
                        (from_type, *chunk),
                    ).fetchall()
                )
            rows = [
                (to_type, str(to_id), from_type, from_id, when.get(from_id, ""))
                for from_id in ids
                for to_id, _ in found.get(from_id, ())
            ]
            self.conn.executemany(
                "INSERT INTO interaction_links (record_type, record_id, object_type, id, occurred_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            self.db.meta.bump_cache_version()
        return len(rows)

    def insert_local(
        self,
        object_type: str,
        local_id: str,
        properties: Mapping[str, str | None],
        links: Sequence[tuple[str, str]],
        *,
        stamp: str,
    ) -> None:
        """Add an engagement made here (queued in the outbox, not yet in HubSpot) and its links."""
        record = _Local(local_id, dict(properties), stamp)
        with self.db.atomic():
            self.upsert_records(object_type, [record], synced_at=stamp)
            self.set_links(object_type, local_id, links)

    def set_links(self, object_type: str, record_id: str, links: Sequence[tuple[str, str]]) -> None:
        """Make one engagement show on exactly the records ``links`` ``[(record type, id)]`` names
        (of those types; links to other types are left as they are)."""
        with self.db.atomic():
            for record_type in sorted({t for t, _ in links}):
                if record_type not in LINKED_TYPES:
                    raise ValueError(f"engagements are not linked to {record_type!r}")
                self.replace_associations(
                    object_type,
                    record_type,
                    [record_id],
                    {record_id: [(rid, 0) for t, rid in links if t == record_type]},
                )

    def delete_local(self, object_type: str, local_id: str) -> None:
        """Remove an engagement made here (pushed and replaced by HubSpot's, or discarded)."""
        with self.db.atomic():
            old = self._body_keys(check_engagement(object_type), [local_id])
            self.conn.execute(
                "DELETE FROM interaction_links WHERE object_type = ? AND id = ?", (object_type, local_id)
            )
            self.conn.execute(
                "DELETE FROM interactions WHERE object_type = ? AND id = ?", (object_type, local_id)
            )
            self._drop_unused_bodies(old)
            self.db.meta.bump_cache_version()

    def forget_portal(self) -> None:
        """Delete every engagement, body and link (the cache now serves another portal)."""
        with self.db.atomic():
            for table in ("interaction_links", "interactions", "interaction_bodies"):
                self.conn.execute(f'DELETE FROM "{table}"')

    # ------------------------------------------------------------------- reads

    def timeline(
        self,
        record_type: str,
        record_id: str,
        *,
        types: Sequence[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        search: str | None = None,
        before: str | None = None,
        limit: int = TIMELINE_PAGE,
    ) -> TimelinePage:
        """One page of a record's interactions, newest first, by keyset (never by offset).

        Args:
            types: engagement types to show (default all).
            since, until: ISO-8601 bounds on when it happened (``since`` <= t < ``until``).
            search: words looked for in the subject, summary and full body, each the start
                of a word there (any case, accents ignored), through the search index.
            before: the ``next_cursor`` of the previous page.

        Raises ValueError for an unknown type or a malformed cursor.
        """
        if record_type not in LINKED_TYPES:
            raise ValueError(f"no timeline for {record_type!r}")
        where = ["l.record_type = ?", "l.record_id = ?", "i.archived = 0"]
        params: list[Any] = [record_type, str(record_id)]
        if types is not None:
            chosen = [check_interaction(t) for t in types]
            if not chosen:
                return TimelinePage()
            where.append(f"l.object_type IN ({marks(len(chosen))})")
            params.extend(chosen)
        if since:
            where.append("l.occurred_at >= ?")
            params.append(since)
        if until:
            where.append("l.occurred_at < ?")
            params.append(until)
        text = (search or "").strip()
        if text:
            clause, words = self.conn.interactions_search(text) or (_NOTHING, [])
            where.append(clause)
            params.extend(words)
        base = (
            " FROM interaction_links l JOIN interactions i ON i.object_type = l.object_type AND i.id = l.id"
            + " WHERE "
            + " AND ".join(where)
        )
        total = int(self.conn.execute("SELECT count(*)" + base, params).fetchone()[0])
        page_where = ""
        page_params = list(params)
        if before:
            stamp, kind, rid = decode_cursor(before)
            page_where = (
                " AND (l.occurred_at < ? OR (l.occurred_at = ? AND (l.object_type < ? "
                "OR (l.object_type = ? AND l.id < ?))))"
            )
            page_params.extend([stamp, stamp, kind, kind, rid])
        size = max(1, int(limit))
        cursor = self.conn.execute(
            "SELECT l.object_type, l.id, l.occurred_at, i.owner_id, i.subject, i.summary, i.preview, "
            "i.body_hidden, i.body_hash"
            + base
            + page_where
            + " ORDER BY l.occurred_at DESC, l.object_type DESC, l.id DESC LIMIT ?",
            [*page_params, size + 1],
        )
        names = [c[0] for c in cursor.description]
        found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        rows = []
        for item in found[:size]:
            item["body_hidden"] = bool(item["body_hidden"])
            item["has_body"] = item.pop("body_hash") is not None
            # Made here and waiting in the outbox to be pushed to HubSpot.
            item["pending"] = str(item["id"]).startswith(LOCAL_ID_PREFIX)
            rows.append(item)
        more = len(found) > size
        last = rows[-1] if rows else None
        return TimelinePage(
            rows=rows,
            next_cursor=encode_cursor(last["occurred_at"], last["object_type"], last["id"])
            if more and last
            else None,
            total=total,
        )

    def search(self, text: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """Engagements whose subject, summary or text holds every word of ``text`` as the
        start of a word (any case, accents ignored), newest first, through the search index.

        Each row names one record it is logged on (``record_type``, ``record_id``; the
        contact first, then company, deal, ticket), or None for an engagement on no record.
        """
        matching = self.conn.interactions_search(text)
        if matching is None:
            return []
        clause, words = matching
        cursor = self.conn.execute(
            "SELECT i.object_type, i.id, i.occurred_at, i.subject, i.preview FROM interactions i "
            f"WHERE i.archived = 0 AND {clause} "
            "ORDER BY i.occurred_at DESC, i.object_type DESC, i.id DESC LIMIT ?",
            [*words, max(1, int(limit))],
        )
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            link = None
            for record_type in LINKED_TYPES:
                link = self.conn.execute(
                    "SELECT record_id FROM interaction_links WHERE object_type = ? AND id = ? AND record_type = ? "
                    "ORDER BY record_id LIMIT 1",
                    (row["object_type"], row["id"], record_type),
                ).fetchone()
                if link is not None:
                    row["record_type"], row["record_id"] = record_type, str(link[0])
                    break
            if link is None:
                row["record_type"] = row["record_id"] = None
        return rows

    def search_plan(self, text: str, *, limit: int = 20) -> list[str]:
        """The database's plan (EXPLAIN) for ``search(text)``'s query: shows a benchmark
        that the search index answers it."""
        matching = self.conn.interactions_search(text)
        if matching is None:
            return []
        clause, words = matching
        explain = "EXPLAIN QUERY PLAN " if self.conn.dialect == "sqlite" else "EXPLAIN "
        rows = self.conn.execute(
            explain + "SELECT i.object_type, i.id FROM interactions i "
            f"WHERE i.archived = 0 AND {clause} "
            "ORDER BY i.occurred_at DESC, i.object_type DESC, i.id DESC LIMIT ?",
            [*words, max(1, int(limit))],
        ).fetchall()
        return [str(row[-1]) for row in rows]

    def body(self, object_type: str, record_id: str) -> str | None:
        """An engagement's full text (plain), or None when it has none."""
        row = self.conn.execute(
            "SELECT b.body FROM interactions i JOIN interaction_bodies b ON b.hash = i.body_hash "
            "WHERE i.object_type = ? AND i.id = ?",
            (check_interaction(object_type), str(record_id)),
        ).fetchone()
        return None if row is None else str(row[0])

    def get(self, object_type: str, record_id: str) -> dict[str, Any] | None:
        """One engagement's row (``properties`` parsed), or None."""
        cursor = self.conn.execute(
            "SELECT * FROM interactions WHERE object_type = ? AND id = ?",
            (check_interaction(object_type), str(record_id)),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        item = dict(zip([c[0] for c in cursor.description], row, strict=True))
        item["properties"] = json.loads(item["properties"] or "{}")
        return item

    def links_of(self, object_type: str, record_id: str) -> list[tuple[str, str]]:
        """The records one interaction shows on, as sorted ``(record type, id)`` pairs."""
        rows = self.conn.execute(
            "SELECT record_type, record_id FROM interaction_links WHERE object_type = ? AND id = ? "
            "ORDER BY record_type, record_id",
            (check_interaction(object_type), str(record_id)),
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def counts(self) -> dict[str, int]:
        """Cached, non-archived engagements per type, and inbox threads (``threads``)."""
        found = dict(
            self.conn.execute(
                "SELECT object_type, count(*) FROM interactions WHERE archived = 0 GROUP BY object_type"
            ).fetchall()
        )
        return {t: int(found.get(t, 0)) for t in INTERACTION_TYPES}

    def hidden_count(self) -> int:
        """Cached, non-archived engagements whose content HubSpot withheld."""
        return int(
            self.conn.execute(
                "SELECT count(*) FROM interactions WHERE archived = 0 AND body_hidden = 1"
            ).fetchone()[0]
        )

    def body_count(self) -> int:
        """Rows in ``interaction_bodies`` (each distinct text once)."""
        return int(self.conn.execute("SELECT count(*) FROM interaction_bodies").fetchone()[0])
