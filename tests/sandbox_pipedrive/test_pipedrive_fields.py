"""v1 fields: system fields, and creating a custom person field with options (pronouns)."""

from __future__ import annotations

import re

import httpx2

PRONOUNS = {"name": "Pronouns", "field_type": "enum", "options": [{"label": "she/her"}, {"label": "he/him"},
                                                                   {"label": "they/them"}]}  # fmt: skip


def test_system_fields_are_not_editable_and_custom_ones_have_hash_keys(api: httpx2.Client) -> None:
    fields = api.get("/api/v1/personFields").json()["data"]
    name = next(f for f in fields if f["key"] == "name")
    custom = [f for f in fields if f["edit_flag"]]
    assert name["edit_flag"] is False and name["mandatory_flag"] is True
    assert custom and all(re.fullmatch(r"[0-9a-f]{40}", f["key"]) for f in custom)


def test_creating_an_enum_field_gives_a_hash_key_and_option_ids(api: httpx2.Client) -> None:
    response = api.post("/api/v1/personFields", json=PRONOUNS)
    field = response.json()["data"]
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{40}", field["key"]) and field["field_type"] == "enum"
    assert [o["label"] for o in field["options"]] == ["she/her", "he/him", "they/them"]
    listed = api.get("/api/v1/personFields").json()["data"]
    assert field["key"] in [f["key"] for f in listed]
    assert api.get(f"/api/v1/personFields/{field['id']}").json()["data"]["key"] == field["key"]


def test_a_person_takes_the_option_id_of_the_new_field(api: httpx2.Client) -> None:
    field = api.post("/api/v1/personFields", json=PRONOUNS).json()["data"]
    they = field["options"][2]["id"]
    person = api.patch("/api/v2/persons/3", json={"custom_fields": {field["key"]: they}}).json()["data"]
    assert person["custom_fields"][field["key"]] == they
    other = api.get("/api/v2/persons/4").json()["data"]
    assert other["custom_fields"][field["key"]] is None


def test_an_unknown_option_id_or_field_key_is_400(api: httpx2.Client) -> None:
    field = api.post("/api/v1/personFields", json=PRONOUNS).json()["data"]
    bad_option = api.patch("/api/v2/persons/3", json={"custom_fields": {field["key"]: 999999}})
    bad_key = api.patch("/api/v2/persons/3", json={"custom_fields": {"0" * 40: "x"}})
    assert bad_option.status_code == 400 and field["key"] in bad_option.json()["error"]
    assert bad_key.status_code == 400


def test_an_enum_field_without_options_or_a_bad_type_is_refused(api: httpx2.Client) -> None:
    assert (
        api.post("/api/v1/personFields", json={"name": "Pronouns", "field_type": "enum"}).status_code == 400
    )
    assert api.post("/api/v1/personFields", json={"name": "X", "field_type": "checkbox"}).status_code == 400


def test_custom_fields_query_limits_which_keys_come_back(api: httpx2.Client) -> None:
    keys = [f["key"] for f in api.get("/api/v1/personFields").json()["data"] if f["edit_flag"]]
    person = api.get("/api/v2/persons/1", params={"custom_fields": keys[0]}).json()["data"]
    assert list(person["custom_fields"]) == [keys[0]]
