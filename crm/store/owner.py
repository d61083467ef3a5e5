"""The base of every table-owning module's verbs: a view of one ``Store``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm.store.engine import Conn
    from crm.store.handle import Store


class TableOwner:
    """Verbs over the tables one module owns, bound to one open ``Store``.

    Writes run inside ``self.db.atomic()``, so they are one transaction on their own and
    a savepoint inside a caller's ``atomic()``. A verb that needs another module's table
    calls that module's verbs (``self.db.outbox...``): each table has one writer.
    """

    def __init__(self, db: Store) -> None:
        self.db = db

    @property
    def conn(self) -> Conn:
        return self.db.conn
