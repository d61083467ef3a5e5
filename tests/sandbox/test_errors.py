"""Bad requests get HubSpot-style 4xx JSON, never a 500 or a traceback."""

from __future__ import annotations

import httpx2
import pytest
from sandbox_checks import assert_crm_error

from crm.sandbox.admin import SandboxAdmin

CONTACTS = "/crm/v3/objects/contacts"


def test_malformed_json_is_400(api: httpx2.Client) -> None:
    response = api.post(CONTACTS, content=b'{"properties": {', headers={"Content-Type": "application/json"})
    body = assert_crm_error(response, 400, "VALIDATION_ERROR")
    assert "Traceback" not in response.text and body["message"].startswith("Invalid input JSON")


def test_json_that_is_not_an_object_is_400(api: httpx2.Client) -> None:
    assert_crm_error(
        api.post(f"{CONTACTS}/batch/read", json=["not", "an", "object"]), 400, "VALIDATION_ERROR"
    )


def test_wrong_content_type_is_415(api: httpx2.Client) -> None:
    response = api.post(
        CONTACTS, content=b"email=a@b.co", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_crm_error(response, 415)


def test_unknown_path_is_404_in_hubspots_dialect(api: httpx2.Client) -> None:
    assert_crm_error(api.get("/crm/v3/nothing/here"), 404, "OBJECT_NOT_FOUND")


def test_unknown_object_type_is_400(api: httpx2.Client) -> None:
    assert_crm_error(api.get("/crm/v3/objects/spaceships"), 400, "VALIDATION_ERROR")


def test_wrong_method_is_405_with_allow_header(api: httpx2.Client) -> None:
    response = api.put(CONTACTS, json={})
    assert_crm_error(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("body", [{"inputs": "nope"}, {}, {"inputs": [{"id": "1"}] * 101}])
def test_batch_inputs_must_be_a_list_of_at_most_100(api: httpx2.Client, body: dict) -> None:
    assert_crm_error(api.post(f"{CONTACTS}/batch/update", json=body), 400, "VALIDATION_ERROR")


def test_non_numeric_limit_and_after_are_400(api: httpx2.Client) -> None:
    assert_crm_error(api.get(CONTACTS, params={"limit": "ten"}), 400, "VALIDATION_ERROR")
    assert_crm_error(api.get(CONTACTS, params={"after": "abc"}), 400, "VALIDATION_ERROR")


def test_properties_that_are_not_an_object_are_400(api: httpx2.Client) -> None:
    assert_crm_error(api.post(CONTACTS, json={"properties": ["email"]}), 400, "VALIDATION_ERROR")


def test_missing_token_is_401_invalid_authentication(sandbox: SandboxAdmin) -> None:
    response = httpx2.get(sandbox.url + CONTACTS)
    assert_crm_error(response, 401, "INVALID_AUTHENTICATION")


def test_unknown_token_is_401(sandbox: SandboxAdmin) -> None:
    response = httpx2.get(sandbox.url + CONTACTS, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["category"] in ("INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION")


def test_missing_scope_is_403_missing_scopes(sandbox: SandboxAdmin) -> None:
    token = sandbox.private_app_token(["oauth", "crm.objects.contacts.read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx2.get(sandbox.url + CONTACTS, headers=headers).status_code == 200
    assert_crm_error(
        httpx2.get(sandbox.url + "/crm/v3/objects/deals", headers=headers), 403, "MISSING_SCOPES"
    )
    created = httpx2.post(
        sandbox.url + CONTACTS, headers=headers, json={"properties": {"email": "a@example.com"}}
    )
    assert_crm_error(created, 403, "MISSING_SCOPES")


def test_every_response_carries_a_correlation_id(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    ok = api.get(CONTACTS)
    also = api.get(CONTACTS)
    assert ok.headers["X-HubSpot-Correlation-Id"] != also.headers["X-HubSpot-Correlation-Id"]
    assert len(ok.headers["X-HubSpot-Correlation-Id"]) == 36
    assert "X-HubSpot-Correlation-Id" in httpx2.get(sandbox.url + "/_sandbox/stats").headers


def test_unexpected_failures_answer_500_json_without_a_traceback(
    api: httpx2.Client, sandbox_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A one-off: make one handler blow up to see what a client gets back.
    state = sandbox_server.state

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom: secret internals")

    monkeypatch.setattr(state.objects, "page", explode)
    response = api.get(CONTACTS)
    body = assert_crm_error(response, 500)
    assert "boom" not in response.text and "Traceback" not in response.text
    assert body["message"] == "internal error"
