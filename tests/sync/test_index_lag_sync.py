"""The incremental pull against a late, out-of-order search index, and the same-millisecond walk.

On SQLite only: the subject is the pull's lookback and walks over HubSpot's search (which
changes it asks for, and when), not the cache they land in; each waits out seconds of lag.
"""

from __future__ import annotations

import math

import pytest

from crm.hubspot import HubSpotClient, StaticToken
from crm.sync import run_sync
from crm.sync.runstate import OVERLAP_MS
from tests.pgcluster import sqlite_only
from tests.sync.synchelpers import differences, wait_for

# Each write reaches search 2.5 to 5 s late, in random order: longer than an incremental run.
LAG_MS, JITTER_MS = 2_500.0, 2_500.0
ROUNDS = 3
STAMP = 1_700_000_000_000


def searchable(client: HubSpotClient, title: str) -> int:
    page = client.search(
        "contacts",
        filter_groups=[{"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": title}]}],
        properties=["jobtitle"],
    )
    return page.total


@sqlite_only
def test_changes_search_shows_late_are_not_missed_across_several_incremental_syncs(
    sandbox, settings, db, fast_client
):
    assert LAG_MS + JITTER_MS < OVERLAP_MS  # the lookback this test proves enough
    run_sync(settings, kind="full")
    sandbox.configure(index_lag_ms=LAG_MS, index_lag_jitter_ms=JITTER_MS)
    ids = sorted((r["id"] for r in sandbox.truth("contacts")), key=int)
    late = 0
    for round_no in range(ROUNDS):
        changed = ids[3 * round_no : 3 * round_no + 3]
        for record_id in changed:
            sandbox.patch_object("contacts", record_id, {"jobtitle": f"Lag {round_no}"})
        run_sync(settings)  # at once: search does not show these changes yet
        late += sum(db.queries.get_record("contacts", i)["jobtitle"] != f"Lag {round_no}" for i in changed)
    assert late > 0, "the index lag never hid a change from the run right after it"

    wait_for(lambda: searchable(fast_client, f"Lag {ROUNDS - 1}") == 3, timeout=20, interval=0.2)
    run_sync(settings)

    for round_no in range(ROUNDS):
        for record_id in ids[3 * round_no : 3 * round_no + 3]:
            assert db.queries.get_record("contacts", record_id)["jobtitle"] == f"Lag {round_no}"
    assert differences(db, sandbox) == []


@pytest.mark.slow
@sqlite_only
def test_more_than_10000_records_on_one_millisecond_are_walked_by_id_once_each_and_the_walk_ends(
    sandbox, settings
):
    sandbox.reset(seed=5, contacts=10_060, companies=0, deals=0, owners=1, tickets=0, engagements=0)
    sandbox.configure(search_limit=1000)
    ids = sorted((r["id"] for r in sandbox.truth("contacts")), key=int)
    assert sandbox.stamp("contacts", STAMP, ids=ids[:10_050]) == 10_050
    assert sandbox.stamp("contacts", STAMP + 5, ids=ids[10_050:]) == 10
    before = sandbox.stats()["requests"].get("POST /crm/v3/objects/{objectType}/search", 0)
    # Pages of 200, re-anchored; the 10,000 cap is met once and the millisecond walked by id.
    bound = 2 * math.ceil(10_060 / 200) + 10

    seen: list[str] = []
    with HubSpotClient(settings, StaticToken(settings.access_token)) as client:
        for pages, batch in enumerate(client.iter_modified_since("contacts", STAMP, properties=[]), 1):
            assert pages <= bound, "the walk does not end"
            seen += [r.id for r in batch]

    searches = sandbox.stats()["requests"]["POST /crm/v3/objects/{objectType}/search"] - before
    assert len(seen) == len(set(seen)) == 10_060
    assert set(seen[-10:]) == set(ids[10_050:])  # the walk went on past the crowded millisecond
    assert searches <= bound
