"""The conversations inbox: inboxes, channels, threads and their messages (docs/INTERACTIONS_API.md §6).

``GET …/inboxes``, ``…/channels``, ``…/threads`` (filters, ``after`` cursor, sort by ``id`` or
``latestMessageTimestamp``), ``GET|PATCH|DELETE …/threads/{threadId}``,
``GET|POST …/threads/{threadId}/messages``, ``GET …/messages/{messageId}``, under
``/conversations/v3/conversations`` and the dated beta ``/conversations/conversations/2026-09-beta``.
GETs need ``conversations.read``, writes ``conversations.write``.

Webhooks: ``conversation.creation`` (a thread started through the admin route, as if a
visitor wrote in), ``conversation.newMessage`` (``messageId``, ``messageType``),
``conversation.propertyChange`` (``status``, ``assignedTo``, ``isArchived``) and
``conversation.deletion`` (archive); ``objectId`` is the thread id.

Not modelled: channel accounts' own routes, actors, original-content, attachments' files,
custom channels, spam handling, the 30-day purge of archived threads.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from crm.sandbox import messages as msg
from crm.sandbox.errors import SandboxHTTPError
from crm.sandbox.objects.types import iso, now_ms, parse_time
from crm.sandbox.wire import authorize, bad_request, query_bool, query_int, read_json, sandbox_state

READ_SCOPES = ["conversations.read"]
WRITE_SCOPES = ["conversations.write"]
PREFIXES = ("/conversations/v3/conversations", "/conversations/conversations/2026-09-beta")
MAX_LIMIT = 500
MAX_TEXT = 65_536
FIRST_THREAD_ID = 7_140_000_001
INBOX_ID = "147959634"
# Channel ids are observed, not documented (docs/INTERACTIONS_API.md §6): clients read their names.
CHANNELS = {"1000": "Chat", "1002": "Email", "1003": "Forms", "1007": "WhatsApp"}
CHANNEL_ACCOUNTS = {"1000": "240998", "1002": "240999", "1003": "241000", "1007": "241001"}
MESSAGE_TYPES = ("MESSAGE", "COMMENT", "WELCOME_MESSAGE")


@dataclasses.dataclass
class Actor:
    actor_id: str
    name: str
    delivery: tuple[str, str] | None = None

    def to_wire(self, field: str) -> dict[str, Any]:
        body: dict[str, Any] = {"actorId": self.actor_id, "name": self.name}
        if self.delivery is not None:
            body["deliveryIdentifier"] = {"type": self.delivery[0], "value": self.delivery[1]}
        if field:
            body["senderField" if field == "FROM" else "recipientField"] = field
        return body


@dataclasses.dataclass
class Message:
    id: str
    thread_id: int
    created: int
    type: str
    direction: str
    text: str
    rich_text: str
    sender: Actor
    recipients: list[Actor]
    channel_id: str
    subject: str | None = None
    archived: bool = False

    def to_wire(self) -> dict[str, Any]:
        email = self.channel_id == "1002"
        body: dict[str, Any] = {
            "type": self.type,
            "id": self.id,
            "conversationsThreadId": str(self.thread_id),
            "createdAt": iso(self.created),
            "updatedAt": iso(self.created),
            "createdBy": self.sender.actor_id,
            "client": {"clientType": "HUBSPOT" if self.direction == "OUTGOING" else "SYSTEM"},
            "senders": [self.sender.to_wire("FROM" if email else "")],
            "recipients": [r.to_wire("TO" if email else "") for r in self.recipients],
            "archived": self.archived,
            "text": self.text,
            "richText": self.rich_text,
            "attachments": [],
            "truncationStatus": "NOT_TRUNCATED",
            "status": {"statusType": "SENT" if self.direction == "OUTGOING" else "RECEIVED"},
            "direction": self.direction,
            "channelId": self.channel_id,
            "channelAccountId": CHANNEL_ACCOUNTS.get(self.channel_id, ""),
        }
        if self.subject is not None:
            body["subject"] = self.subject
        return body


@dataclasses.dataclass
class Thread:
    id: int
    created: int
    channel_id: str
    contact_id: int | None
    status: str = "OPEN"
    closed_at: int | None = None
    assigned_to: str | None = None
    ticket_id: int | None = None
    archived: bool = False
    spam: bool = False
    messages: list[Message] = dataclasses.field(default_factory=list)

    def latest(self, direction: str | None = None) -> int | None:
        times = [m.created for m in self.messages if direction is None or m.direction == direction]
        return max(times) if times else None

    def to_wire(self, *, with_ticket: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(self.id),
            "createdAt": iso(self.created),
            "status": self.status,
            "originalChannelId": self.channel_id,
            "originalChannelAccountId": CHANNEL_ACCOUNTS.get(self.channel_id, ""),
            "latestMessageTimestamp": _iso_or_none(self.latest()),
            "latestMessageSentTimestamp": _iso_or_none(self.latest("OUTGOING")),
            "latestMessageReceivedTimestamp": _iso_or_none(self.latest("INCOMING")),
            "spam": self.spam,
            "inboxId": INBOX_ID,
            "associatedContactId": str(self.contact_id) if self.contact_id is not None else None,
            "archived": self.archived,
        }
        if self.closed_at is not None:
            body["closedAt"] = iso(self.closed_at)
        if self.assigned_to:
            body["assignedTo"] = self.assigned_to
        if with_ticket and self.ticket_id is not None:
            body["threadAssociations"] = {"associatedTicketId": str(self.ticket_id)}
        return body


def _iso_or_none(ms: int | None) -> str | None:
    return iso(ms) if ms is not None else None


class Conversations:
    """The portal's one inbox and its threads, ordered by id. Callers hold ``SandboxState.lock``."""

    def __init__(self) -> None:
        self.threads: dict[int, Thread] = {}
        self.next_id = FIRST_THREAD_ID
        self.created = 0

    def reset(self, created: int) -> None:
        self.threads = {}
        self.next_id = FIRST_THREAD_ID
        self.created = created

    def add(self, thread: Thread) -> Thread:
        self.threads[thread.id] = thread
        self.next_id = max(self.next_id, thread.id + 1)
        return thread

    def new_thread(self, created: int, channel_id: str, contact_id: int | None) -> Thread:
        return self.add(Thread(self.next_id, created, channel_id, contact_id))


def message_id(thread_id: int, index: int) -> str:
    """A stable, HubSpot-looking (hex) message id."""
    return hashlib.sha1(f"{thread_id}:{index}".encode()).hexdigest()[:32]


def inbox_wire(created: int) -> dict[str, Any]:
    return {
        "id": INBOX_ID,
        "name": "Support inbox",
        "type": "HELP_DESK",
        "createdAt": iso(created),
        "updatedAt": iso(created),
        "archived": False,
    }


# ---------------------------------------------------------------------------------------- routes


def _thread(request: Request) -> Thread:
    state = sandbox_state(request)
    try:
        thread = state.conversations.threads.get(int(request.path_params["threadId"]))
    except ValueError:
        thread = None
    # A GET sees archived threads only with archived=true; writes find either.
    if thread is None or (request.method == "GET" and thread.archived != query_bool(request, "archived")):
        raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))
    return thread


def _cursor(key: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def _uncursor(raw: str) -> tuple[int, int]:
    try:
        first, second = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split(":")
        return int(first), int(second)
    except (ValueError, UnicodeDecodeError):
        raise bad_request(msg.INVALID_AFTER) from None


def _paged(
    request: Request, keyed: list[tuple[tuple[int, int], dict[str, Any]]], limit: int
) -> dict[str, Any]:
    """One page of (sort key, body) pairs sorted by key, after the request's opaque cursor."""
    raw_after = request.query_params.get("after")
    start = 0
    if raw_after:
        after = _uncursor(raw_after)
        start = next((i for i, (key, _) in enumerate(keyed) if key > after), len(keyed))
    page = keyed[start : start + limit]
    body: dict[str, Any] = {"results": [item for _, item in page]}
    if start + limit < len(keyed):
        cursor = _cursor(page[-1][0])
        body["paging"] = {
            "next": {"after": cursor, "link": f"{request.url.path}?after={cursor}&limit={limit}"}
        }
    return body


async def get_inboxes(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    return JSONResponse({"results": [inbox_wire(sandbox_state(request).conversations.created)]})


async def get_channels(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    created = iso(sandbox_state(request).conversations.created)
    return JSONResponse(
        {"results": [{"id": cid, "name": name, "createdAt": created} for cid, name in CHANNELS.items()]}
    )


async def get_threads(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    state = sandbox_state(request)
    limit = query_int(request, "limit", 100, maximum=MAX_LIMIT)
    params = request.query_params
    contact, inbox = params.get("associatedContactId"), params.get("inboxId")
    if contact and inbox:
        raise bad_request(msg.CONVERSATIONS_CONTACT_AND_INBOX)
    status = (params.get("threadStatus") or "").upper()
    sort = params.get("sort") or "id"
    if sort not in ("id", "latestMessageTimestamp", "-id", "-latestMessageTimestamp"):
        raise bad_request(msg.CONVERSATIONS_BAD_SORT.format(sort=sort))
    since: int | None = None
    if sort.lstrip("-") == "latestMessageTimestamp":
        raw = params.get("latestMessageTimestampAfter")
        since = parse_time(raw) if raw else None
        if since is None:
            raise bad_request(msg.CONVERSATIONS_SORT_NEEDS_AFTER)
    archived = query_bool(request, "archived")
    with_ticket = (params.get("association") or "").upper() == "TICKET"
    with state.lock:
        threads = [
            t
            for t in state.conversations.threads.values()
            if t.archived == archived
            and (not contact or str(t.contact_id) == contact)
            and (not inbox or inbox == INBOX_ID)
            and (not status or t.status == status)
        ]
        keyed = []
        for t in threads:
            latest = t.latest() or t.created
            if since is not None and latest <= since:
                continue
            key = (latest, t.id) if since is not None else (t.id, 0)
            keyed.append((key, t.to_wire(with_ticket=with_ticket)))
    if sort.startswith("-"):
        # Descending: negate the keys so the cursor still moves forward.
        keyed = [((-key[0], -key[1]), item) for key, item in keyed]
    keyed.sort(key=lambda pair: pair[0])
    return JSONResponse(_paged(request, keyed, limit))


async def get_thread(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    with sandbox_state(request).lock:
        thread = _thread(request)
        body = thread.to_wire(with_ticket=(request.query_params.get("association") or "").upper() == "TICKET")
    return JSONResponse(body)


async def update_thread(request: Request) -> Response:
    """PATCH: ``status`` OPEN/CLOSED, ``assignedTo``, or ``archived: false`` to restore."""
    authorize(request, WRITE_SCOPES)
    state = sandbox_state(request)
    body = await read_json(request)
    events: list[dict[str, Any]] = []
    with state.lock:
        thread = _thread(request)
        if "status" in body:
            status = str(body["status"]).upper()
            if status not in ("OPEN", "CLOSED"):
                raise bad_request(msg.CONVERSATIONS_BAD_STATUS.format(status=body["status"]))
            if status != thread.status:
                thread.status = status
                thread.closed_at = now_ms() if status == "CLOSED" else None
                events.append(_property_event(thread.id, "status", status))
        if "assignedTo" in body and body["assignedTo"] != thread.assigned_to:
            thread.assigned_to = str(body["assignedTo"]) if body["assignedTo"] else None
            events.append(_property_event(thread.id, "assignedTo", thread.assigned_to or ""))
        if body.get("archived") is False and thread.archived:
            thread.archived = False
            events.append(_property_event(thread.id, "isArchived", "false"))
        result = thread.to_wire()
    state.webhooks.emit(events)
    return JSONResponse(result)


async def archive_thread(request: Request) -> Response:
    authorize(request, WRITE_SCOPES)
    state = sandbox_state(request)
    with state.lock:
        thread = _thread(request)
        fresh = not thread.archived
        thread.archived = True
    if fresh:
        state.webhooks.emit([{"subscriptionType": "conversation.deletion", "objectId": thread.id}])
    return Response(status_code=204)


async def get_messages(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    state = sandbox_state(request)
    limit = query_int(request, "limit", 100, maximum=MAX_LIMIT)
    with state.lock:
        thread = _thread(request)
        keyed = [((m.created, i), m.to_wire()) for i, m in enumerate(thread.messages)]
    if (request.query_params.get("sort") or "").startswith("-"):
        # Newest first: negate the key so the cursor still moves forward.
        keyed = sorted(((-key[0], -key[1]), item) for key, item in keyed)
    return JSONResponse(_paged(request, keyed, limit))


async def get_message(request: Request) -> Response:
    authorize(request, READ_SCOPES)
    with sandbox_state(request).lock:
        thread = _thread(request)
        for message in thread.messages:
            if message.id == request.path_params["messageId"]:
                return JSONResponse(message.to_wire())
    raise SandboxHTTPError(404, msg.crm_error(msg.NOT_FOUND, msg.OBJECT_NOT_FOUND))


async def create_message(request: Request) -> Response:
    """Send a MESSAGE or an internal COMMENT on a thread as an agent (``senderActorId``)."""
    authorize(request, WRITE_SCOPES)
    state = sandbox_state(request)
    body = await read_json(request)
    kind = str(body.get("type") or "").upper()
    if kind not in ("MESSAGE", "COMMENT"):
        raise bad_request(msg.CONVERSATIONS_BAD_MESSAGE_TYPE.format(type=body.get("type")))
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request(msg.CONVERSATIONS_MESSAGE_NEEDS_TEXT)
    if len(text) > MAX_TEXT:
        raise bad_request(msg.CONVERSATIONS_MESSAGE_TOO_LONG.format(limit=MAX_TEXT))
    sender = str(body.get("senderActorId") or "")
    if not sender.startswith("A-"):
        raise bad_request(msg.CONVERSATIONS_BAD_SENDER.format(actor=sender))
    with state.lock:
        thread = _thread(request)
        message = Message(
            id=message_id(thread.id, len(thread.messages)),
            thread_id=thread.id,
            created=now_ms(),
            type=kind,
            direction="OUTGOING",
            text=text,
            rich_text=str(body.get("richText") or text),
            sender=Actor(sender, ""),
            recipients=[] if kind == "COMMENT" else _visitors(thread),
            channel_id=str(body.get("channelId") or thread.channel_id),
            subject=str(body["subject"]) if body.get("subject") else None,
        )
        thread.messages.append(message)
        result = message.to_wire()
    state.webhooks.emit([new_message_event(thread.id, message)])
    return JSONResponse(result, status_code=201)


def _visitors(thread: Thread) -> list[Actor]:
    return [m.sender for m in thread.messages if m.direction == "INCOMING"][:1]


def _property_event(thread_id: int, name: str, value: str) -> dict[str, Any]:
    return {
        "subscriptionType": "conversation.propertyChange",
        "objectId": thread_id,
        "propertyName": name,
        "propertyValue": value,
    }


def new_message_event(thread_id: int, message: Message) -> dict[str, Any]:
    return {
        "subscriptionType": "conversation.newMessage",
        "objectId": thread_id,
        "messageId": message.id,
        "messageType": message.type,
    }


async def admin_start_thread(request: Request) -> Response:
    """``POST /_sandbox/conversations/threads``: a visitor writes in ({contactId, text, channelId?}).

    Creates the thread and its first incoming message, and fires ``conversation.creation``
    then ``conversation.newMessage``, as a chat started on the website would.
    """
    state = sandbox_state(request)
    body = await read_json(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request(msg.CONVERSATIONS_MESSAGE_NEEDS_TEXT)
    channel = str(body.get("channelId") or "1000")
    if channel not in CHANNELS:
        raise bad_request(msg.CONVERSATIONS_BAD_CHANNEL.format(channel=channel))
    with state.lock:
        contact = state.objects.find("contacts", str(body.get("contactId", "")))
        if contact is None:
            raise bad_request(msg.ASSOCIATION_TARGET_MISSING.format(to="contact", id=body.get("contactId")))
        email = state.objects.value("contacts", contact, "email") or ""
        name = " ".join(
            v for v in (state.objects.value("contacts", contact, n) for n in ("firstname", "lastname")) if v
        )
        now = now_ms()
        thread = state.conversations.new_thread(now, channel, contact.id)
        message = Message(
            message_id(thread.id, 0),
            thread.id,
            now,
            "MESSAGE",
            "INCOMING",
            text,
            text,
            Actor(f"V-{contact.id}", name, ("EMAIL", email) if channel == "1002" else None),
            [],
            channel,
        )
        thread.messages.append(message)
        result = thread.to_wire()
    state.webhooks.emit(
        [
            {"subscriptionType": "conversation.creation", "objectId": thread.id, "changeFlag": "NEW"},
            new_message_event(thread.id, message),
        ]
    )
    return JSONResponse(result, status_code=201)


async def admin_truth(request: Request) -> Response:
    """``GET /_sandbox/conversations/threads``: every thread, archived too, with its messages."""
    state = sandbox_state(request)
    with state.lock:
        results = [
            {**t.to_wire(with_ticket=True), "messages": [m.to_wire() for m in t.messages]}
            for t in state.conversations.threads.values()
        ]
    return JSONResponse({"results": results})


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [
        Route("/_sandbox/conversations/threads", admin_start_thread, methods=["POST"]),
        Route("/_sandbox/conversations/threads", admin_truth, methods=["GET"]),
    ]
    for p in PREFIXES:
        table += [
            Route(p + "/inboxes", get_inboxes, methods=["GET"]),
            Route(p + "/channels", get_channels, methods=["GET"]),
            Route(p + "/threads", get_threads, methods=["GET"]),
            Route(p + "/threads/{threadId}", get_thread, methods=["GET"]),
            Route(p + "/threads/{threadId}", update_thread, methods=["PATCH"]),
            Route(p + "/threads/{threadId}", archive_thread, methods=["DELETE"]),
            Route(p + "/threads/{threadId}/messages", get_messages, methods=["GET"]),
            Route(p + "/threads/{threadId}/messages", create_message, methods=["POST"]),
            Route(p + "/threads/{threadId}/messages/{messageId}", get_message, methods=["GET"]),
        ]
    return table
