"""Edge cases the small sandbox portal cannot stage, against a scripted transport.

Per-input association paging needs a record with more associations than a page holds,
and a search window where thousands of records share one millisecond needs a portal of
that size; a few scripted answers exercise the same client code in milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2

from crm.config import load_settings
from crm.hubspot import HubSpotClient, PortalLimits, StaticToken

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def scripted_client(handler: Handler, seen: list[dict[str, Any]]) -> HubSpotClient:
    def respond(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content or b"{}")
        seen.append(body)
        status_and_body = handler(body)
        return httpx2.Response(status_and_body.pop("_status", 200), json=status_and_body)

    settings = load_settings({"HUBSPOT_ACCESS_TOKEN": "pat-test", "CRM_DB": ":memory:"}, {})
    return HubSpotClient(
        settings,
        StaticToken("pat-test"),
        base_url="http://hubspot.test",
        transport=httpx2.MockTransport(respond),
        limits=PortalLimits(),
    )


def test_association_paging_is_followed_per_input_and_no_associations_is_empty():
    def handler(body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["inputs"]
        if inputs == [{"id": "1"}, {"id": "2"}]:
            return {
                "_status": 207,
                "status": "COMPLETE",
                "results": [
                    {
                        "from": {"id": "1"},
                        "to": [
                            {
                                "toObjectId": 10,
                                "associationTypes": [
                                    {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                                    {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
                                ],
                            }
                        ],
                        "paging": {"next": {"after": "cursor-1"}},
                    }
                ],
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": "No company is associated with contact 2.",
                        "context": {"fromObjectId": ["2"]},
                    }
                ],
            }
        assert inputs == [{"id": "1", "after": "cursor-1"}]
        return {
            "status": "COMPLETE",
            "results": [
                {"from": {"id": "1"}, "to": [{"toObjectId": "11", "associationTypes": [{"typeId": 279}]}]}
            ],
        }

    seen: list[dict[str, Any]] = []
    with scripted_client(handler, seen) as client:
        found = client.read_associations("contacts", "companies", ["1", "2"])
    assert found == {"1": [("10", 279), ("10", 1), ("11", 279)], "2": []}
    assert len(seen) == 2


def test_a_window_where_everything_shares_one_millisecond_is_walked_by_id():
    # 5 records modified in the same millisecond, a result cap of 2: re-anchoring on the
    # timestamp alone would loop forever; the walk pages that millisecond by record id.
    stamp = "2024-02-01T09:30:00.000Z"
    ms = "1706779800000"
    ids = [101, 102, 103, 104, 105]

    def record(i: int) -> dict[str, Any]:
        return {
            "id": str(i),
            "properties": {"hs_object_id": str(i), "lastmodifieddate": stamp},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }

    def handler(body: dict[str, Any]) -> dict[str, Any]:
        filters = body["filterGroups"][0]["filters"]
        lower = next(f for f in filters if f["propertyName"] == "lastmodifieddate")
        above = [f for f in filters if f["propertyName"] == "hs_object_id"]
        if lower["operator"] == "GTE" and int(lower["value"]) > int(ms):
            return {"total": 0, "results": []}
        matching = [i for i in ids if not above or i > int(above[0]["value"])]
        offset = int(body.get("after") or 0)
        page = matching[offset : offset + body["limit"]]
        answer: dict[str, Any] = {"total": len(matching), "results": [record(i) for i in page]}
        if offset + len(page) < min(len(matching), 2):
            answer["paging"] = {"next": {"after": str(offset + len(page))}}
        return answer

    seen: list[dict[str, Any]] = []
    with scripted_client(handler, seen) as client:
        client.search_cap = 2
        got = [
            r.id
            for batch in client.iter_modified_since("contacts", int(ms), properties=["email"])
            for r in batch
        ]
    assert got == [str(i) for i in ids]
    assert len(seen) < 12
