"""API v2 persons, organizations and deals over loopback: paging, filters, writes, search, errors."""

from __future__ import annotations

import datetime as dt

import httpx2

from crm.sandbox.pipedrive.admin import PipedriveAdmin


def walk(api: httpx2.Client, path: str, **params: object) -> list[dict]:
    records, cursor = [], None
    for _ in range(100):
        page = api.get(path, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        assert page["success"] is True
        records += page["data"]
        cursor = page["additional_data"]["next_cursor"]
        if not cursor:
            return records
    raise AssertionError("paging did not end")


def test_cursor_paging_returns_every_person_once(api: httpx2.Client) -> None:
    records = walk(api, "/api/v2/persons", limit=7)
    assert [r["id"] for r in records] == list(range(1, 41))


def test_last_page_has_no_next_cursor(api: httpx2.Client) -> None:
    page = api.get("/api/v2/organizations", params={"limit": 500}).json()
    assert len(page["data"]) == 10 and page["additional_data"]["next_cursor"] is None


def test_limit_over_500_is_refused_in_pipedrive_shape(api: httpx2.Client) -> None:
    response = api.get("/api/v2/deals", params={"limit": 501})
    body = response.json()
    assert response.status_code == 400
    assert body["success"] is False and "limit" in body["error"] and "error_info" in body


def test_updated_since_returns_only_records_changed_since(
    api: httpx2.Client, pipedrive: PipedriveAdmin
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    pipedrive.patch_object("persons", 5, {"job_title": "Chief Pronoun Officer"})
    changed = walk(api, "/api/v2/persons", updated_since=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert [r["id"] for r in changed] == [5]
    assert changed[0]["job_title"] == "Chief Pronoun Officer"


def test_sort_by_update_time_desc_puts_the_latest_edit_first(
    api: httpx2.Client, pipedrive: PipedriveAdmin
) -> None:
    pipedrive.patch_object("deals", 3, {"title": "Bigger deal"})
    first = api.get(
        "/api/v2/deals", params={"sort_by": "update_time", "sort_direction": "desc", "limit": 1}
    ).json()
    assert first["data"][0]["id"] == 3


def test_bad_updated_since_and_bad_cursor_are_400(api: httpx2.Client) -> None:
    assert api.get("/api/v2/persons", params={"updated_since": "yesterday"}).status_code == 400
    assert api.get("/api/v2/persons", params={"cursor": "not-a-cursor"}).status_code == 400


def test_create_patch_delete_round_trip(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    created = api.post("/api/v2/persons", json={"name": "Ada Lovelace",
                                                "emails": [{"value": "ada@example.com", "label": "work"}]}).json()["data"]  # fmt: skip
    assert created["first_name"] == "Ada" and created["emails"][0]["primary"] is True
    patched = api.patch(f"/api/v2/persons/{created['id']}", json={"job_title": "Analyst"}).json()["data"]
    assert patched["job_title"] == "Analyst" and patched["name"] == "Ada Lovelace"
    assert api.get(f"/api/v2/persons/{created['id']}").json()["data"]["job_title"] == "Analyst"
    deleted = api.delete(f"/api/v2/persons/{created['id']}").json()
    assert deleted == {"success": True, "data": {"id": created["id"]}}
    gone = api.get(f"/api/v2/persons/{created['id']}")
    assert gone.status_code == 404 and gone.json()["success"] is False
    truth = {r["id"]: r for r in pipedrive.truth("persons")}
    assert truth[created["id"]]["is_deleted"] is True


def test_create_without_name_or_with_unknown_field_is_400(api: httpx2.Client) -> None:
    assert api.post("/api/v2/persons", json={"emails": []}).json()["error"] == "name is a required field"
    response = api.post("/api/v2/organizations", json={"name": "X", "colour": "red"})
    assert response.status_code == 400 and "colour" in response.json()["error"]


def test_deal_stage_must_belong_to_its_pipeline(api: httpx2.Client) -> None:
    stages = api.get("/api/v2/stages", params={"pipeline_id": 2}).json()["data"]
    response = api.post(
        "/api/v2/deals", json={"title": "Wrong", "pipeline_id": 1, "stage_id": stages[0]["id"]}
    )
    assert response.status_code == 400
    ok = api.post("/api/v2/deals", json={"title": "Right", "stage_id": stages[0]["id"]}).json()["data"]
    assert ok["pipeline_id"] == 2 and ok["status"] == "open"


def test_owner_must_be_a_user(api: httpx2.Client) -> None:
    users = api.get("/api/v1/users").json()["data"]
    assert api.patch("/api/v2/deals/1", json={"owner_id": 1}).status_code == 400
    assert (
        api.patch("/api/v2/deals/1", json={"owner_id": users[-1]["id"]}).json()["data"]["owner_id"]
        == users[-1]["id"]
    )


def test_search_finds_hostile_values_as_data(api: httpx2.Client) -> None:
    items = api.get("/api/v2/persons/search", params={"term": "<script>"}).json()["data"]["items"]
    assert items[0]["item"]["name"] == "<script>alert(1)</script>" and items[0]["item"]["type"] == "person"


def test_search_by_email_exact_match(api: httpx2.Client) -> None:
    person = api.get("/api/v2/persons/9").json()["data"]
    email = person["emails"][0]["value"]
    items = api.get(
        "/api/v2/persons/search", params={"term": email, "fields": "email", "exact_match": "true"}
    ).json()
    assert [i["item"]["id"] for i in items["data"]["items"]] == [9]


def test_search_term_must_have_two_characters(api: httpx2.Client) -> None:
    assert api.get("/api/v2/deals/search", params={"term": "a"}).status_code == 400


def test_unknown_path_and_wrong_method_answer_in_pipedrive_shape(api: httpx2.Client) -> None:
    missing = api.get("/api/v2/leads")
    assert missing.status_code == 404 and missing.json()["success"] is False
    wrong = api.put("/api/v2/persons/1", json={})
    assert wrong.status_code == 405 and wrong.json()["success"] is False


def test_pipelines_stages_and_users_are_served(api: httpx2.Client) -> None:
    pipelines = api.get("/api/v2/pipelines").json()["data"]
    stages = api.get("/api/v1/stages").json()["data"]
    me = api.get("/api/v1/users/me").json()["data"]
    assert [p["name"] for p in pipelines] == ["Sales pipeline", "Renewals"]
    assert {s["pipeline_id"] for s in stages} == {1, 2}
    assert me["company_domain"] == "sandbox-company" and me["is_you"] is True


def test_notes_and_activities_page_by_start_and_limit(api: httpx2.Client) -> None:
    note = api.post("/api/v1/notes", json={"content": "Met at the fair", "person_id": 2})
    assert note.status_code == 201
    page = api.get("/api/v1/notes", params={"person_id": 2}).json()
    assert "Met at the fair" in [n["content"] for n in page["data"]]
    first = api.get("/api/v1/activities", params={"limit": 2}).json()
    assert first["additional_data"]["pagination"] == {"start": 0, "limit": 2, "more_items_in_collection": True,
                                                      "next_start": 2}  # fmt: skip


def test_updated_until_excludes_later_changes(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    cut = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    pipedrive.patch_object("organizations", 4, {"name": "Renamed Org"})
    before = walk(api, "/api/v2/organizations", updated_until=cut.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert 4 not in [o["id"] for o in before] and len(before) == 9


def test_stats_count_requests_per_route_template(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    api.get("/api/v2/persons/1")
    api.get("/api/v2/persons/2")
    stats = pipedrive.stats()
    assert stats["requests"]["GET /api/v2/persons/{id:int}"] == 2 and stats["responses"]["200"] >= 2


def test_every_sort_pages_through_every_record_once(api: httpx2.Client, pipedrive: PipedriveAdmin) -> None:
    pipedrive.delete_object("deals", 7)
    expected = sorted(d["id"] for d in pipedrive.truth("deals") if not d["is_deleted"])
    by_id_desc = [d["id"] for d in walk(api, "/api/v2/deals", limit=4, sort_direction="desc")]
    by_update = [d["id"] for d in walk(api, "/api/v2/deals", limit=4, sort_by="update_time")]
    assert by_id_desc == expected[::-1]
    assert sorted(by_update) == expected and len(by_update) == len(set(by_update))


def test_add_time_may_be_set_on_create_only(api: httpx2.Client) -> None:
    created = api.post("/api/v2/organizations", json={"name": "Old Co", "add_time": "2020-05-01T10:00:00Z"})
    assert created.json()["data"]["add_time"] == "2020-05-01T10:00:00Z"
    assert (
        api.patch(
            f"/api/v2/organizations/{created.json()['data']['id']}", json={"add_time": "2021-01-01T00:00:00Z"}
        ).status_code
        == 400
    )
    assert api.post("/api/v2/organizations", json={"name": "Bad", "add_time": "May 1st"}).status_code == 400
