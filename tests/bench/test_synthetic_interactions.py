"""Synthetic engagements and tickets for the scale benchmarks, on both backends.

The filler writes straight into the tables (COPY on PostgreSQL), so these check that what
it leaves behaves like synced data through the store's own reads: the timeline pages, the
interaction search index, the tickets table.
"""

from __future__ import annotations

import datetime as dt

from crm import store
from crm.store.synthetic import fill_interactions, fill_synthetic, settle

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_one_contact_gets_the_heavy_timeline_another_the_light_one_and_all_text_is_searchable(
    cache_target: str,
) -> None:
    with store.open(cache_target) as db:
        counts = fill_synthetic(db, contacts=300, companies=20, seed=3, now=NOW)
        assert counts["contacts"] == 300
        filled = fill_interactions(db, interactions=400, tickets=50, heavy=120, light=5, seed=3, now=NOW)
        settle(db)
        assert (filled["interactions"], filled["tickets"]) == (400, 50)
        heavy = db.interactions.timeline("contacts", filled["heavy_contact"])
        light = db.interactions.timeline("contacts", filled["light_contact"])
        assert (heavy.total, light.total) == (120, 5)
        assert len(heavy.rows) == 25 and heavy.next_cursor is not None
        stamps = [r["occurred_at"] for r in heavy.rows]
        assert stamps == sorted(stamps, reverse=True)
        # Every text names its engagement ("Ref <id>"), so one search finds exactly one.
        some = light.rows[0]
        [hit] = db.interactions.search(f"ref {some['id']}")
        assert (hit["id"], hit["record_type"], hit["record_id"]) == (
            some["id"],
            "contacts",
            filled["light_contact"],
        )
        assert len(db.interactions.search("renewal", limit=1000)) > 10
        frame, total = db.queries.query_records("tickets", limit=10)
        assert total == 50 and frame["subject"].str.contains("problem").all()


def test_a_word_in_every_text_still_lists_the_newest_first(cache_target: str) -> None:
    """More matches than the index looks up one by one (2,000): the search walks time instead."""
    with store.open(cache_target) as db:
        fill_synthetic(db, contacts=50, seed=4, now=NOW)
        fill_interactions(db, interactions=2_100, heavy=10, seed=4, now=NOW)
        settle(db)
        hits = db.interactions.search("ref", limit=20)
        newest = db.conn.execute(
            "SELECT object_type, id FROM interactions ORDER BY occurred_at DESC, object_type DESC, id DESC LIMIT 20"
        ).fetchall()
        assert [(h["object_type"], h["id"]) for h in hits] == [(str(t), str(i)) for t, i in newest]
