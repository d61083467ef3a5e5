"""Store verbs behind merges and GDPR deletions, on both backends."""

from __future__ import annotations

from crm.store import Store


def _assoc(db: Store) -> set[tuple[str, str, str, str]]:
    rows = db.conn.execute("SELECT from_type, from_id, to_type, to_id FROM associations").fetchall()
    return {tuple(str(v) for v in row) for row in rows}


def test_a_merge_moves_associations_both_ways_without_duplicates_and_drops_the_loser_rows(contacts_db):
    db = contacts_db
    db.records.replace_associations(
        "contacts", "companies", ["101", "102"], {"101": [("7", 1)], "102": [("7", 1)]}
    )
    db.records.replace_associations("deals", "contacts", ["55"], {"55": [("101", 3)]})

    assert db.records.merge_away("contacts", ["101"], "102") == 1

    assert db.queries.get_record("contacts", "101") is None
    assert _assoc(db) == {("contacts", "102", "companies", "7"), ("deals", "55", "contacts", "102")}


def test_repointed_edits_keep_their_base_show_on_the_winner_and_the_later_edit_of_a_field_wins(contacts_db):
    db = contacts_db
    db.outbox.queue_updates("contacts", {"102": {"lastname": "Earlier"}}, by="a")
    db.outbox.queue_updates("contacts", {"101": {"lastname": "Later", "company": "Moved"}}, by="b")

    moved = db.outbox.repoint_edits("contacts", ["101"], "102", note="contact 101 merged into 102")

    assert moved == 2
    rows = {r["new_value"]: r for r in db.outbox.rows("contacts")}
    assert (rows["Earlier"]["record_id"], rows["Earlier"]["status"]) == ("102", "discarded")
    assert (rows["Later"]["record_id"], rows["Later"]["status"], rows["Later"]["base_value"]) == (
        "102",
        "pending",
        "Lovelace",
    )
    assert db.queries.get_record("contacts", "102")["lastname"] == "Later"
    assert db.queries.get_record("contacts", "102")["company"] == "Moved"
    audit = db.outbox.audit_log()
    assert sorted(audit["result"]) == ["discarded", "re-pointed", "re-pointed"]
    assert all("merged into 102" in d for d in audit["detail"])


def test_forgetting_a_record_drops_its_edits_and_blanks_the_values_its_audit_lines_hold(contacts_db):
    db = contacts_db
    db.outbox.queue_updates("contacts", {"101": {"firstname": "Secret"}}, by="a")
    [row] = db.outbox.rows("contacts")
    db.outbox.discard_edit(row["id"], by="a")
    db.outbox.queue_updates(
        "contacts", {"101": {"lastname": "Also secret"}, "102": {"lastname": "Kept"}}, by="a"
    )

    assert db.outbox.forget_record("contacts", ["101"], note="GDPR") == 2
    assert db.records.purge("contacts", ["101"]) == 1

    assert [r["record_id"] for r in db.outbox.rows("contacts")] == ["102"]
    audit = db.outbox.audit_log()
    assert list(audit["result"]) == ["discarded"] and list(audit["by"]) == ["a"]
    assert audit["old_value"].isna().all() and audit["new_value"].isna().all()
    assert list(audit["detail"]) == ["GDPR"]
    assert db.queries.get_record("contacts", "101") is None


def test_notes_keep_the_newest_first_up_to_the_limit(db):
    for n in range(4):
        db.meta.add_note("live.notes", {"n": n}, keep=3)
    assert [note["n"] for note in db.meta.notes("live.notes")] == [3, 2, 1]


def test_forgetting_objects_drops_only_their_processed_events(db):
    events = [
        {"portalId": 1, "subscriptionId": 1, "eventId": i, "objectId": oid, "subscriptionType": kind}
        for i, (oid, kind) in enumerate(
            [(5, "contact.propertyChange"), (5, "deal.creation"), (6, "contact.creation")]
        )
    ]
    db.inbox.add_events(events, received_at="2026-01-01T00:00:00+00:00", received_ts=0.0)
    db.inbox.mark_processed([(1, 1, 0), (1, 1, 1), (1, 1, 2)], at="2026-01-01T00:00:01+00:00")

    assert db.inbox.forget_objects("contact", ["5"]) == 1
    assert sorted(e[0] for e in db.conn.execute("SELECT event_id FROM webhook_inbox").fetchall()) == [1, 2]
