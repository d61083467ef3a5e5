"""Batch endpoints and HubSpot's 207 rules."""

from __future__ import annotations

import httpx2
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

BATCH = "/crm/v3/objects/contacts/batch"


def _ids(sandbox: SandboxAdmin, n: int) -> list[str]:
    return [r["id"] for r in sandbox.truth("contacts")[:n]]


def test_batch_read_returns_requested_properties(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    ids = _ids(sandbox, 3)
    response = api.post(f"{BATCH}/read", json={"properties": ["city"], "inputs": [{"id": i} for i in ids]})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE" and "startedAt" in body and "completedAt" in body
    assert [r["id"] for r in body["results"]] == ids
    assert "city" in body["results"][0]["properties"] and "numErrors" not in body


def test_batch_read_by_email(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = sandbox.truth("contacts")[5]
    body = api.post(
        f"{BATCH}/read",
        json={
            "idProperty": "email",
            "properties": ["email"],
            "inputs": [{"id": contact["properties"]["email"]}],
        },
    ).json()
    assert [r["id"] for r in body["results"]] == [contact["id"]]


def test_batch_read_with_unknown_ids_is_207_listing_them(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    known = _ids(sandbox, 1)[0]
    response = api.post(f"{BATCH}/read", json={"inputs": [{"id": known}, {"id": "1"}, {"id": "2"}]})
    assert response.status_code == 207
    body = response.json()
    assert [r["id"] for r in body["results"]] == [known]
    assert body["numErrors"] == 1
    error = body["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["message"] == (
        "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
    )
    assert error["context"] == {"ids": ["1", "2"]}


def test_more_than_100_inputs_is_400(api: httpx2.Client) -> None:
    response = api.post(f"{BATCH}/read", json={"inputs": [{"id": str(i)} for i in range(101)]})
    assert_crm_error(response, 400, "VALIDATION_ERROR")


def test_batch_create_returns_201_with_trace_ids(api: httpx2.Client) -> None:
    inputs = [
        {"properties": {"email": f"new{i}@example.com"}, "objectWriteTraceId": f"row-{i}"} for i in range(3)
    ]
    response = api.post(f"{BATCH}/create", json={"inputs": inputs})
    assert response.status_code == 201
    results = response.json()["results"]
    assert sorted(r["objectWriteTraceId"] for r in results) == ["row-0", "row-1", "row-2"]
    assert {r["properties"]["email"] for r in results} == {f"new{i}@example.com" for i in range(3)}


def test_batch_create_with_trace_ids_on_every_input_succeeds_in_part(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    inputs = [
        {"properties": {"email": "good@example.com"}, "objectWriteTraceId": "row-1"},
        {"properties": {"email": "bad@example.com", "favcolor": "red"}, "objectWriteTraceId": "row-2"},
    ]
    response = api.post(f"{BATCH}/create", json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["row-1"]
    assert body["numErrors"] == 1
    error = body["errors"][0]
    assert error["category"] == "VALIDATION_ERROR"
    assert error["context"]["objectWriteTraceId"] == ["row-2"]
    assert "favcolor" in error["message"]
    emails = {r["properties"].get("email") for r in sandbox.truth("contacts")}
    assert "good@example.com" in emails and "bad@example.com" not in emails


def test_batch_create_without_trace_ids_fails_whole_on_one_bad_input(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    inputs = [
        {"properties": {"email": "good@example.com"}},
        {"properties": {"email": "bad", "firstname": "X"}},
    ]
    body = assert_crm_error(api.post(f"{BATCH}/create", json={"inputs": inputs}), 400, "VALIDATION_ERROR")
    assert body["errors"][0]["code"] == "INVALID_EMAIL"
    assert "good@example.com" not in {r["properties"].get("email") for r in sandbox.truth("contacts")}


def test_batch_create_with_a_duplicate_email_in_the_same_batch_conflicts(api: httpx2.Client) -> None:
    inputs = [{"properties": {"email": "twin@example.com"}}, {"properties": {"email": "TWIN@example.com"}}]
    assert_crm_error(api.post(f"{BATCH}/create", json={"inputs": inputs}), 409, "CONFLICT")


def test_batch_update_changes_values_and_reports_unknown_ids_in_a_207(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    ids = _ids(sandbox, 2)
    inputs = [
        {"id": ids[0], "properties": {"city": "Lisbon"}},
        {"id": ids[1], "properties": {"city": "Porto"}},
        {"id": "77", "properties": {"city": "Nowhere"}},
    ]
    response = api.post(f"{BATCH}/update", json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert {r["id"]: r["properties"]["city"] for r in body["results"]} == {ids[0]: "Lisbon", ids[1]: "Porto"}
    assert body["errors"][0]["context"]["ids"] == ["77"]


def test_batch_update_with_duplicate_ids_is_400(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    contact = _ids(sandbox, 1)[0]
    inputs = [{"id": contact, "properties": {"city": "A"}}, {"id": contact, "properties": {"city": "B"}}]
    assert_crm_error(api.post(f"{BATCH}/update", json={"inputs": inputs}), 400, "VALIDATION_ERROR")


def test_batch_update_with_a_read_only_property_fails_whole(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    ids = _ids(sandbox, 2)
    inputs = [
        {"id": ids[0], "properties": {"city": "Oslo"}},
        {"id": ids[1], "properties": {"lastmodifieddate": "1"}},
    ]
    body = assert_crm_error(api.post(f"{BATCH}/update", json={"inputs": inputs}), 400, "VALIDATION_ERROR")
    assert body["errors"][0]["code"] == "READ_ONLY_VALUE"
    assert sandbox.truth("contacts")[0]["properties"].get("city") != "Oslo"


def test_batch_upsert_by_email_creates_and_updates_with_the_new_flag(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    existing = sandbox.truth("contacts")[0]
    inputs = [
        {
            "id": existing["properties"]["email"],
            "idProperty": "email",
            "properties": {"jobtitle": "Upserted"},
        },
        {"id": "fresh@example.com", "idProperty": "email", "properties": {"firstname": "Fresh"}},
    ]
    response = api.post(f"{BATCH}/upsert", json={"inputs": inputs})
    assert response.status_code == 200
    results = {r["id"]: r for r in response.json()["results"]}
    assert results[existing["id"]]["new"] is False
    created = next(r for r in results.values() if r["new"])
    assert created["properties"]["email"] == "fresh@example.com"
    again = api.post(f"{BATCH}/upsert", json={"inputs": inputs[1:]}).json()["results"][0]
    assert again["id"] == created["id"] and again["new"] is False


def test_batch_upsert_is_all_or_nothing(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    inputs = [
        {"id": "first@example.com", "idProperty": "email", "properties": {"firstname": "First"}},
        {"id": "second@example.com", "idProperty": "email", "properties": {"lifecyclestage": "nonsense"}},
    ]
    assert_crm_error(api.post(f"{BATCH}/upsert", json={"inputs": inputs}), 400, "VALIDATION_ERROR")
    assert "first@example.com" not in {r["properties"].get("email") for r in sandbox.truth("contacts")}


def test_batch_archive_is_204_and_hides_the_records(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    ids = _ids(sandbox, 2)
    response = api.post(f"{BATCH}/archive", json={"inputs": [{"id": i} for i in ids] + [{"id": "5"}]})
    assert response.status_code == 204 and response.content == b""
    archived = {r["id"] for r in sandbox.truth("contacts") if r["archived"]}
    assert archived == set(ids)
    read = api.post(f"{BATCH}/read", json={"inputs": [{"id": i} for i in ids]})
    assert read.status_code == 207 and read.json()["results"] == []


def test_batch_routes_on_the_date_versioned_path(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    ids = _ids(sandbox, 2)
    body = api.post(
        "/crm/objects/2026-03/contacts/batch/read", json={"inputs": [{"id": i} for i in ids]}
    ).json()
    assert [r["id"] for r in body["results"]] == ids
