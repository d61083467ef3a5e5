"""One contact in several CRMs: create it once, follow it in each connection (issue 15).

A person typed in once is queued as a new contact in each chosen connection's outbox
(default: every connection), and the home database's ``links`` table
(``crm.store.links``) remembers, per connection, which record holds the person and
whether that CRM has it yet. Nothing new talks to a CRM: each connection's own push
(``crm.sync.push``) sends its creates, with its own checks, and the link follows what
the push did to the create:

    pushed (the CRM created it, or already held it with all my values)  -> synced
    held: the CRM already has this email with other values               -> linked to
        that record (``Outbox.link_create``: my fields become edits, each one checked
        three ways on the next push), never a duplicate                 -> synced
    refused by the CRM                                                   -> error + message
    not sent yet (rate limit, timeout)                                   -> pending + message
    NotConnected / NeedsReconnect (disconnected, tokens revoked)         -> error + message

A CRM that is down or disconnected never stops the others: each connection is pushed on
its own, and its creates stay in its outbox, so after reconnecting ``push_links`` sends
them and the links turn synced. A contact the connection's cache already holds with this
email is linked at once and nothing is created (the email is the key in every CRM here).

Field names differ per CRM, so the neutral fields (``first_name``, ``last_name``,
``email``, ``phone``, ``pronouns``) are mapped through the provider's ``ObjectTypeInfo``
(its ``email`` and ``phone`` roles; the name parts of its ``title``: two parts are first
and last name, as HubSpot's, one part is a full name, as Pipedrive's ``name``) and
``pronouns_property`` (Pipedrive's hash-key field; its option ids found by label).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from crm import connections, crms, store
from crm.config import Settings
from crm.errors import CrmError, InvalidEdit, NotConnected, SyncBusy
from crm.interface import CrmApi, ObjectTypeInfo
from crm.store import Store
from crm.store.connections import Connection
from crm.store.links import Link, new_person_id
from crm.store.outbox import is_local_id
from crm.sync.edits import queue_edits, queue_new_contact
from crm.sync.pronouns import PRONOUN_OPTIONS, pronouns_property
from crm.sync.push import push

log = logging.getLogger("crm.sync")

NEUTRAL_FIELDS = ("first_name", "last_name", "email", "phone", "pronouns")
LinkSummary = Literal["local only", "partial", "synced"]
# Opens a connection's CRM API from its settings (tests); None: the provider's ``connect``.
OpenApi = Callable[[Settings], CrmApi]


@dataclass(frozen=True)
class PersonStatus:
    """Where one person stands across connections.

    ``state``: "synced" (every linked CRM holds the person), "partial" (some CRM failed
    or has not got it yet while another has; ``problems`` says which and why) or "local
    only" (no CRM holds the person yet: queued everywhere, or failed everywhere).
    ``links``: (connection name, link) pairs, by connection name.
    """

    person_id: str
    email: str | None
    state: LinkSummary
    links: tuple[tuple[str, Link], ...] = ()
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        """One line of plain text: "synced", "partial: Pipedrive: <message>", "local only"
        (with the reasons when a CRM refused it: "local only: HubSpot: <message>; ...")."""
        failed = any(link.status == "error" for _, link in self.links)
        if self.state == "synced" or (self.state == "local only" and not failed):
            return self.state
        return f"{self.state}: " + "; ".join(f"{name}: {message}" for name, message in self.problems)


@dataclass
class CreateResult:
    """What ``create_contact_everywhere`` did: the person, and each connection's outcome."""

    person_id: str
    status: PersonStatus
    pushes: dict[str, str] = field(default_factory=dict)


def contacts_info(crm: str) -> ObjectTypeInfo:
    """The contacts type as the CRM called ``crm`` has it."""
    return next(i for i in crms.provider_for(crm).object_types() if i.name == "contacts")


def crm_values(db: Store, info: ObjectTypeInfo, values: Mapping[str, Any]) -> dict[str, str]:
    """Neutral contact values as this connection's CRM names them (empty ones left out).

    Raises:
        InvalidEdit: pronouns were given and this CRM has no pronouns property (set it
            up first), or none of its options matches.
    """
    neutral = {k: str(v).strip() for k, v in values.items() if k in NEUTRAL_FIELDS and v not in (None, "")}
    out: dict[str, str] = {}
    names = [name for name in info.title if name != info.email]
    first, last = neutral.get("first_name", ""), neutral.get("last_name", "")
    if len(names) >= 2:
        if first:
            out[names[0]] = first
        if last:
            out[names[1]] = last
    elif len(names) == 1 and (first or last):
        out[names[0]] = " ".join(p for p in (first, last) if p)
    if neutral.get("email") and info.email:
        out[info.email] = neutral["email"]
    if neutral.get("phone") and info.phone:
        out[info.phone] = neutral["phone"]
    if neutral.get("pronouns"):
        prop = pronouns_property(db)
        if prop is None:
            raise InvalidEdit(
                {"pronouns": "Pronouns are not set up in this CRM yet (python -m crm pronouns)"}
            )
        out[prop] = _pronouns_option(db, prop, neutral["pronouns"])
    return out


def _pronouns_option(db: Store, prop: str, wanted: str) -> str:
    """The CRM's option value for pronouns given as our value ("she_her") or a label ("She/her")."""
    labels = {value: label for value, label in PRONOUN_OPTIONS}
    folded = {wanted.casefold(), labels.get(wanted, wanted).casefold()}
    for option in db.queries.property_defs("contacts")[prop].get("options") or []:
        value, label = str(option.get("value")), str(option.get("label") or "")
        if value.casefold() in folded or label.casefold() in folded:
            return value
    raise InvalidEdit({"pronouns": f"No pronouns option {wanted!r} here"})


def chosen_connections(settings: Settings, names: Sequence[str] | None) -> list[Connection]:
    """The connections named (id or display name), else every connection."""
    if not names:
        return connections.list_connections(settings, learn=False)
    return [connections.resolve(settings, name) for name in names]


def create_contact_everywhere(
    settings: Settings,
    values: Mapping[str, Any],
    connections: Sequence[str] | None = None,
    *,
    by: str | None = None,
    push_now: bool = True,
    open_api: OpenApi | None = None,
) -> CreateResult:
    """Queue one new contact in each chosen connection (default: all) and link them.

    ``values``: neutral fields (``NEUTRAL_FIELDS``); the email is required, being how
    every CRM here keys a contact and how an existing record is found instead of made
    twice. A connection whose cache already holds the email is linked to that record.
    A connection that refuses the values (its own validation) gets an error link with
    the reason; the others go on. ``push_now``: push each connection at once
    (``push_links``).

    Raises:
        InvalidEdit: no email.
        UnknownConnection: a named connection does not exist.
    """
    email = str(values.get("email") or "").strip()
    if not email:
        raise InvalidEdit({"email": "An email is needed to create a contact in several CRMs"})
    chosen = chosen_connections(settings, connections)
    home = settings.home
    with store.open(home) as db:
        person = db.links.person_by_email(email) or new_person_id()
    for conn in chosen:
        _queue_in(settings, conn, person, email, values, by=by)
    pushes: dict[str, str] = {}
    if push_now:
        pushes = push_links(settings, [c.id for c in chosen], by=by, open_api=open_api)
    return CreateResult(person, link_status(settings, person), pushes)


def _queue_in(
    settings: Settings,
    conn: Connection,
    person: str,
    email: str,
    values: Mapping[str, Any],
    *,
    by: str | None,
) -> None:
    """Queue the contact in one connection (or link the record its cache has) and record the link."""
    part = connections.settings_for(settings, conn)
    with store.open(settings.home) as home:
        known = home.links.get(person, conn.id)
    if known is not None and (known.status != "error" or _still_queued(part, known)):
        return  # linked or queued there already: creating again would make a duplicate
    info = contacts_info(conn.crm)
    try:
        with store.open(part) as db:
            mapped = crm_values(db, info, values)
            existing = db.queries.find_by_property("contacts", info.email or "email", email)
        if existing is not None:
            _put(settings, person, conn.id, "synced", email=email, record_id=existing)
            return
        local_id = queue_new_contact(part, mapped, by=by)
        with store.open(part) as db:
            outbox_id = db.outbox.create_id("contacts", local_id)
        _put(settings, person, conn.id, "pending", email=email, record_id=local_id, outbox_id=outbox_id)
    except InvalidEdit as exc:
        reasons = "; ".join(f"{k}: {v}" for k, v in exc.field_errors.items()) or str(exc)
        _put(settings, person, conn.id, "error", email=email, error=reasons)


def _still_queued(part: Settings, link: Link) -> bool:
    """Whether the link's create still waits in its connection's outbox (a CRM that was
    unreachable: it goes with the next push, so queueing it again would send it twice)."""
    if link.outbox_id is None:
        return False
    with store.open(part) as db:
        row = db.outbox.get_edit(link.outbox_id)
    return row is not None and row["status"] in ("pending", "conflict")


def _put(settings: Settings, person: str, connection_id: str, status: Any, **fields: Any) -> None:
    with store.open(settings.home) as home:
        home.links.put(person, connection_id, status=status, **fields)


def push_links(
    settings: Settings,
    connection_ids: Iterable[str] | None = None,
    *,
    by: str | None = None,
    open_api: OpenApi | None = None,
) -> dict[str, str]:
    """Push each connection that has links (default: all of them) and settle its links.

    Returns connection id -> "pushed" or the message that stopped its push. A push that
    fails (disconnected, tokens revoked, another push running) affects that connection
    only; its queued creates stay for the next push.
    """
    with store.open(settings.home) as home:
        registry = {c.id: c for c in home.connections.list()}
        wanted = list(connection_ids) if connection_ids is not None else list(registry)
    outcome: dict[str, str] = {}
    for connection_id in wanted:
        conn = registry.get(connection_id)
        if conn is None:
            continue
        outcome[connection_id] = _push_one(settings, conn, by=by, open_api=open_api)
    return outcome


def _push_one(settings: Settings, conn: Connection, *, by: str | None, open_api: OpenApi | None) -> str:
    part = connections.settings_for(settings, conn)
    crm = crms.provider_for(conn.crm).words.crm
    try:
        linked_more = _push_and_settle(settings, part, conn, by=by, open_api=open_api)
        if linked_more:
            # Creates linked to a record the CRM already had queued my fields as edits.
            _push_and_settle(settings, part, conn, by=by, open_api=open_api)
    except NotConnected as exc:
        reason = str(exc).strip() or f"{crm} is not connected."
        message = f"{reason} Waiting to be sent after a reconnect."
        _mark_links(settings, conn.id, "error", message)
        log.info("Links to %s wait for a reconnect", conn.id)
        return message
    except SyncBusy as exc:
        return str(exc)
    except CrmError as exc:
        _mark_links(settings, conn.id, "pending", f"Not sent yet, will retry: {exc}")
        return str(exc)
    return "pushed"


def _push_and_settle(
    settings: Settings, part: Settings, conn: Connection, *, by: str | None, open_api: OpenApi | None
) -> int:
    """One push of a connection, then its links follow their creates; returns how many
    creates were linked to an existing record (their fields now wait as edits)."""
    if open_api is None:
        push(part, by=by)
    else:
        with open_api(part) as api:
            push(part, by=by, api=api)
    return settle_links(settings, conn, by=by, after_push=True)


def settle_after_push(part: Settings, *, by: str | None = None) -> int:
    """After a push of one connection made outside ``push_links`` (the pages' Push changes),
    its links follow it: a create that went through turns its link synced, and links in
    error because the CRM was unreachable are reachable again. Without this a contact's
    "In CRMs" badge kept saying "partial: ... not connected" after the reconnect and push
    that fixed it. ``part``: the connection's settings; none chosen, nothing to do.
    Returns how many held creates were linked to the record the CRM already had."""
    if not part.connection:
        return 0
    home = part.home
    with store.open(home) as db:
        conn = next((c for c in db.connections.list() if c.id == part.connection), None)
    if conn is None:
        return 0
    return settle_links(home, conn, by=by, after_push=True)


def settle_links(
    settings: Settings, conn: Connection, *, by: str | None = None, after_push: bool = False
) -> int:
    """Bring a connection's links in line with its outbox.

    After a push of this connection that went through (``after_push``), a link in error
    because the CRM could not be reached is reachable again. Without one (``statuses``
    settles before reporting, so pushes made elsewhere, by the scheduler or ``python -m
    crm push``, show too) such a link keeps its message while its create still waits.
    Returns how many held creates were linked to the record the CRM already had.
    """
    part = connections.settings_for(settings, conn)
    with store.open(settings.home) as home:
        links = home.links.of_connection(conn.id)
    linked = 0
    for link in links:
        if link.outbox_id is None:
            reachable = after_push and link.status == "error"
            if reachable and link.record_id and not is_local_id(link.record_id):
                _put_update(settings, link, "synced")  # reachable again; the record is there
            continue
        with store.open(part) as db:
            row = db.outbox.get_edit(link.outbox_id)
            if row is not None and row["status"] == "conflict" and row["op"] == "create":
                db.outbox.link_create(link.outbox_id, by=by)
                linked += 1
                row = db.outbox.get_edit(link.outbox_id)
        if row is not None and row["status"] == "pending" and link.status == "error" and not after_push:
            continue  # still waiting for a reconnect: the link keeps saying why
        _follow(settings, link, row)
    return linked


def _follow(settings: Settings, link: Link, row: Mapping[str, Any] | None) -> None:
    if row is None:
        _put_update(settings, link, "error", error="The queued contact is gone from this connection")
        return
    status = row["status"]
    if status in ("pushed", "linked"):
        _put_update(settings, link, "synced", record_id=str(row["record_id"]))
    elif status == "failed":
        _put_update(settings, link, "error", error=str(row.get("error") or "Refused"), keep_outbox=True)
    elif status == "discarded":
        _put_update(settings, link, "error", error="The new contact was discarded here")
    else:
        _put_update(settings, link, "pending", error=row.get("error"), keep_outbox=True)


def _put_update(
    settings: Settings,
    link: Link,
    status: Any,
    *,
    record_id: str | None = None,
    error: str | None = None,
    keep_outbox: bool = False,
) -> None:
    with store.open(settings.home) as home:
        home.links.update(
            link.person_id,
            link.connection_id,
            status=status,
            record_id=record_id,
            outbox_id=link.outbox_id if keep_outbox else None,
            error=error,
        )


def _mark_links(settings: Settings, connection_id: str, status: Any, message: str) -> None:
    """A push of a connection that did not go through: its links take ``status`` and the reason.

    "error" (the CRM cannot be reached: disconnected, tokens revoked): every link into it,
    outbox ids kept, since the creates wait in its outbox and resume after a reconnect.
    "pending" (a failure for a while): only the links still queued, which keep waiting.
    """
    with store.open(settings.home) as home:
        with home.atomic():
            for link in home.links.of_connection(connection_id):
                if status == "pending" and (link.outbox_id is None or link.status != "pending"):
                    continue
                if link.outbox_id is None and not link.record_id:
                    continue  # refused here before reaching the CRM: its own reason stays
                home.links.update(
                    link.person_id, connection_id, status=status, outbox_id=link.outbox_id, error=message
                )


def link_status(settings: Settings, person_id: str) -> PersonStatus:
    """Where a person stands: synced, partial (which CRM failed and why) or local only."""
    with store.open(settings.home) as home:
        names = {c.id: c.name for c in home.connections.list()}
        links = home.links.of_person(person_id)
    return summarize(person_id, links, names)


def summarize(person_id: str, links: Sequence[Link], names: Mapping[str, str]) -> PersonStatus:
    """A person's links in one state (see ``PersonStatus``); no database needed."""
    named = tuple(
        sorted(((names.get(k.connection_id, k.connection_id), k) for k in links), key=lambda p: p[0])
    )
    synced = [name for name, link in named if link.status == "synced"]
    problems = tuple(
        (name, link.error or ("waiting for the next push" if link.status == "pending" else "failed"))
        for name, link in named
        if link.status != "synced"
    )
    state: LinkSummary
    if named and len(synced) == len(named):
        state = "synced"
    elif synced:
        state = "partial"
    else:
        state = "local only"
    email = next((link.email for _, link in named if link.email), None)
    return PersonStatus(person_id, email, state, named, problems)


def statuses(settings: Settings, email: str | None = None, *, settle: bool = True) -> list[PersonStatus]:
    """Every linked person (with this email), by email; ``settle``: each connection's
    links follow its outbox first (local reads only, no CRM is asked)."""
    if settle:
        with store.open(settings.home) as home:
            registry = home.connections.list()
        for conn in registry:
            settle_links(settings, conn)
    with store.open(settings.home) as home:
        names = {c.id: c.name for c in home.connections.list()}
        people = home.links.people(email=email)
        found = home.links.of_people(people)
    return [summarize(person, found[person], names) for person in people]


def edit_everywhere(
    settings: Settings, person_id: str, values: Mapping[str, Any], *, by: str | None = None
) -> dict[str, str]:
    """Queue an edit of a linked contact (neutral fields) in every connection it is linked to.

    Each connection's edit is queued against its own cache's value (its base), so its
    push checks it three ways on its own: a conflict in one CRM never blocks the others.
    Returns connection id -> "queued" or the reason it was not (its validation, no record).
    """
    with store.open(settings.home) as home:
        registry = {c.id: c for c in home.connections.list()}
        links = home.links.of_person(person_id)
    outcome: dict[str, str] = {}
    for link in links:
        conn = registry.get(link.connection_id)
        if conn is None or not link.record_id:
            outcome[link.connection_id] = "no record to edit in this connection"
            continue
        part = connections.settings_for(settings, conn)
        try:
            with store.open(part) as db:
                mapped = crm_values(db, contacts_info(conn.crm), values)
            queue_edits(part, "contacts", {link.record_id: mapped}, by=by)
            outcome[link.connection_id] = "queued"
        except InvalidEdit as exc:
            outcome[link.connection_id] = "; ".join(f"{k}: {v}" for k, v in exc.field_errors.items()) or str(
                exc
            )
    return outcome
