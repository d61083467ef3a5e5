"""crm.store.synthetic: a bulk-filled cache behaves like a synced one."""

from __future__ import annotations

import datetime as dt

import pytest

from crm import store
from crm.hubspot import Record
from crm.store.synthetic import fill_synthetic

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path):
    database = store.open(tmp_path / "crm.db")
    database.records.save_owners(
        [{"id": "71", "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}]
    )
    database.records.save_pipelines(
        "deals",
        [
            {
                "id": "default",
                "label": "Sales",
                "display_order": 0,
                "archived": False,
                "stages": [
                    {
                        "id": "qualifiedtobuy",
                        "label": "Qualified",
                        "display_order": 0,
                        "probability": 0.4,
                        "is_closed": False,
                        "archived": False,
                    },
                    {
                        "id": "closedwon",
                        "label": "Won",
                        "display_order": 1,
                        "probability": 1.0,
                        "is_closed": True,
                        "archived": False,
                    },
                ],
            }
        ],
    )
    database.records.upsert_records(
        "contacts",
        [
            Record(
                "101",
                {"email": "synced@example.com", "firstname": "Synced"},
                "2024-01-01T00:00:00.000Z",
                "2024-01-02T00:00:00.000Z",
            )
        ],
    )
    yield database
    database.close()


def test_fill_adds_records_with_associations_and_keeps_synced_ones(db):
    before = db.meta.cache_version()
    counts = fill_synthetic(db, contacts=500, companies=50, deals=80, seed=3)
    assert counts == {"contacts": 501, "companies": 50, "deals": 80}
    assert db.meta.cache_version() > before
    synced, _ = db.queries.query_records("contacts", filters={"email": "synced@example.com"})
    assert list(synced.index) == ["101"] and synced.loc["101", "firstname"] == "Synced"
    frame, total = db.queries.query_records(
        "deals", limit=5, columns=["dealstage", "hubspot_owner_id", "amount"]
    )
    assert total == 80
    assert set(frame["dealstage"]) <= {"qualifiedtobuy", "closedwon"} and set(frame["hubspot_owner_id"]) == {
        "71"
    }
    deal_id = frame.index[0]
    assert len(db.queries.associated_records("deals", deal_id, "contacts")) == 1
    assert len(db.queries.associated_records("deals", deal_id, "companies")) == 1
    summary = db.queries.deal_stage_summary("default")
    assert int(summary["count"].sum()) == 80


def test_filled_contacts_are_found_by_search(db):
    fill_synthetic(db, contacts=300, companies=10, seed=5)
    frame, _ = db.queries.query_records("contacts", sort="id", descending=True, limit=1, columns=["email"])
    email = frame["email"].iloc[0]
    found, total = db.queries.query_records("contacts", search=email)
    assert total == 1 and found.index[0] == frame.index[0]


def test_search_index_still_follows_inserts_after_a_fill(db):
    fill_synthetic(db, contacts=50, seed=1)
    db.records.upsert_records(
        "contacts",
        [
            Record(
                "102",
                {"email": "later@example.com", "firstname": "Zebulon"},
                "2024-01-01T00:00:00.000Z",
                "2024-01-03T00:00:00.000Z",
            )
        ],
    )
    found, total = db.queries.query_records("contacts", search="zebulon")
    assert total == 1 and list(found.index) == ["102"]


def test_same_seed_gives_the_same_records(tmp_path):
    emails = []
    for name in ("a.db", "b.db"):
        database = store.open(tmp_path / name)
        fill_synthetic(database, contacts=20, seed=9, now=NOW)
        frame, _ = database.queries.query_records(
            "contacts", sort="id", limit=20, columns=["email", "lastname", "createdate"]
        )
        emails.append(frame.to_dict())
        database.close()
    assert emails[0] == emails[1]
