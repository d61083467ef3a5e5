"""The cache's schema (SQLite DDL) and its migrations.

``MIGRATIONS[i]`` upgrades a cache from version ``i`` to ``i + 1``;
``crm.store.engine.migrate`` applies whatever is missing when a connection opens.

Record tables (``contacts``, ``companies``, ``deals``) have one column per synced
HubSpot property, named exactly as HubSpot names it, plus bookkeeping columns:

    id          HubSpot's record id (text primary key)
    archived    1 when HubSpot archived (deleted) the record
    created_at  HubSpot's createdAt (ISO-8601, UTC)
    updated_at  HubSpot's updatedAt (ISO-8601, UTC)
    synced_at   when this cache last saw the record (ISO-8601, UTC)

Columns for properties a portal adds later (custom properties) are added by
``crm.store.records`` (through ``Conn.add_column``) as definitions arrive. Numbers are REAL,
booleans INTEGER 0/1, dates and datetimes ISO-8601 TEXT (which sorts correctly).
"""

from __future__ import annotations

OBJECT_TYPES = ("contacts", "companies", "deals", "tickets")
# The record tables of version 1 (tickets came with version 5).
_V1_TYPES = ("contacts", "companies", "deals")
# The columns every record table has besides its properties.
BOOKKEEPING = ("id", "archived", "created_at", "updated_at", "synced_at")

# Properties every cache has columns for, with their SQLite affinity. Portal-specific
# ones (custom properties such as "pronouns") are added as their definitions arrive.
BASE_COLUMNS: dict[str, dict[str, str]] = {
    "contacts": {
        "email": "TEXT",
        "firstname": "TEXT",
        "lastname": "TEXT",
        "phone": "TEXT",
        "mobilephone": "TEXT",
        "jobtitle": "TEXT",
        "company": "TEXT",
        "city": "TEXT",
        "country": "TEXT",
        "lifecyclestage": "TEXT",
        "hubspot_owner_id": "TEXT",
        "createdate": "TEXT",
        "lastmodifieddate": "TEXT",
    },
    "companies": {
        "name": "TEXT",
        "domain": "TEXT",
        "industry": "TEXT",
        "phone": "TEXT",
        "city": "TEXT",
        "country": "TEXT",
        "numberofemployees": "REAL",
        "annualrevenue": "REAL",
        "hubspot_owner_id": "TEXT",
        "createdate": "TEXT",
        "hs_lastmodifieddate": "TEXT",
    },
    "deals": {
        "dealname": "TEXT",
        "amount": "REAL",
        "closedate": "TEXT",
        "pipeline": "TEXT",
        "dealstage": "TEXT",
        "dealtype": "TEXT",
        "hubspot_owner_id": "TEXT",
        "createdate": "TEXT",
        "hs_lastmodifieddate": "TEXT",
    },
    "tickets": {
        "subject": "TEXT",
        "content": "TEXT",
        "hs_pipeline": "TEXT",
        "hs_pipeline_stage": "TEXT",
        "hs_ticket_priority": "TEXT",
        "hs_ticket_category": "TEXT",
        "hubspot_owner_id": "TEXT",
        "createdate": "TEXT",
        "closed_date": "TEXT",
        "hs_lastmodifieddate": "TEXT",
    },
}


def _records_ddl(object_types: tuple[str, ...]) -> str:
    statements = []
    for object_type in object_types:
        columns = BASE_COLUMNS[object_type]
        cols = ",\n  ".join(f'"{name}" {affinity}' for name, affinity in columns.items())
        statements.append(
            f"""CREATE TABLE {object_type} (
  id TEXT PRIMARY KEY,
  archived INTEGER NOT NULL DEFAULT 0,
  created_at TEXT,
  updated_at TEXT,
  synced_at TEXT,
  {cols}
);
CREATE INDEX {object_type}_updated_at ON {object_type}(updated_at);
CREATE INDEX {object_type}_owner ON {object_type}(hubspot_owner_id);"""
        )
    return "\n".join(statements)


V1 = (
    _records_ddl(_V1_TYPES)
    + """
CREATE INDEX contacts_email ON contacts(email);
CREATE INDEX contacts_lastname ON contacts(lastname, firstname);
CREATE INDEX contacts_lifecyclestage ON contacts(lifecyclestage);
CREATE INDEX companies_name ON companies(name);
CREATE INDEX deals_stage ON deals(pipeline, dealstage);

CREATE TABLE associations (
  from_type TEXT NOT NULL,
  from_id TEXT NOT NULL,
  to_type TEXT NOT NULL,
  to_id TEXT NOT NULL,
  type_id INTEGER NOT NULL,
  PRIMARY KEY (from_type, from_id, to_type, to_id, type_id)
);
CREATE INDEX associations_to ON associations(to_type, to_id, from_type);

CREATE TABLE owners (
  id TEXT PRIMARY KEY,
  email TEXT,
  first_name TEXT,
  last_name TEXT,
  user_id INTEGER,
  type TEXT,
  teams TEXT,
  archived INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE pipelines (
  object_type TEXT NOT NULL,
  id TEXT NOT NULL,
  label TEXT NOT NULL,
  display_order INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (object_type, id)
);

CREATE TABLE pipeline_stages (
  object_type TEXT NOT NULL,
  pipeline_id TEXT NOT NULL,
  id TEXT NOT NULL,
  label TEXT NOT NULL,
  display_order INTEGER NOT NULL DEFAULT 0,
  probability REAL,
  is_closed INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (object_type, pipeline_id, id)
);

CREATE TABLE property_defs (
  object_type TEXT NOT NULL,
  name TEXT NOT NULL,
  label TEXT,
  type TEXT NOT NULL,
  field_type TEXT,
  group_name TEXT,
  options TEXT NOT NULL DEFAULT '[]',
  read_only INTEGER NOT NULL DEFAULT 0,
  calculated INTEGER NOT NULL DEFAULT 0,
  hubspot_defined INTEGER NOT NULL DEFAULT 0,
  has_unique_value INTEGER NOT NULL DEFAULT 0,
  archived INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (object_type, name)
);

CREATE TABLE sync_runs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  trigger TEXT NOT NULL DEFAULT 'ui',
  started_by TEXT,
  state TEXT NOT NULL,
  phase TEXT,
  object_type TEXT,
  done INTEGER NOT NULL DEFAULT 0,
  total INTEGER,
  requests INTEGER NOT NULL DEFAULT 0,
  retries INTEGER NOT NULL DEFAULT 0,
  rate_limited INTEGER NOT NULL DEFAULT 0,
  counts TEXT NOT NULL DEFAULT '{}',
  error TEXT,
  started_at TEXT NOT NULL,
  heartbeat_at TEXT,
  finished_at TEXT
);
CREATE INDEX sync_runs_state ON sync_runs(state);

CREATE TABLE sync_cursors (
  object_type TEXT PRIMARY KEY,
  modified_since_ms INTEGER,
  full_after TEXT,
  full_run_id INTEGER,
  full_complete INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT
);

CREATE TABLE sync_lease (
  name TEXT PRIMARY KEY,
  owner TEXT,
  run_id INTEGER,
  expires_at REAL NOT NULL DEFAULT 0
);

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  object_type TEXT NOT NULL,
  record_id TEXT,
  op TEXT NOT NULL,
  property TEXT,
  new_value TEXT,
  base_value TEXT,
  remote_value TEXT,
  payload TEXT,
  status TEXT NOT NULL,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_by TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX outbox_status ON outbox(status, object_type);
CREATE INDEX outbox_record ON outbox(object_type, record_id, property);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  object_type TEXT NOT NULL,
  record_id TEXT,
  property TEXT,
  old_value TEXT,
  new_value TEXT,
  by TEXT,
  outbox_id INTEGER,
  result TEXT NOT NULL,
  detail TEXT
);

CREATE TABLE webhook_inbox (
  portal_id INTEGER NOT NULL,
  subscription_id INTEGER NOT NULL,
  event_id INTEGER NOT NULL,
  subscription_type TEXT NOT NULL,
  object_id TEXT,
  occurred_at INTEGER,
  payload TEXT NOT NULL,
  received_at TEXT NOT NULL,
  processed_at TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  PRIMARY KEY (portal_id, subscription_id, event_id)
);
CREATE INDEX webhook_inbox_pending ON webhook_inbox(processed_at);

CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT
);

CREATE TABLE oauth_states (
  state_hash TEXT PRIMARY KEY,
  nonce_hash TEXT,
  verifier TEXT,
  staff_email TEXT,
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL,
  used_at REAL
);

CREATE TABLE connect_tickets (
  ticket_hash TEXT PRIMARY KEY,
  staff_email TEXT,
  expires_at REAL NOT NULL,
  used_at REAL
);

CREATE TABLE connection (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  mode TEXT NOT NULL,
  status TEXT NOT NULL,
  status_reason TEXT,
  portal_id INTEGER,
  hub_domain TEXT,
  ui_domain TEXT,
  user_email TEXT,
  user_id INTEGER,
  scopes TEXT NOT NULL DEFAULT '[]',
  expires_at REAL,
  connected_at TEXT,
  updated_at TEXT NOT NULL
);

CREATE TABLE tokens (
  kind TEXT PRIMARY KEY,
  portal_id INTEGER NOT NULL,
  ciphertext TEXT NOT NULL,
  expires_at REAL
);
"""
)

# Contacts search (name, email, company, phone) at 1,000,000 rows: an FTS5 index with
# prefix tables, kept in step by triggers. Contentless (content=''), keyed by the contacts
# rowid, because the text already lives in the contacts table. Phone numbers are also
# indexed as bare digits (whole, last 10, last 7) so "5551234" finds "+1 (555) 123-4567".
_FTS_TEXT = ("firstname", "lastname", "email", "company", "phone", "mobilephone")
# The contacts columns the search index covers (a search over these is the index's).
SEARCH_INDEXED = _FTS_TEXT


def _digits(column: str) -> str:
    expr = f"coalesce({column}, '')"
    for ch in (" ", "-", "(", ")", ".", "+", "/"):
        expr = f"replace({expr}, '{ch}', '')"
    return f"({expr} || ' ' || substr({expr}, -10) || ' ' || substr({expr}, -7))"


def _fts_values(row: str) -> str:
    cols = ", ".join(f"{row}.{c}" for c in _FTS_TEXT)
    return f"{cols}, {_digits(row + '.phone')} || ' ' || {_digits(row + '.mobilephone')}"


_FTS_COLUMNS = ", ".join(_FTS_TEXT) + ", digits"


def contacts_fts_rebuild_sql() -> list[str]:
    """Statements that refill the contacts search index from the contacts table."""
    return [
        "INSERT INTO contacts_fts(contacts_fts) VALUES ('delete-all')",
        f"INSERT INTO contacts_fts(rowid, {_FTS_COLUMNS}) SELECT c.rowid, {_fts_values('c')} FROM contacts c",
    ]


V2_CONTACTS_SEARCH = f"""
CREATE VIRTUAL TABLE contacts_fts USING fts5(
  {_FTS_COLUMNS}, content='', tokenize='unicode61 remove_diacritics 2', prefix='1 2 3'
);
{contacts_fts_rebuild_sql()[1]};
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
  INSERT INTO contacts_fts(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_fts_values("new")});
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
  INSERT INTO contacts_fts(contacts_fts, rowid, {_FTS_COLUMNS}) VALUES ('delete', old.rowid, {_fts_values("old")});
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF {", ".join(_FTS_TEXT)} ON contacts BEGIN
  INSERT INTO contacts_fts(contacts_fts, rowid, {_FTS_COLUMNS}) VALUES ('delete', old.rowid, {_fts_values("old")});
  INSERT INTO contacts_fts(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_fts_values("new")});
END;
CREATE INDEX contacts_archived_updated ON contacts(archived, updated_at);
"""

# A sync upserts every record it reads, mostly unchanged: re-index a contact only when a
# searched column really changed, instead of on every upsert.
_FTS_CHANGED = " OR ".join(f"old.{c} IS NOT new.{c}" for c in _FTS_TEXT)
V3_SEARCH_ONLY_ON_CHANGE = f"""
DROP TRIGGER contacts_fts_update;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF {", ".join(_FTS_TEXT)} ON contacts
WHEN {_FTS_CHANGED} BEGIN
  INSERT INTO contacts_fts(contacts_fts, rowid, {_FTS_COLUMNS}) VALUES ('delete', old.rowid, {_fts_values("old")});
  INSERT INTO contacts_fts(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_fts_values("new")});
END;
"""

# MIGRATIONS[i] takes a cache from version i to i + 1. Append; never edit a shipped step.
# New contacts are matched to cached ones by email, case-insensitively (HubSpot's emails are
# unique regardless of case), and a search for a whole address goes straight to this index.
V4_EMAIL_LOOKUP = "CREATE INDEX contacts_email_lower ON contacts(lower(email));"

# Interactions (issue 13): tickets are a record table like deals; the five engagement
# types (notes, calls, emails, meetings, tasks) share one table owned by
# ``crm.store.interactions``. Their text lives once in ``interaction_bodies`` (keyed by the
# hash of the sanitised text, so one body shared by many records, or re-read unchanged, is
# one row). ``interaction_links`` says which contact, company, deal or ticket an engagement
# belongs to, with a copy of its time, so a record's timeline is one index range walked
# newest first (keyset on occurred_at, type, id): 5,000 interactions open as fast as 5.
V5_INTERACTIONS = (
    _records_ddl(("tickets",))
    + """
CREATE INDEX tickets_stage ON tickets(hs_pipeline, hs_pipeline_stage);

CREATE TABLE interactions (
  object_type TEXT NOT NULL,
  id TEXT NOT NULL,
  archived INTEGER NOT NULL DEFAULT 0,
  occurred_at TEXT NOT NULL,
  created_at TEXT,
  updated_at TEXT,
  synced_at TEXT,
  owner_id TEXT,
  subject TEXT,
  summary TEXT,
  preview TEXT,
  body_hash TEXT,
  body_hidden INTEGER NOT NULL DEFAULT 0,
  properties TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (object_type, id)
);
CREATE INDEX interactions_body ON interactions(body_hash);
CREATE INDEX interactions_synced ON interactions(object_type, synced_at);

CREATE TABLE interaction_bodies (
  hash TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  chars INTEGER NOT NULL
);

CREATE TABLE interaction_links (
  record_type TEXT NOT NULL,
  record_id TEXT NOT NULL,
  object_type TEXT NOT NULL,
  id TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  PRIMARY KEY (record_type, record_id, object_type, id)
);
CREATE INDEX interaction_links_timeline ON interaction_links(record_type, record_id, occurred_at, object_type, id);
CREATE INDEX interaction_links_of ON interaction_links(object_type, id);
"""
)

# Interaction text search at millions of engagements (issue 13): an FTS5 index over each
# engagement's subject, summary and full text, folded as the contacts index is
# (``unicode61 remove_diacritics 2``), every search word a prefix. Contentless and keyed
# by the interactions rowid, because the text already lives in ``interactions`` and
# ``interaction_bodies`` (a body is stored once, however many engagements share it).
# Triggers keep it in step with every write of the interactions module: a contentless
# index forgets a row only when given the words it indexed, which the triggers read back
# from the old row and its body. A body's text never changes (its key is its hash) and
# the module drops a body only after no engagement refers to it, so the old words are
# always there to read. ``interactions_occurred`` serves search-everything's "newest
# first" when a word matches much of the cache.
_ITX_BODY = "(SELECT b.body FROM interaction_bodies b WHERE b.hash = {row}.body_hash)"
_ITX_COLUMNS = "subject, summary, body"


def _itx_values(row: str) -> str:
    return f"{row}.subject, {row}.summary, {_ITX_BODY.format(row=row)}"


V6_INTERACTIONS_SEARCH = f"""
CREATE VIRTUAL TABLE interactions_fts USING fts5(
  {_ITX_COLUMNS}, content='', tokenize='unicode61 remove_diacritics 2', prefix='2 3'
);
INSERT INTO interactions_fts(rowid, {_ITX_COLUMNS}) SELECT i.rowid, {_itx_values("i")} FROM interactions i;
CREATE TRIGGER interactions_fts_insert AFTER INSERT ON interactions BEGIN
  INSERT INTO interactions_fts(rowid, {_ITX_COLUMNS}) VALUES (new.rowid, {_itx_values("new")});
END;
CREATE TRIGGER interactions_fts_delete AFTER DELETE ON interactions BEGIN
  INSERT INTO interactions_fts(interactions_fts, rowid, {_ITX_COLUMNS}) VALUES ('delete', old.rowid, {_itx_values("old")});
END;
CREATE TRIGGER interactions_fts_update AFTER UPDATE OF subject, summary, body_hash ON interactions
WHEN old.subject IS NOT new.subject OR old.summary IS NOT new.summary OR old.body_hash IS NOT new.body_hash BEGIN
  INSERT INTO interactions_fts(interactions_fts, rowid, {_ITX_COLUMNS}) VALUES ('delete', old.rowid, {_itx_values("old")});
  INSERT INTO interactions_fts(rowid, {_ITX_COLUMNS}) VALUES (new.rowid, {_itx_values("new")});
END;
CREATE INDEX interactions_occurred ON interactions(occurred_at, object_type, id);
"""

# Several connections (issue 14): the registry of connections, owned by
# ``crm.store.connections``. Only the home database's copy is used (a partition carries an
# empty one, being at the same schema version). A cache that already holds a portal's data
# (the portal the cache belongs to, the connection row, or its tokens) is adopted as one
# connection whose partition is the home database itself (target ''), so its records,
# queued edits, conflicts and tokens stay where they are and nothing is copied.
V7_CONNECTIONS_TABLE = """
CREATE TABLE connections (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  crm TEXT NOT NULL,
  account_id TEXT NOT NULL,
  target TEXT NOT NULL DEFAULT '',
  base_url TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX connections_name ON connections(name);
CREATE UNIQUE INDEX connections_account ON connections(crm, account_id);
"""
# The portal of an existing single-portal cache, from the first place that knows it.
_ADOPTED_PORTAL = """(SELECT COALESCE(
    (SELECT value FROM meta WHERE key = 'cache_portal_id'),
    (SELECT CAST(portal_id AS TEXT) FROM connection WHERE id = 1 AND portal_id IS NOT NULL AND portal_id <> 0),
    (SELECT CAST(MAX(portal_id) AS TEXT) FROM tokens WHERE portal_id <> 0)
  ) AS portal)"""


def adopt_existing_portal(now_sql: str) -> str:
    """The upgrade step that registers an existing cache's portal as its one connection."""
    return f"""
INSERT INTO connections (id, name, crm, account_id, target, created_at)
SELECT 'hubspot-' || portal, 'HubSpot (portal ' || portal || ')', 'hubspot', portal, '', {now_sql}
FROM {_ADOPTED_PORTAL} AS adopted
WHERE portal IS NOT NULL AND portal <> '' AND portal <> '0';
"""


V7_CONNECTIONS = V7_CONNECTIONS_TABLE + adopt_existing_portal("strftime('%Y-%m-%dT%H:%M:%SZ', 'now')")

MIGRATIONS: list[str] = [
    V1,
    V2_CONTACTS_SEARCH,
    V3_SEARCH_ONLY_ON_CHANGE,
    V4_EMAIL_LOOKUP,
    V5_INTERACTIONS,
    V6_INTERACTIONS_SEARCH,
    V7_CONNECTIONS,
]
SCHEMA_VERSION = len(MIGRATIONS)
