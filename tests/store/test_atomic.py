"""``db.atomic()``: one transaction, nested blocks are savepoints, and ``with`` closes the handle."""

from __future__ import annotations

import pytest

from crm import store
from crm.store import StoreUnavailable


class Boom(Exception):
    pass


def test_an_inner_failure_undoes_only_the_inner_block(db):
    with db.atomic():
        db.meta.put("outer", "kept")
        with pytest.raises(Boom), db.atomic():
            db.meta.put("inner", "lost")
            raise Boom
        db.meta.put("after", "kept too")
    assert (db.meta.get("outer"), db.meta.get("inner"), db.meta.get("after")) == ("kept", None, "kept too")


def test_an_outer_failure_undoes_everything_inner_blocks_wrote(db):
    with pytest.raises(Boom), db.atomic():
        db.meta.put("outer", "lost")
        with db.atomic():
            db.meta.put("inner", "lost")
        raise Boom
    assert (db.meta.get("outer"), db.meta.get("inner")) == (None, None)


def test_a_queued_edit_and_its_cache_value_are_undone_together(contacts_db):
    before = contacts_db.queries.get_record("contacts", "101")["firstname"]
    with pytest.raises(Boom), contacts_db.atomic():
        contacts_db.outbox.queue_updates("contacts", {"101": {"firstname": "Augusta"}}, by="kim")
        assert contacts_db.queries.get_record("contacts", "101")["firstname"] == "Augusta"
        raise Boom
    assert contacts_db.queries.get_record("contacts", "101")["firstname"] == before
    assert contacts_db.outbox.outbox_counts()["pending"] == 0


def test_other_connections_see_a_transaction_only_once_it_commits(db, cache_target):
    with store.open(cache_target) as other:
        with db.atomic():
            db.meta.put("k", "v")
            assert other.meta.get("k") is None
        assert other.meta.get("k") == "v"


def test_leaving_the_with_block_closes_the_connection(cache_target):
    with store.open(cache_target) as db:
        assert db.meta.ping()
    with pytest.raises(StoreUnavailable):
        db.meta.ping()
