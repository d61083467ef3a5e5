"""The SQLite cache: the only package in ``crm`` that writes SQL.

Submodules own one concern each: ``schema`` (tables, migrations, connections),
``records`` (CRM records, associations, owners, pipelines, property definitions and the
UI's read queries), ``syncstate`` (runs, cursors, lease), ``outbox`` (local edits,
conflicts, audit log), ``auth`` (OAuth states, connection, encrypted tokens) and
``inbox`` (webhook events). Open one ``Database`` per thread with ``open_db``.
"""

from crm.store.schema import OBJECT_TYPES, SCHEMA_VERSION, open_db, write

__all__ = ["OBJECT_TYPES", "SCHEMA_VERSION", "open_db", "write"]
