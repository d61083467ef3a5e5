"""The cache: the only package in ``crm`` that writes SQL or knows which database it uses.

One way in::

    from crm import store

    with store.open(settings) as db:   # a Store; the connection closes with the block
        with db.atomic():              # nests (savepoints)
            db.outbox.queue_updates(...)

Verbs hang off the handle by the module that owns their tables:

    records    writes of records, associations, owners, pipelines, property definitions
    interactions  engagements (notes, calls, emails, meetings, tasks), bodies, timeline
    queries    the reads behind the pages (DataFrames and dicts)
    outbox     local edits, conflicts, audit log
    syncstate  sync runs, cursors, leases
    auth       OAuth states, connect tickets, the connection row, tokens
    inbox      webhook events
    meta       the cache version, the portal the cache belongs to, small facts
    connections  the registry of connections (home database) and their partitions
    links      one person's record in each connection (home database)

``values`` holds the pure conversions between HubSpot's wire strings and column
values; ``engine`` the database protocol, SQLite's engine and the migrations; ``schema``
the SQLite DDL. Errors from the database arrive as ``StoreUnavailable``.
"""

from crm.errors import StoreUnavailable
from crm.store.engine import close_engines, is_postgresql, sqlite_version
from crm.store.handle import Store, open, target_of
from crm.store.schema import OBJECT_TYPES, SCHEMA_VERSION

__all__ = [
    "OBJECT_TYPES",
    "SCHEMA_VERSION",
    "Store",
    "StoreUnavailable",
    "close_engines",
    "is_postgresql",
    "open",
    "sqlite_version",
    "target_of",
]
