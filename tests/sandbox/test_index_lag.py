"""Search index lag in the sandbox: late, out-of-order results near "now", and same-millisecond stamps."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from crm.sandbox.admin import SandboxAdmin

STAMP = 1_700_000_000_000


def search_ids(api: httpx2.Client, token: str) -> set[str]:
    body = {"query": token, "limit": 100, "properties": ["email"]}
    response = api.post("/crm/v3/objects/contacts/search", json=body)
    assert response.status_code == 200, response.text
    return {r["id"] for r in response.json()["results"]}


def test_a_new_record_reaches_search_only_after_the_lag(sandbox: SandboxAdmin, api: httpx2.Client) -> None:
    sandbox.configure(index_lag_ms=400.0, search_limit=1000)
    created = api.post(
        "/crm/v3/objects/contacts", json={"properties": {"email": "lagging@example.com"}}
    ).json()

    assert api.get(f"/crm/v3/objects/contacts/{created['id']}").status_code == 200  # reads are immediate
    assert search_ids(api, "lagging") == set()
    deadline = time.monotonic() + 10
    while created["id"] not in search_ids(api, "lagging"):
        assert time.monotonic() < deadline, "the record never reached the search index"


def test_writes_near_now_can_surface_out_of_order(sandbox: SandboxAdmin, api: httpx2.Client) -> None:
    sandbox.configure(index_lag_ms=0.0, index_lag_jitter_ms=1500.0, search_limit=1000)
    written = [
        api.post("/crm/v3/objects/contacts", json={"properties": {"email": f"jitter{n}@example.com"}}).json()[
            "id"
        ]
        for n in range(10)
    ]
    first_seen: dict[str, int] = {}
    deadline = time.monotonic() + 10
    poll = 0
    while len(first_seen) < len(written):
        assert time.monotonic() < deadline, "some writes never reached the search index"
        poll += 1
        for found in search_ids(api, "jitter") - set(first_seen):
            first_seen[found] = poll
    inversions = [
        (a, b) for i, a in enumerate(written) for b in written[i + 1 :] if first_seen[b] < first_seen[a]
    ]
    assert inversions, "a later write should sometimes be searchable before an earlier one"


def walk_same_millisecond(api: httpx2.Client, stamp: int) -> list[str]:
    """Every contact stamped ``stamp``, paged by (last-modified, id): the walk the client relies on."""
    seen: list[str] = []
    last_id = "0"
    for _ in range(1000):
        body: dict[str, Any] = {
            "filterGroups": [{"filters": [
                {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(stamp)},
                {"propertyName": "hs_object_id", "operator": "GT", "value": last_id},
            ]}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "limit": 200,
        }  # fmt: skip
        page = api.post("/crm/v3/objects/contacts/search", json=body).json()
        if not page["results"]:
            return seen
        seen += [r["id"] for r in page["results"]]
        last_id = seen[-1]
    raise AssertionError("the walk never ended")


@pytest.mark.slow
def test_more_than_10000_records_on_one_millisecond_are_walked_once_each(
    sandbox: SandboxAdmin, api: httpx2.Client
) -> None:
    sandbox.reset(seed=7, contacts=10_050, companies=0, deals=0, owners=1)
    sandbox.configure(search_limit=1000)
    assert sandbox.stamp("contacts", STAMP, count=10_050) == 10_050
    capped = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(STAMP)}]}
        ],
        "limit": 200,
        "after": "10000",
    }
    assert api.post("/crm/v3/objects/contacts/search", json=capped).status_code == 400  # the 10,000 cap

    seen = walk_same_millisecond(api, STAMP)

    assert len(seen) == len(set(seen)) == 10_050
