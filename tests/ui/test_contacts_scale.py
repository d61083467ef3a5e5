"""The Contacts page with 100,000 cached contacts: paged and searched in SQL, so it stays quick."""

from __future__ import annotations

import time

import pytest
from uikit import Portal, make_portal, texts

from crm import store
from crm.store.synthetic import fill_synthetic

pytestmark = pytest.mark.slow

# Generous for a shared 2-core machine; a page that loaded every row would take far longer.
BUDGET_S = 8.0


def _timed(at) -> float:
    started = time.perf_counter()
    at.run()
    assert not at.exception
    return time.perf_counter() - started


def test_contacts_page_pages_and_searches_100k_contacts_quickly(synced: Portal) -> None:
    db = store.open(synced.settings)
    try:
        fill_synthetic(db, contacts=100_000, companies=2_000, seed=3)
        probe = db.conn.execute(
            "SELECT email FROM contacts WHERE id = (SELECT max(id) FROM contacts)"
        ).fetchone()[0]
    finally:
        db.close()

    at = synced.page("contacts")
    assert _timed(at) < BUDGET_S
    assert "100,040 contacts · page 1 of 2,001" in texts(at)
    assert len(at.data_editor[0].value) == 50

    at.get("pagination")[0].select(1500)
    assert _timed(at) < BUDGET_S
    assert "page 1,500 of 2,001" in texts(at)
    assert len(at.data_editor[0].value) == 50

    at.text_input(key="contacts_search").input(probe)
    assert _timed(at) < BUDGET_S
    assert list(at.data_editor[0].value["email"]) == [probe]


@pytest.fixture
def portal(sandbox, tmp_path):
    """SQLite only: the million-contact timings on PostgreSQL are `make bench`'s."""
    return make_portal(sandbox, str(tmp_path / "crm.db"))
