"""A fresh cache per test on each backend (SQLite, PostgreSQL), and a tiny record type for upserts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm import store
from crm.hubspot import Record
from crm.store import Store


def Rec(
    record_id: str,
    properties: dict[str, str | None] | None = None,
    *,
    updated_at: str = "2024-02-01T00:00:00.000Z",
    archived: bool = False,
) -> Record:
    """A record as the client hands it over."""
    return Record(record_id, dict(properties or {}), "2024-01-01T00:00:00.000Z", updated_at, archived)


@pytest.fixture
def rec():
    """Records as later reads of HubSpot return them: each one newer than the seed data."""
    ticks = itertools.count(1)

    def later(record_id, properties=None, *, updated_at=None, archived=False):
        stamp = updated_at or f"2025-01-01T00:00:00.{next(ticks):03d}Z"
        return Rec(record_id, properties, updated_at=stamp, archived=archived)

    return later


CONTACT_DEFS = [
    {"name": "email", "type": "string", "field_type": "text", "hubspot_defined": True},
    {"name": "firstname", "type": "string", "field_type": "text", "hubspot_defined": True},
    {"name": "lastname", "type": "string", "field_type": "text", "hubspot_defined": True},
    {"name": "phone", "type": "string", "field_type": "phonenumber", "hubspot_defined": True},
    {"name": "company", "type": "string", "field_type": "text", "hubspot_defined": True},
    {
        "name": "lifecyclestage",
        "type": "enumeration",
        "field_type": "radio",
        "hubspot_defined": True,
        "options": [{"label": "Lead", "value": "lead"}, {"label": "Customer", "value": "customer"}],
    },
    {"name": "hubspot_owner_id", "type": "enumeration", "field_type": "select", "hubspot_defined": True},
    {
        "name": "lastmodifieddate",
        "type": "datetime",
        "field_type": "date",
        "hubspot_defined": True,
        "read_only": True,
    },
    {"name": "hs_internal_score", "type": "number", "field_type": "number", "hubspot_defined": True},
    {"name": "score", "type": "number", "field_type": "number", "hubspot_defined": False},
    {"name": "vip", "type": "bool", "field_type": "booleancheckbox", "hubspot_defined": False},
    {"name": "birthday", "type": "date", "field_type": "date", "hubspot_defined": False},
]


@pytest.fixture
def db(cache_target: str) -> Iterator[Store]:
    """A fresh cache on each backend in turn (SQLite, then PostgreSQL)."""
    with store.open(cache_target) as database:
        yield database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite cache, for what only SQLite has (its query planner, its file)."""
    with store.open(tmp_path / "crm.db") as database:
        yield database


@pytest.fixture
def contacts_db(db: Store) -> Store:
    """A cache with contact definitions (three custom properties) and three contacts."""
    return with_contacts(db)


@pytest.fixture
def sqlite_contacts_db(sqlite_db: Store) -> Store:
    """``contacts_db`` on SQLite only (for tests of SQLite's query plans)."""
    return with_contacts(sqlite_db)


def with_contacts(db: Store) -> Store:
    db.records.save_property_defs("contacts", CONTACT_DEFS)
    db.records.upsert_records(
        "contacts",
        [
            Rec(
                "101",
                {
                    "firstname": "Ada",
                    "lastname": "Lovelace",
                    "email": "ada@analytical.example",
                    "phone": "+44 20 7946 0018",
                    "company": "Analytical Engines",
                    "lifecyclestage": "lead",
                    "score": "12.50",
                    "vip": "true",
                    "birthday": "1815-12-10",
                },
                updated_at="2024-03-01T00:00:00.000Z",
            ),
            Rec(
                "102",
                {
                    "firstname": "Grace",
                    "lastname": "Hopper",
                    "email": "grace@navy.example",
                    "phone": "+1 (555) 123-4567",
                    "company": "US Navy",
                    "lifecyclestage": "customer",
                    "score": "99",
                    "vip": "false",
                },
                updated_at="2024-04-01T00:00:00.000Z",
            ),
            Rec(
                "103",
                {
                    "firstname": "Émile",
                    "lastname": None,
                    "email": "emile@example.org",
                    "company": "Baudot & Cie",
                    "lifecyclestage": "lead",
                },
                updated_at="2024-02-01T00:00:00.000Z",
            ),
        ],
    )
    return db
