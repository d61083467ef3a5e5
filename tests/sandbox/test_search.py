"""CRM search: filters, groups, sorting, paging, the 10,000 cap, archived records, index lag."""

from __future__ import annotations

import time

import httpx2
import pytest
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

SEARCH = "/crm/v3/objects/contacts/search"


def _search(api: httpx2.Client, body: dict, path: str = SEARCH) -> dict:
    response = api.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _truth(sandbox: SandboxAdmin, kind: str = "contacts") -> list[dict]:
    return [r for r in sandbox.truth(kind) if not r["archived"]]


def test_eq_filter_on_an_enumeration(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    expected = {r["id"] for r in _truth(sandbox) if r["properties"].get("lifecyclestage") == "lead"}
    body = _search(
        api,
        {
            "filterGroups": [
                {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]}
            ],
            "limit": 100,
        },
    )
    assert {r["id"] for r in body["results"]} == expected and body["total"] == len(expected)


def test_string_matching_is_case_insensitive(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = _truth(sandbox)[3]
    body = _search(
        api,
        {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "email",
                            "operator": "EQ",
                            "value": contact["properties"]["email"].upper(),
                        }
                    ]
                }
            ]
        },
    )
    assert [r["id"] for r in body["results"]] == [contact["id"]]


def test_filters_in_a_group_are_anded_and_groups_ored(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    truth = _truth(sandbox)
    expected = {
        r["id"]
        for r in truth
        if (r["properties"].get("lifecyclestage") == "customer" and r["properties"].get("hs_lead_status"))
        or r["properties"].get("lifecyclestage") == "subscriber"
    }
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"},
                        {"propertyName": "hs_lead_status", "operator": "HAS_PROPERTY"},
                    ]
                },
                {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "subscriber"}]},
            ],
        },
    )
    assert {r["id"] for r in body["results"]} == expected


def test_in_between_and_token_operators(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    truth = _truth(sandbox)
    stages = {"lead", "customer"}
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [
                {"filters": [{"propertyName": "lifecyclestage", "operator": "IN", "values": sorted(stages)}]}
            ],
        },
    )
    assert body["total"] == sum(r["properties"].get("lifecyclestage") in stages for r in truth)

    created = sorted(r["properties"]["createdate"] for r in truth)
    low, high = created[5], created[15]
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "createdate", "operator": "BETWEEN", "value": low, "highValue": high}
                    ]
                }
            ],
        },
    )
    assert body["total"] == 11

    domain = truth[0]["properties"]["email"].split("@")[1]
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": f"*@{domain}"}]}
            ],
        },
    )
    assert body["total"] == sum(r["properties"]["email"].endswith("@" + domain) for r in truth)


def test_millisecond_values_filter_dates(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    truth = _truth(sandbox)
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [
                {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
            ],
        },
    )
    assert body["total"] == len(truth)


def test_one_sort_orders_results_and_default_is_oldest_created_first(api: httpx2.Client) -> None:
    default = _search(api, {"limit": 100})["results"]
    created = [r["properties"]["createdate"] for r in default]
    assert created == sorted(created)
    by_modified = _search(
        api, {"limit": 100, "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}]}
    )["results"]
    modified = [r["properties"]["lastmodifieddate"] for r in by_modified]
    assert modified == sorted(modified, reverse=True)
    as_string = _search(api, {"limit": 100, "sorts": ["lastmodifieddate"]})["results"]
    assert [r["id"] for r in as_string] == [r["id"] for r in reversed(by_modified)]


def test_paging_uses_offsets_with_total_and_no_link(api: httpx2.Client) -> None:
    seen, after = [], None
    while True:
        body = _search(api, {"limit": 15, **({"after": after} if after else {})})
        assert body["total"] == 40
        seen += [r["id"] for r in body["results"]]
        if "paging" not in body:
            break
        assert set(body["paging"]["next"]) == {"after"}
        after = body["paging"]["next"]["after"]
        assert after == str(len(seen))
    assert len(seen) == len(set(seen)) == 40


def test_search_returns_requested_properties_and_no_associations(api: httpx2.Client) -> None:
    result = _search(api, {"properties": ["city"], "limit": 1})["results"][0]
    assert set(result["properties"]) == {"city", "createdate", "lastmodifieddate", "hs_object_id"}
    assert "associations" not in result


def test_archived_records_never_match(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = _truth(sandbox)[0]
    api.delete(f"/crm/v3/objects/contacts/{contact['id']}").raise_for_status()
    body = _search(api, {"limit": 100})
    assert body["total"] == 39 and contact["id"] not in {r["id"] for r in body["results"]}


def test_query_matches_word_prefixes_in_searchable_fields(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    api.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "zebulon.q@example.com", "firstname": "Zebulon"}},
    ).raise_for_status()
    body = _search(api, {"query": "zebu"})
    assert [r["properties"]["firstname"] for r in body["results"]] == ["Zebulon"]


def test_association_filter_finds_a_companys_contacts(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    company = next(c for c in sandbox.truth("companies") if c["associations"]["contacts"])
    expected = {row["id"] for row in company["associations"]["contacts"]}
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "associations.company", "operator": "EQ", "value": company["id"]}
                    ]
                }
            ],
        },
    )
    assert {r["id"] for r in body["results"]} == expected


def test_deals_search_on_numbers_compares_numerically(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    deals = _truth(sandbox, "deals")
    expected = {d["id"] for d in deals if float(d["properties"]["amount"]) > 9000}
    body = _search(
        api,
        {
            "limit": 100,
            "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GT", "value": "9000"}]}],
        },
        "/crm/v3/objects/deals/search",
    )
    assert {r["id"] for r in body["results"]} == expected


@pytest.mark.parametrize(
    "body",
    [
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}] * 6},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7}]},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 6}] * 4},
        {"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]},
        {"query": "x" * 3001},
        {"after": "10000"},
    ],
    ids=[
        "6 groups",
        "7 filters",
        "24 filters",
        "2 sorts",
        "bad operator",
        "unknown property",
        "long query",
        "cap",
    ],
)
def test_invalid_searches_are_400(api: httpx2.Client, body: dict) -> None:
    assert_crm_error(api.post(SEARCH, json=body), 400, "VALIDATION_ERROR")


def test_paging_stops_before_the_10000_result_cap_while_total_counts_all(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    sandbox.reset(contacts=10_050, companies=0, deals=0)
    body = _search(api, {"limit": 200, "after": "9800"})
    assert body["total"] == 10_050
    assert len(body["results"]) == 200
    assert "paging" not in body
    assert_crm_error(api.post(SEARCH, json={"limit": 200, "after": "10000"}), 400, "VALIDATION_ERROR")


def test_limit_is_clamped_to_200(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.reset(contacts=250, companies=0, deals=0)
    assert len(_search(api, {"limit": 1000})["results"]) == 200


def test_index_lag_hides_new_records_until_it_passes(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.configure(index_lag_ms=400, search_limit=100_000)
    new = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "late@example.com"}}).json()
    query = {
        "filterGroups": [
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "late@example.com"}]}
        ]
    }
    started = time.monotonic()
    assert _search(api, query)["total"] == 0
    # A direct read sees the record at once; only the search index lags.
    assert api.get(f"/crm/v3/objects/contacts/{new['id']}").status_code == 200
    deadline = started + 10
    while _search(api, query)["total"] == 0:
        assert time.monotonic() < deadline, "the record never became searchable"
    assert time.monotonic() - started >= 0.35


def test_index_lag_serves_old_values_of_changed_records(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = _truth(sandbox)[0]
    sandbox.configure(index_lag_ms=60_000)
    api.patch(f"/crm/v3/objects/contacts/{contact['id']}", json={"properties": {"firstname": "Renamed"}})
    query = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": contact["id"]}]}
        ],
        "properties": ["firstname"],
    }
    assert _search(api, query)["results"][0]["properties"]["firstname"] == contact["properties"]["firstname"]


def test_id_range_filters_walk_a_slice_of_ids_in_order(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    # How a full pull reads by search: ids in [low, high), sorted by id, re-anchored.
    ids = sorted(int(r["id"]) for r in _truth(sandbox))
    api.delete(f"/crm/v3/objects/contacts/{ids[5]}")  # archived inside the range: never returned
    low, high = ids[2], ids[9]
    for operators, expected in (
        (("GTE", "LT"), [i for i in ids if low <= i < high and i != ids[5]]),
        (("GT", "LTE"), [i for i in ids if low < i <= high and i != ids[5]]),
    ):
        body = _search(
            api,
            {
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "hs_object_id", "operator": operators[0], "value": str(low)},
                            {"propertyName": "hs_object_id", "operator": operators[1], "value": str(high)},
                            {"propertyName": "email", "operator": "HAS_PROPERTY"},
                        ]
                    }
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "limit": 200,
            },
        )
        assert [int(r["id"]) for r in body["results"]] == expected
        assert body["total"] == len(expected) and "paging" not in body
    # In two groups (ORed) the same filters select everything above low or below high.
    body = _search(
        api,
        {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "GTE", "value": str(high)}]},
                {"filters": [{"propertyName": "hs_object_id", "operator": "LT", "value": str(low)}]},
            ],
            "limit": 200,
        },
    )
    assert sorted(int(r["id"]) for r in body["results"]) == [i for i in ids if i >= high or i < low]
