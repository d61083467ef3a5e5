"""The sandbox's notes and activities as the timeline pull uses them (filters, order, edits)."""

from __future__ import annotations

from typing import Any

import httpx2

from crm.pipedrive.provider import activity_interaction, note_interaction
from crm.sandbox.pipedrive.admin import PipedriveAdmin


def test_notes_since_a_moment_come_by_update_time_with_the_edited_last_and_the_deleted_left_out(
    api: httpx2.Client, pipedrive: PipedriveAdmin
) -> None:
    pipedrive.patch_object("notes", 1, {"content": "<p>Changed</p>"})
    pipedrive.delete_object("notes", 3)
    every = api.get("/api/v1/notes", params={"sort": "update_time ASC, id ASC", "limit": 500}).json()["data"]
    assert every[-1]["id"] == 1 and 3 not in [n["id"] for n in every]
    edited_at = every[-1]["update_time"].replace(" ", "T") + "Z"
    since = api.get("/api/v1/notes", params={"updated_since": edited_at, "sort": "update_time ASC"}).json()
    assert [n["id"] for n in since["data"]] == [1] and since["data"][0]["content"] == "<p>Changed</p>"
    assert api.get("/api/v1/notes", params={"sort": "colour ASC"}).status_code == 400


def test_an_activity_walk_by_cursor_misses_none_when_one_already_read_is_deleted(
    api: httpx2.Client, pipedrive: PipedriveAdmin
) -> None:
    live = [a["id"] for a in pipedrive.truth("activities")]
    first = api.get("/api/v2/activities", params={"limit": 3}).json()
    pipedrive.delete_object("activities", first["data"][0]["id"])
    seen = [a["id"] for a in first["data"]]
    cursor = first["additional_data"]["next_cursor"]
    while cursor:
        page = api.get("/api/v2/activities", params={"limit": 3, "cursor": cursor}).json()
        seen += [a["id"] for a in page["data"]]
        cursor = page["additional_data"]["next_cursor"]
    assert seen == live


def test_pipedrives_html_and_activity_types_become_plain_neutral_interactions() -> None:
    """Notes are HTML at Pipedrive; an activity type Pipedrive's company made up is a task."""
    raw: dict[str, Any] = {
        "id": 7, "subject": "Demo <b>day</b>", "type": "product_demo", "owner_id": 3, "done": False,
        "due_date": "2026-12-10", "due_time": "14:30", "duration": "01:30", "person_id": 5, "org_id": 2,
        "deal_id": None, "participants": [{"person_id": 5, "primary": True}, {"person_id": 9, "primary": False}],
        "note": "<p>Bring the <script>alert(1)</script>slides</p>", "add_time": "2026-12-01T09:00:00Z",
        "update_time": "2026-12-02T09:00:00Z", "is_deleted": False,
    }  # fmt: skip
    activity = activity_interaction(raw)
    assert (activity.kind, activity.occurred_at, activity.owner_id) == ("tasks", "2026-12-10T14:30:00Z", "3")
    assert activity.summary == "product demo · to do · due 2026-12-10 14:30 · 1 h 30 min"
    assert activity.subject == "Demo <b>day</b>"  # a subject is plain text: shown as typed, never rendered
    assert activity.body == "Bring the slides"
    assert activity.links == (("contacts", "5"), ("companies", "2"), ("contacts", "9"))
    assert (
        activity_interaction({**raw, "type": "lunch", "due_date": None}).occurred_at == "2026-12-01T09:00:00Z"
    )
    note = note_interaction({"id": 4, "content": "<ul><li>One</li><li>Two &amp; three</li></ul>", "user_id": 2,
                             "deal_id": 8, "add_time": "2026-11-30 08:00:00", "update_time": "2026-11-30 09:00:00",
                             "active_flag": True})  # fmt: skip
    assert (note.kind, note.occurred_at, note.updated_at) == (
        "notes",
        "2026-11-30T08:00:00Z",
        "2026-11-30T09:00:00Z",
    )
    assert note.body.split() == ["One", "Two", "&", "three"] and note.links == (("deals", "8"),)
