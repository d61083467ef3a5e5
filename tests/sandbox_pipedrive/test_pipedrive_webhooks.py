"""Webhooks v2: registered through /api/v1/webhooks, delivered with HTTP Basic auth."""

from __future__ import annotations

import base64
import json

import httpx2

from crm.sandbox.pipedrive.admin import PipedriveAdmin


def register(api: httpx2.Client, url: str, action: str = "*", obj: str = "person", **extra: object) -> dict:
    response = api.post("/api/v1/webhooks", json={"subscription_url": url, "event_action": action,
                                                  "event_object": obj, "version": "2.0", **extra})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_an_edit_in_the_ui_is_delivered_with_basic_auth(
    api: httpx2.Client, pipedrive: PipedriveAdmin, hooks
) -> None:
    hook = register(api, hooks.url, http_auth_user="crm", http_auth_password="s3cret:pw")
    pipedrive.patch_object("persons", 4, {"job_title": "Head of Pronouns"})
    delivery = hooks.wait_for(1)[0]
    expected = "Basic " + base64.b64encode(b"crm:s3cret:pw").decode()
    body = json.loads(delivery["body"])
    assert delivery["headers"]["authorization"] == expected
    assert body["meta"]["action"] == "change" and body["meta"]["entity"] == "person"
    assert body["meta"]["entity_id"] == "4" and body["meta"]["webhook_id"] == str(hook["id"])
    assert body["meta"]["change_source"] == "app" and body["meta"]["version"] == "2.0"
    assert body["data"]["job_title"] == "Head of Pronouns"
    assert list(body["previous"]) == ["job_title"]


def test_api_create_and_delete_fire_their_events(
    api: httpx2.Client, pipedrive: PipedriveAdmin, hooks
) -> None:
    register(api, hooks.url)
    person = api.post("/api/v2/persons", json={"name": "New Person"}).json()["data"]
    api.delete(f"/api/v2/persons/{person['id']}")
    bodies = [json.loads(d["body"]) for d in hooks.wait_for(2)]
    assert [(b["meta"]["action"], b["meta"]["change_source"]) for b in bodies] == [
        ("create", "api"),
        ("delete", "api"),
    ]
    assert bodies[0]["previous"] is None and bodies[0]["data"]["name"] == "New Person"
    assert "authorization" not in hooks.requests[0]["headers"]


def test_events_that_do_not_match_are_not_delivered(
    api: httpx2.Client, pipedrive: PipedriveAdmin, hooks
) -> None:
    register(api, hooks.url, action="change", obj="deal")
    pipedrive.patch_object("persons", 2, {"job_title": "Ignored"})
    pipedrive.patch_object("deals", 2, {"title": "Seen"})
    assert pipedrive.flush_webhooks()["flushed"] is True
    bodies = [json.loads(d["body"]) for d in hooks.requests]
    assert [(b["meta"]["entity"], b["data"]["title"]) for b in bodies] == [("deal", "Seen")]


def test_failed_deliveries_are_retried_with_attempt_counting_up(api: httpx2.Client, pipedrive: PipedriveAdmin,
                                                                 hooks) -> None:  # fmt: skip
    pipedrive.configure(webhook_retry_delays=[0.05, 0.05])
    hooks.script += [500, 503]
    register(api, hooks.url)
    pipedrive.patch_object("persons", 6, {"job_title": "Retried"})
    attempts = [json.loads(d["body"])["meta"]["attempt"] for d in hooks.wait_for(3)]
    assert attempts == [1, 2, 3]
    assert pipedrive.flush_webhooks()["flushed"] is True
    assert [d["status"] for d in pipedrive.webhooks()["deliveries"]] == [500, 503, 200]


def test_registration_is_validated_and_listed(api: httpx2.Client) -> None:
    assert api.post("/api/v1/webhooks", json={"subscription_url": "ftp://x", "event_action": "*",
                                              "event_object": "*"}).status_code == 400  # fmt: skip
    assert api.post("/api/v1/webhooks", json={"subscription_url": "http://127.0.0.1:9/h", "event_action": "merge",
                                              "event_object": "*"}).status_code == 400  # fmt: skip
    hook = register(api, "http://127.0.0.1:9/h")
    listed = api.get("/api/v1/webhooks").json()["data"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").json()["success"] is True
    assert api.get("/api/v1/webhooks").json()["data"] == []


def test_the_webhook_password_is_not_echoed_back(api: httpx2.Client) -> None:
    hook = register(api, "http://127.0.0.1:9/h", http_auth_user="crm", http_auth_password="s3cret")
    listed = api.get("/api/v1/webhooks").json()["data"][0]
    assert hook["http_auth_user"] == "crm" and "s3cret" not in str(hook) and "s3cret" not in str(listed)


def test_a_user_may_register_at_most_40_webhooks(api: httpx2.Client) -> None:
    for n in range(40):
        register(api, f"http://127.0.0.1:9/h{n}")
    refused = api.post("/api/v1/webhooks", json={"subscription_url": "http://127.0.0.1:9/h41", "event_action": "*",
                                                 "event_object": "*", "version": "2.0"})  # fmt: skip
    assert refused.status_code == 422 and refused.json()["error"] == "Webhooks limit reached"
