"""Several connections at once: which CRM accounts the app is connected to, and each one's cache.

A *connection* is one CRM account (a HubSpot portal, a Pipedrive company). Each has its own partition of the
store (``crm.store.connections``: a sibling SQLite file or a PostgreSQL schema) holding
every table the app has: records, outbox, conflicts, tokens, sync state, webhook inbox.
``settings_for(settings, conn)`` gives Settings whose ``db`` is that partition, so
everything that takes Settings (sync, push, webhooks, tokens, pages) works on one
connection and cannot touch another's data. The registry lives in the home database
(``CRM_DB``), beside the OAuth states (which exist before the portal is known).

    conns = list_connections(settings)                 # oldest first
    conn = resolve(settings, "Acme EU")                # by id or name; None: the only one
    with store.open(settings_for(settings, conn)) as db: ...
    status(settings, conn)                             # connected? syncing? last sync?
    remove(settings, conn)                             # revoke, drop its partition, forget it

This module sits above ``crm.store`` and ``crm.oauth`` and below the UI, sync and CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx2

from crm import oauth, store
from crm.config import Settings
from crm.errors import CrmError, DuplicateConnection, StoreUnavailable, UnknownConnection
from crm.store.connections import Connection, default_name, drop_partition

log = logging.getLogger("crm.connections")

__all__ = [
    "Connection",
    "ConnectionStatus",
    "RemoveResult",
    "add",
    "default_name",
    "list_connections",
    "pending_edits",
    "remove",
    "rename",
    "resolve",
    "settings_for",
    "status",
]


@dataclass(frozen=True)
class ConnectionStatus:
    """What the Connect and Sync pages show for one connection (no secrets).

    ``state`` is "connected", "needs_reconnect" or "disconnected" (from the partition's
    own connection row and tokens); ``syncing`` says a sync holds its lease right now.
    """

    connection: Connection
    state: str
    reason: str | None
    syncing: bool
    last_sync_at: str | None
    last_run_state: str | None
    pending_edits: int
    conflicts: int
    portal_id: int | None = None
    ui_domain: str | None = None

    @property
    def label(self) -> str:
        """One word or two for a table cell: "syncing", "connected", "needs reconnect"..."""
        if self.syncing:
            return "syncing"
        return self.state.replace("_", " ")


@dataclass(frozen=True)
class RemoveResult:
    """``revoked``: the CRM confirmed the refresh token is revoked; ``dropped_edits``: queued
    edits and conflicts that were lost with the partition."""

    connection: Connection
    revoked: bool
    detail: str
    dropped_edits: int


def list_connections(settings: Settings, *, learn: bool = True) -> list[Connection]:
    """Every connection, oldest first (read from the home database).

    The home database's own portal is registered first if no connection claims it yet
    (``adopt_home``), and with ``HUBSPOT_ACCESS_TOKEN`` set its portal is learnt from
    HubSpot's account info once (``learn=False``: not now, no HubSpot call): so a
    single-portal setup is one connection without anyone adding it.
    """
    home = settings.home
    with store.open(home) as db:
        adopt = db.connections.adopt_home
        if learn and settings.mode == "private_app" and db.connections.home_is_free():
            # The token's portal, learnt (and remembered in the home database) on first use.
            oauth.connection_info(home)
        try:
            if adopt() is not None:
                log.debug("The cache's portal was registered as a connection")
        except (DuplicateConnection, StoreUnavailable) as exc:
            log.info("Another process registered the cache's portal first (%s)", type(exc).__name__)
        return db.connections.list()


def resolve(settings: Settings, name_or_id: str | None = None) -> Connection:
    """The connection named by id or display name (case-insensitive).

    With no name: ``CRM_CONNECTION`` when set, else the only connection there is.

    Raises:
        UnknownConnection: no such connection; no name and none or several exist (the
            error's ``names`` lists them, and so does its message).
    """
    wanted = (name_or_id or "").strip() or settings.preferred_connection.strip()
    connections = list_connections(settings)
    if wanted:
        folded = wanted.casefold()
        found = next((c for c in connections if c.id == wanted or c.name.casefold() == folded), None)
        if found is not None:
            return found
    names = [c.name for c in connections]
    listing = "; ".join(f"{c.name} (id {c.id})" for c in connections) or "none"
    if wanted:
        raise UnknownConnection(f"No connection is called {wanted!r}. Connections: {listing}.", names=names)
    if len(connections) == 1:
        return connections[0]
    if not connections:
        raise UnknownConnection(
            "Nothing is connected yet; connect a HubSpot portal or a Pipedrive company first.", names=[]
        )
    raise UnknownConnection(
        f"There are {len(connections)} connections; name one (--connection). Connections: {listing}.",
        names=names,
    )


def settings_for(settings: Settings, conn: Connection) -> Settings:
    """The same settings for one connection: ``db`` its partition, ``connection`` its id."""
    return settings.for_connection(conn)


def add(
    settings: Settings,
    *,
    account_id: str | int,
    name: str | None = None,
    crm: str = "hubspot",
    base_url: str = "",
) -> Connection:
    """Register a connection for an account (its partition is created when first opened).

    Raises:
        DuplicateConnection: the account is connected already, or the name is taken.
    """
    with store.open(settings.home) as db:
        conn = db.connections.add(
            crm=crm, account_id=account_id, name=name or default_name(crm, str(account_id)), base_url=base_url
        )
    store.open(settings.for_connection(conn)).close()  # create and migrate the partition now
    log.info("Connection %s added (%s account %s)", conn.id, crm, account_id)
    return conn


def rename(settings: Settings, conn: Connection | str, name: str) -> Connection:
    """Give a connection another display name.

    Raises:
        DuplicateConnection: another connection is called that.
        UnknownConnection: no such connection.
    """
    connection_id = conn if isinstance(conn, str) else conn.id
    with store.open(settings.home) as db:
        try:
            return db.connections.rename(connection_id, name)
        except KeyError:
            raise UnknownConnection(f"No connection has the id {connection_id!r}.") from None


def pending_edits(settings: Settings, conn: Connection) -> int:
    """Edits, creates, failed edits and conflicts in the connection's outbox: what removing it loses."""
    with store.open(settings.for_connection(conn)) as db:
        return _waiting(db.outbox.outbox_counts())


def _waiting(counts: dict[str, int]) -> int:
    """Edits not yet settled: everything but pushed and discarded ones."""
    return sum(int(n) for status, n in counts.items() if status not in ("pushed", "discarded"))


def status(
    settings: Settings, conn: Connection, *, transport: httpx2.BaseTransport | None = None
) -> ConnectionStatus:
    """The connection's state from its own partition: connected or not, syncing, last sync,
    waiting edits. Never raises for a connection that is not connected."""
    chosen = settings.for_connection(conn)
    try:
        info = oauth.connection_info(chosen, transport=transport)
        state, reason = info.status, info.reason
        portal_id, ui_domain = info.portal_id, info.ui_domain
    except CrmError as exc:
        state, reason, portal_id, ui_domain = "needs_reconnect", type(exc).__name__, None, None
    with store.open(chosen) as db:
        syncing = db.syncstate.is_sync_running()
        last = db.syncstate.last_success()
        latest = db.syncstate.latest_run()
        counts = db.outbox.outbox_counts()
    return ConnectionStatus(
        connection=conn,
        state=state,
        reason=reason,
        syncing=syncing,
        last_sync_at=(last or {}).get("finished_at"),
        last_run_state=(latest or {}).get("state"),
        pending_edits=_waiting(counts) - int(counts.get("conflict", 0)),
        conflicts=int(counts.get("conflict", 0)),
        portal_id=portal_id,
        ui_domain=ui_domain,
    )


def remove(
    settings: Settings, conn: Connection, *, transport: httpx2.BaseTransport | None = None
) -> RemoveResult:
    """Remove a connection: revoke its tokens at its CRM, drop its partition, forget it.

    Its queued edits and conflicts go with it (the UI shows ``pending_edits`` first). A
    connection whose partition is the home database has that database emptied of its
    data instead (the registry and OAuth states live there). Other connections are
    untouched: they live in other files or schemas.
    """
    chosen = settings.for_connection(conn)
    lost = pending_edits(settings, conn)
    # The disconnect removes the webhooks it registered at its CRM first, while its credentials work.
    result = oauth.disconnect(chosen, transport=transport)
    _stop_background_work(chosen)
    with store.open(settings.home) as db:
        if conn.is_home:
            with db.atomic():
                db.connections.clear_home_partition()
                db.connections.remove(conn.id)
        else:
            db.connections.remove(conn.id)
        db.links.forget_connection(conn.id)  # its people stay linked to the other CRMs
    if not conn.is_home:
        drop_partition(settings.home.db, conn.target)
    log.info("Connection %s removed (%d queued edits dropped)", conn.id, lost)
    return RemoveResult(conn, result.revoked, result.message, lost)


def _stop_background_work(chosen: Settings) -> None:
    """Stop this process's webhook worker and journal poller of a partition about to go."""
    from crm import journal, webhooks

    webhooks.stop_worker(chosen)
    journal.stop_poller(chosen)
