"""Every connection at a glance, for the Connect and Sync pages: status, last sync, queued edits.

Each line is read from that connection's own partition (its tokens, sync runs and outbox), so
one connection that cannot be read shows as "unavailable" without hiding the others.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd

from crm import connections
from crm.config import Settings
from crm.errors import CrmError
from ui import data
from ui.columns import ago
from ui.selection import label

log = logging.getLogger(__name__)

STATUS_LABELS = {
    "connected": "Connected",
    "needs_reconnect": "Needs reconnecting",
    "disconnected": "Not connected",
    "syncing": "Syncing",
    "unavailable": "Unavailable",
}

CRM_LABELS = {"hubspot": "HubSpot", "pipedrive": "Pipedrive"}


@dataclasses.dataclass(frozen=True)
class Line:
    """One connection as the pages list it. ``status``: a key of ``STATUS_LABELS``; ``queued``:
    the edits a removal would lose; ``run``: its latest sync run, if any."""

    connection: connections.Connection
    settings: Settings
    status: str
    queued: int
    last_sync_at: str | None
    run: dict[str, Any] | None

    @property
    def is_syncing(self) -> bool:
        return self.status == "syncing"


def line(home: Settings, connection: connections.Connection) -> Line:
    """One connection's status, read from its own partition (``crm.connections.status``)."""
    part = connections.settings_for(home, connection)
    try:
        found = connections.status(home, connection)
        with data.open_cache(part) as db:
            run = db.syncstate.latest_run()
    except CrmError as exc:
        log.info("connection %s unavailable: %s", connection.id, type(exc).__name__)
        return Line(connection, part, "unavailable", 0, None, None)
    state = "syncing" if found.syncing else found.state
    return Line(connection, part, state, found.pending_edits + found.conflicts, found.last_sync_at, run)


def lines(home: Settings, known: tuple[connections.Connection, ...]) -> list[Line]:
    return [line(home, c) for c in known]


def last_sync(item: Line) -> str:
    """The last sync in words: "running now", when the last successful one ended, or "never"."""
    if item.is_syncing:
        return "running now"
    if item.last_sync_at:
        return ago(item.last_sync_at)
    return "never" if item.run is None else f"never succeeded (last: {item.run.get('state')})"


def frame(found: list[Line]) -> pd.DataFrame:
    """The connections table: plain values only (the grid renders them as text)."""
    return pd.DataFrame(
        [
            {
                "Name": label(item.connection),
                "CRM": CRM_LABELS.get(str(item.connection.crm), str(item.connection.crm)),
                "Account": item.connection.account_id,
                "Status": STATUS_LABELS.get(item.status, item.status),
                "Last sync": last_sync(item),
                "Queued edits": item.queued,
                "Id": item.connection.id,
            }
            for item in found
        ],
        columns=["Name", "CRM", "Account", "Status", "Last sync", "Queued edits", "Id"],
    )
