"""Cached records: typed storage, idempotent upserts, new columns, and the UI's queries."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pytest

from crm.hubspot import Record
from crm.store import values

_TICKS = itertools.count(1)


def Rec(record_id, properties=None, *, updated_at=None):
    """A record as a later read of HubSpot returns it: newer than the seed data."""
    stamp = updated_at or f"2025-01-01T00:00:00.{next(_TICKS):03d}Z"
    return Record(record_id, dict(properties or {}), "2024-01-01T00:00:00.000Z", stamp)


def test_wire_values_are_stored_typed_and_come_back_as_hubspot_strings():
    assert values.to_column("1500.00", "number") == 1500.0
    assert values.to_column("true", "bool") == 1
    assert values.to_column("2024-05-01T00:00:00.000Z", "date") == "2024-05-01"
    assert values.to_column("1714521600000", "datetime") == "2024-05-01T00:00:00.000Z"
    assert values.to_wire(1500.0, "number") == "1500"
    assert values.to_wire(0.1, "number") == "0.1"
    assert values.to_wire(0, "bool") == "false"
    assert values.to_column("", "string") is None


def test_same_value_compares_the_way_hubspot_means_it():
    assert values.same_value("1500.00", "1500", "number")
    assert values.same_value("2024-05-01T00:00:00Z", "2024-05-01T00:00:00.000Z", "datetime")
    assert values.same_value("", None, "string")
    assert values.same_value("a;b", "b;a", "enumeration")
    assert not values.same_value("Ada", "ada", "string")


def test_numbers_booleans_and_dates_sort_and_filter_as_typed_columns(contacts_db):
    row = contacts_db.queries.get_record("contacts", "101")
    assert row["score"] == 12.5 and row["vip"] == 1 and row["birthday"] == "1815-12-10"
    frame, total = contacts_db.queries.query_records("contacts", sort="score", descending=True)
    assert list(frame.index) == ["102", "101", "103"]
    frame, total = contacts_db.queries.query_records("contacts", filters={"score": {"min": 50}})
    assert list(frame.index) == ["102"] and total == 1


def test_upserting_the_same_records_twice_changes_nothing(contacts_db):
    before = contacts_db.conn.execute("SELECT * FROM contacts ORDER BY id").fetchall()
    contacts_db.records.upsert_records(
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
        ],
        synced_at=before[0][4],
    )
    after = contacts_db.conn.execute("SELECT * FROM contacts ORDER BY id").fetchall()
    assert after == before
    assert contacts_db.conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 3


def test_a_property_left_out_of_a_read_keeps_its_cached_value(contacts_db):
    contacts_db.records.upsert_records("contacts", [Rec("101", {"firstname": "Augusta"})])
    row = contacts_db.queries.get_record("contacts", "101")
    assert row["firstname"] == "Augusta" and row["lastname"] == "Lovelace"


def test_a_new_custom_property_definition_adds_a_column(contacts_db):
    contacts_db.records.save_property_defs(
        "contacts",
        [
            *[{"name": n, "type": "string"} for n in ("email", "firstname")],
            {"name": "shoe_size", "type": "number", "hubspot_defined": False},
        ],
    )
    assert "shoe_size" in contacts_db.queries.synced_property_names("contacts")
    contacts_db.records.upsert_records("contacts", [Rec("101", {"shoe_size": "38"})])
    assert contacts_db.queries.get_record("contacts", "101")["shoe_size"] == 38.0
    # HubSpot's own extra properties are not synced unless the app shows them.
    assert "hs_internal_score" not in contacts_db.queries.synced_property_names("contacts")


def test_query_returns_a_typed_frame_indexed_by_id_with_the_total(contacts_db):
    frame, total = contacts_db.queries.query_records("contacts", limit=2)
    assert isinstance(frame, pd.DataFrame) and total == 3 and len(frame) == 2
    assert list(frame.index) == ["102", "101"]  # most recently updated first
    assert frame.loc["102", "vip"] is not None and not frame.loc["102", "vip"]  # a stored false
    assert frame.loc["101", "birthday"] == dt.date(1815, 12, 10)
    assert frame.loc["101", "updated_at"] == pd.Timestamp("2024-03-01", tz="UTC")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ada", ["101"]),
        ("gra hop", ["102"]),
        ("navy.exam", ["102"]),
        ("grace@navy", ["102"]),
        ("5551234567", ["102"]),
        ("1234567", ["102"]),
        ("analytical engines", ["101"]),
        ("emile", ["103"]),
        ("nobody", []),
    ],
)
def test_contact_search_matches_name_email_company_and_phone_prefixes(contacts_db, text, expected):
    frame, total = contacts_db.queries.query_records("contacts", search=text)
    assert sorted(frame.index) == expected and total == len(expected)


def test_search_follows_edits_and_ignores_archived_contacts(contacts_db):
    contacts_db.records.upsert_records("contacts", [Rec("101", {"firstname": "Augusta"})])
    assert contacts_db.queries.query_records("contacts", search="augusta")[1] == 1
    contacts_db.records.mark_archived("contacts", ["101"])
    assert contacts_db.queries.query_records("contacts", search="augusta")[1] == 0
    assert contacts_db.queries.query_records("contacts", search="augusta", include_archived=True)[1] == 1


def test_empty_values_sort_last_in_both_directions(contacts_db):
    up, _ = contacts_db.queries.query_records("contacts", sort="lastname")
    down, _ = contacts_db.queries.query_records("contacts", sort="lastname", descending=True)
    assert list(up.index) == ["102", "101", "103"]
    assert list(down.index) == ["101", "102", "103"]


def test_filters_take_values_lists_and_reject_unknown_columns(contacts_db):
    assert contacts_db.queries.query_records("contacts", filters={"lifecyclestage": "lead"})[1] == 2
    assert (
        contacts_db.queries.query_records("contacts", filters={"lifecyclestage": ["lead", "customer"]})[1]
        == 3
    )
    assert contacts_db.queries.query_records("contacts", filters={"lastname": None})[1] == 1
    with pytest.raises(ValueError, match="unknown column"):
        contacts_db.queries.query_records("contacts", filters={"1=1; DROP TABLE contacts": "x"})
    with pytest.raises(ValueError, match="unknown column"):
        contacts_db.queries.query_records("contacts", sort="nope")


def test_paging_returns_consecutive_slices_of_one_order(contacts_db):
    pages = [
        contacts_db.queries.query_records("contacts", sort="email", offset=o, limit=1)[0] for o in range(3)
    ]
    assert [p.index[0] for p in pages] == ["101", "103", "102"]


def test_cache_version_grows_with_every_record_change(contacts_db):
    first = contacts_db.meta.cache_version()
    contacts_db.records.upsert_records("contacts", [Rec("104", {"firstname": "Alan"})])
    second = contacts_db.meta.cache_version()
    contacts_db.records.mark_archived("contacts", ["104"])
    third = contacts_db.meta.cache_version()
    assert first < second < third


def test_archive_unseen_flags_what_a_full_pull_did_not_see_but_not_local_records(contacts_db):
    stamp = values.now_iso()
    contacts_db.records.upsert_records("contacts", [Rec("101", {"firstname": "Ada"})])
    contacts_db.conn.execute("INSERT INTO contacts (id, archived) VALUES ('local-abc', 0)")
    assert contacts_db.records.archive_unseen("contacts", seen_since=stamp) == 2
    live = {r[0] for r in contacts_db.conn.execute("SELECT id FROM contacts WHERE archived = 0")}
    assert live == {"101", "local-abc"}


def test_associations_are_replaced_per_record_and_read_from_both_sides(db):
    db.records.upsert_records("companies", [Rec("900", {"name": "Acme"})])
    db.records.upsert_records("contacts", [Rec("1", {"firstname": "A"}), Rec("2", {"firstname": "B"})])
    db.records.upsert_records("deals", [Rec("50", {"dealname": "Big", "amount": "10"})])
    db.records.replace_associations(
        "contacts", "companies", ["1", "2"], {"1": [("900", 279)], "2": [("900", 1)]}
    )
    db.records.replace_associations("deals", "companies", ["50"], {"50": [("900", 341)]})
    db.records.replace_associations("contacts", "companies", ["2"], {})
    assert list(db.queries.associated_records("companies", "900", "contacts").index) == ["1"]
    assert list(db.queries.associated_records("contacts", "1", "companies").index) == ["900"]
    counts = db.queries.company_counts(["900", "901"])
    assert counts.loc["900"].tolist() == [1, 1] and counts.loc["901"].tolist() == [0, 0]


def _deals(db):
    db.records.save_pipelines(
        "deals",
        [
            {
                "id": "default",
                "label": "Sales",
                "display_order": 0,
                "stages": [
                    {
                        "id": "appointmentscheduled",
                        "label": "Appointment",
                        "display_order": 0,
                        "probability": 0.2,
                    },
                    {"id": "contractsent", "label": "Contract sent", "display_order": 1, "probability": 0.9},
                    {
                        "id": "closedwon",
                        "label": "Won",
                        "display_order": 2,
                        "probability": 1.0,
                        "is_closed": True,
                    },
                    {
                        "id": "closedlost",
                        "label": "Lost",
                        "display_order": 3,
                        "probability": 0.0,
                        "is_closed": True,
                    },
                ],
            }
        ],
    )
    db.records.upsert_records(
        "deals",
        [
            Rec(
                "1",
                {
                    "dealname": "a",
                    "amount": "100",
                    "pipeline": "default",
                    "dealstage": "appointmentscheduled",
                },
            ),
            Rec("2", {"dealname": "b", "amount": "200", "pipeline": "default", "dealstage": "contractsent"}),
            Rec(
                "3",
                {
                    "dealname": "c",
                    "amount": "400",
                    "pipeline": "default",
                    "dealstage": "closedwon",
                    "closedate": "2026-05-10T00:00:00Z",
                },
            ),
            Rec(
                "4",
                {
                    "dealname": "d",
                    "amount": "800",
                    "pipeline": "default",
                    "dealstage": "closedwon",
                    "closedate": "2026-01-10T00:00:00Z",
                },
            ),
        ],
    )


def test_deal_stage_summary_follows_the_pipeline_stage_order_with_empty_stages(db):
    _deals(db)
    summary = db.queries.deal_stage_summary("default")
    assert summary["stage_id"].tolist() == ["appointmentscheduled", "contractsent", "closedwon", "closedlost"]
    assert summary["count"].tolist() == [1, 1, 2, 0]
    assert summary["amount"].tolist() == [100.0, 200.0, 1200.0, 0.0]


def test_deal_figures_count_open_value_quarter_wins_and_weighted_forecast(db):
    _deals(db)
    figures = db.queries.deal_figures(today=dt.date(2026, 5, 20))
    assert figures == [
        {
            "currency": None,
            "deals": 4,
            "open_value": 300.0,
            "won_this_quarter": 400.0,
            "weighted_forecast": pytest.approx(200.0),
        }
    ]


def test_deal_figures_and_the_stage_summary_never_add_two_currencies(db):
    _deals(db)
    db.records.save_property_defs("deals", [{"name": "deal_currency_code", "type": "string"}])
    # Deals 1 and 3 in euros (one written in lower case), 2 in dollars, 4 (won in January) names none.
    db.records.upsert_records(
        "deals",
        [
            Rec(
                "1",
                {
                    "amount": "100",
                    "pipeline": "default",
                    "dealstage": "appointmentscheduled",
                    "deal_currency_code": "EUR",
                },
            ),
            Rec(
                "2",
                {
                    "amount": "200",
                    "pipeline": "default",
                    "dealstage": "contractsent",
                    "deal_currency_code": "USD",
                },
            ),
            Rec(
                "3",
                {
                    "amount": "400",
                    "pipeline": "default",
                    "dealstage": "closedwon",
                    "closedate": "2026-05-10T00:00:00Z",
                    "deal_currency_code": "eur",
                },
            ),
        ],
    )
    figures = db.queries.deal_figures(today=dt.date(2026, 5, 20), currency="deal_currency_code")
    assert figures == [
        {
            "currency": "EUR",
            "deals": 2,
            "open_value": 100.0,
            "won_this_quarter": 400.0,
            "weighted_forecast": pytest.approx(20.0),
        },
        {
            "currency": "USD",
            "deals": 1,
            "open_value": 200.0,
            "won_this_quarter": 0.0,
            "weighted_forecast": pytest.approx(180.0),
        },
        {"currency": None, "deals": 1, "open_value": 0.0, "won_this_quarter": 0.0, "weighted_forecast": 0.0},
    ]
    euros = db.queries.deal_stage_summary("default", currency="deal_currency_code", in_currency="EUR")
    assert euros["count"].tolist() == [1, 0, 1, 0] and euros["amount"].tolist() == [100.0, 0.0, 400.0, 0.0]
    none = db.queries.deal_stage_summary("default", currency="deal_currency_code", in_currency=None)
    assert none["count"].tolist() == [0, 0, 1, 0] and none["amount"].tolist() == [0.0, 0.0, 800.0, 0.0]
    # The account's currency named: a deal naming none is in it, summed with those naming it.
    in_euros = db.queries.deal_figures(
        today=dt.date(2026, 5, 20), currency="deal_currency_code", default_currency="eur"
    )
    assert [(f["currency"], f["deals"]) for f in in_euros] == [("EUR", 3), ("USD", 1)]
    summary = db.queries.deal_stage_summary(
        "default", currency="deal_currency_code", in_currency="EUR", default_currency="EUR"
    )
    assert summary["amount"].tolist() == [100.0, 0.0, 1200.0, 0.0]
    # A currency column no synced deal has yet: every deal names none.
    assert [f["currency"] for f in db.queries.deal_figures(today=dt.date(2026, 5, 20), currency="nope")] == [
        None
    ]


def test_owners_and_pipelines_read_back_in_display_order(db):
    db.records.save_owners(
        [
            {"id": "7", "email": "zoe@example.com", "first_name": "Zoe", "last_name": "Z"},
            {"id": "8", "email": "al@example.com", "first_name": None, "last_name": None},
        ],
    )
    owners = db.queries.owners_frame()
    assert owners.loc["7", "name"] == "Zoe Z" and owners.loc["8", "name"] == "al@example.com"
    db.records.save_owners([{"id": "7", "email": "zoe@example.com"}])
    assert list(db.queries.owners_frame().index) == ["7"]
    _deals(db)
    assert [s["id"] for s in db.queries.pipelines()[0]["stages"]][:2] == [
        "appointmentscheduled",
        "contractsent",
    ]


def test_counts_leave_out_archived_records(contacts_db):
    contacts_db.records.mark_archived("contacts", ["103"])
    assert contacts_db.queries.counts()["contacts"] == 2


def test_an_older_copy_of_a_record_never_replaces_a_newer_one(contacts_db):
    newer = Rec("101", {"firstname": "Augusta"}, updated_at="2030-01-02T00:00:00.000Z")
    older = Rec("101", {"firstname": "Ada (stale page)"}, updated_at="2030-01-01T00:00:00.000Z")
    contacts_db.records.upsert_records("contacts", [newer], synced_at="2030-01-02T00:00:01.000Z")
    contacts_db.records.upsert_records("contacts", [older], synced_at="2030-01-03T00:00:00.000Z")
    row = contacts_db.queries.get_record("contacts", "101")
    assert row["firstname"] == "Augusta"
    assert row["updated_at"] == "2030-01-02T00:00:00.000Z"
    # The stale copy was still seen, so a full pull must not flag the record as deleted.
    assert row["synced_at"] == "2030-01-03T00:00:00.000Z"


def test_a_whole_email_address_is_found_through_the_email_index(sqlite_contacts_db):
    contacts_db = sqlite_contacts_db
    frame, total = contacts_db.queries.query_records("contacts", search="ADA@Analytical.example")
    assert list(frame.index) == ["101"] and total == 1
    plan = contacts_db.conn.execute(
        'EXPLAIN QUERY PLAN SELECT id FROM contacts WHERE lower("email") = lower(?) AND archived = 0',
        ("ada@analytical.example",),
    ).fetchall()
    assert "contacts_email_lower" in str(plan)


def test_sorting_by_last_modified_walks_an_index_in_hubspots_order(sqlite_contacts_db):
    contacts_db = sqlite_contacts_db
    stamps_in = [f"2030-03-0{day}T10:00:00.000Z" for day in (4, 1, 7, 2)]
    contacts_db.records.upsert_records(
        "contacts",
        [Rec(str(500 + n), {"lastmodifieddate": at}, updated_at=at) for n, at in enumerate(stamps_in)],
    )
    statements: list[str] = []
    contacts_db.conn._raw.set_trace_callback(statements.append)
    frame, _ = contacts_db.queries.query_records(
        "contacts", sort="lastmodifieddate", descending=True, columns=["lastmodifieddate"]
    )
    contacts_db.conn._raw.set_trace_callback(None)
    assert list(frame.index[:4]) == ["502", "500", "503", "501"]
    page = next(s for s in statements if "ORDER BY" in s)
    plan = str(contacts_db.conn.execute("EXPLAIN QUERY PLAN " + page).fetchall())
    # No sort of every matching row: the rows come off an index already in order (only
    # rows sharing one timestamp are put in id order).
    assert "USING INDEX contacts_archived_updated" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan


def test_a_search_total_counts_the_matching_contacts_that_are_not_archived(contacts_db):
    assert contacts_db.queries.query_records("contacts", search="example")[1] == 3
    contacts_db.records.mark_archived("contacts", ["102"])
    frame, total = contacts_db.queries.query_records("contacts", search="example")
    assert total == 2 and sorted(frame.index) == ["101", "103"]
    assert contacts_db.queries.query_records("contacts", search="example", include_archived=True)[1] == 3
    assert (
        contacts_db.queries.query_records("contacts", search="example", filters={"lifecyclestage": "lead"})[1]
        == 2
    )


def test_a_ticket_or_company_search_ignores_case_in_any_alphabet(db):
    """SQLite's own lower() and LIKE fold only A-Z: "не работает" must still find "Не работает"."""
    db.records.save_property_defs("tickets", [{"name": "subject", "type": "string", "field_type": "text"}])
    db.records.upsert_records(
        "tickets",
        [
            Rec("7", {"subject": "Не работает вход"}),
            Rec("8", {"subject": "ÉCRAN noir"}),
            Rec("9", {"subject": "Login"}),
        ],
    )
    db.records.save_property_defs("companies", [{"name": "name", "type": "string", "field_type": "text"}])
    db.records.upsert_records("companies", [Rec("3", {"name": "Ωmega Straße"})])
    for text, expected in [("не РАБОТАЕТ", ["7"]), ("écran", ["8"]), ("LOGIN", ["9"])]:
        frame, total = db.queries.query_records("tickets", search=text)
        assert (sorted(frame.index), total) == (expected, 1), text
    frame, _ = db.queries.query_records("companies", search="ωMEGA")
    assert list(frame.index) == ["3"]
