"""Syncing several connections at once: one thread per connection, each on its own partition.

Each connection's run is an ordinary ``run_sync`` on ``settings.for_connection(conn)``: its
own lease and run history (in its partition), its own client (HubSpot's tuned pull, or any
other CRM's API through the generic pull, ``crm.sync.listpull``), and its own rate limiter
(limiters are per account), so a slow or failing portal neither blocks nor starves
the others. ``SyncAll`` runs them in the background (the Sync page's *Sync all*);
``sync_all`` waits for them (``python -m crm sync --all``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crm import connections as registry
from crm.config import Settings
from crm.connections import Connection
from crm.errors import CrmError, SyncBusy
from crm.sync.runner import Kind, run_sync, split_client

log = logging.getLogger("crm.sync")


@dataclass
class SyncOutcome:
    """How one connection's run ended: ``run`` (the finished run row) or ``error``
    (``SyncBusy`` when another run of that connection holds its lease)."""

    connection: Connection
    run: dict[str, Any] | None = None
    error: CrmError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.run is not None and self.run.get("state") == "succeeded"

    @property
    def busy(self) -> bool:
        return isinstance(self.error, SyncBusy)


class SyncAll:
    """Runs a sync of every connection (or of ``connections``), one thread each.

    Args:
        client_factory: builds the client of one connection's Settings (tests): a
            HubSpotClient, or a ``CrmApi`` such as an opened ``PipedriveApi``; default: each
            run opens its own (``crm.sync.runner``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connections: Sequence[Connection] | None = None,
        client_factory: Callable[[Settings], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.connections = (
            list(connections) if connections is not None else registry.list_connections(settings)
        )
        self._client_factory = client_factory
        self._threads: list[threading.Thread] = []
        self.outcomes: dict[str, SyncOutcome] = {}

    def start(
        self, kind: Kind = "incremental", *, trigger: str = "ui", started_by: str | None = None
    ) -> None:
        """Start one run per connection in the background (a connection already syncing
        reports ``SyncBusy`` in its outcome)."""
        for conn in self.connections:
            outcome = self.outcomes[conn.id] = SyncOutcome(conn)
            thread = threading.Thread(
                target=self._run,
                args=(outcome, kind, trigger, started_by),
                name=f"sync-all:{conn.id}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _run(self, outcome: SyncOutcome, kind: Kind, trigger: str, started_by: str | None) -> None:
        chosen = self.settings.for_connection(outcome.connection)
        client = api = None
        try:
            if self._client_factory is not None:
                client, api = split_client(self._client_factory(chosen))
            outcome.run = run_sync(
                chosen, kind=kind, trigger=trigger, started_by=started_by, client=client, api=api
            )
        except CrmError as exc:
            outcome.error = exc
            if not isinstance(exc, SyncBusy):
                log.warning("sync of connection %s failed: %s", outcome.connection.id, exc)
        finally:
            if client is not None:
                client.close()
            if api is not None:
                api.close()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every run (``timeout`` for each thread); True once all have finished."""
        for thread in self._threads:
            thread.join(timeout)
        return not self.running


def sync_all(
    settings: Settings,
    *,
    kind: Kind = "incremental",
    trigger: str = "cli",
    started_by: str | None = None,
    connections: Sequence[Connection] | None = None,
    client_factory: Callable[[Settings], Any] | None = None,
) -> list[SyncOutcome]:
    """Sync every connection at once and wait: one outcome per connection, in registry order."""
    runs = SyncAll(settings, connections=connections, client_factory=client_factory)
    runs.start(kind, trigger=trigger, started_by=started_by)
    runs.wait()
    return [runs.outcomes[conn.id] for conn in runs.connections]
