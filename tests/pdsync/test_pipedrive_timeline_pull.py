"""A Pipedrive connection's notes and activities reach the timeline cache and follow edits,
moves and deletions (the generic pull through ``crm.interface.ListsInteractions``)."""

from __future__ import annotations

from typing import Any

import httpx2

from crm import store
from crm.config import Settings
from crm.interface import Interaction
from crm.pipedrive.provider import PipedriveApi
from crm.plaintext import body_text
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.runner import run_sync

# What the timeline calls each of Pipedrive's activity types (anything else: a task).
KINDS = {"call": "calls", "meeting": "meetings", "lunch": "meetings", "email": "emails", "deadline": "tasks"}


def _links(item: dict[str, Any]) -> list[tuple[str, str]]:
    found = {(t, str(item[a])) for a, t in (("person_id", "contacts"), ("org_id", "companies"), ("deal_id", "deals"))
             if item.get(a)}  # fmt: skip
    found |= {("contacts", str(p["person_id"])) for p in item.get("participants") or []}
    return sorted(found)


def truth(admin: PipedriveAdmin) -> dict[tuple[str, str], dict[str, Any]]:
    """The live notes and activities: (kind, id) -> owner, subject, plain text, links."""
    found = {
        ("notes", str(n["id"])): {"owner": str(n["user_id"]), "subject": None,
                                  "text": body_text(n["content"]), "links": _links(n)}
        for n in admin.truth("notes") if not n["is_deleted"]
    }  # fmt: skip
    for a in admin.truth("activities"):
        if not a["is_deleted"]:
            found[(KINDS.get(a["type"], "tasks"), str(a["id"]))] = {
                "owner": str(a["owner_id"]), "subject": a["subject"],
                "text": body_text(a.get("note") or ""), "links": _links(a),
            }  # fmt: skip
    return found


def differences(settings: Settings, admin: PipedriveAdmin) -> list[str]:
    """What differs between the cache's live interactions and the truth ([] when equal)."""
    want = truth(admin)
    problems = []
    with store.open(settings) as db:
        for (kind, item_id), facts in sorted(want.items()):
            row = db.interactions.get(kind, item_id)
            if row is None or row["archived"]:
                problems.append(f"{kind} {item_id} is not live in the cache")
                continue
            have = {"owner": row["owner_id"], "subject": row["subject"],
                    "text": db.interactions.body(kind, item_id) or "", "links": db.interactions.links_of(kind, item_id)}  # fmt: skip
            if have != facts:
                problems.append(f"{kind} {item_id}: truth {facts} != cache {have}")
        counts = db.interactions.counts()
    for kind in ("notes", "calls", "meetings", "tasks", "emails"):
        wanted = sum(1 for k, _ in want if k == kind)
        if counts[kind] != wanted:
            problems.append(f"{counts[kind]} live {kind} cached, {wanted} in Pipedrive")
    return problems


def test_notes_and_activities_follow_edits_moves_and_deletions_through_full_and_incremental_pulls(
    pd_settings: Settings, company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    assert run_sync(pd_settings, kind="full", api=pd_api)["state"] == "succeeded"
    assert differences(pd_settings, company) == []
    with store.open(pd_settings) as db:
        assert db.interactions.counts()["notes"] > 0 and db.interactions.counts()["calls"] > 0
        # The timeline's search and type filter work on what the pull wrote (HTML made words).
        found = db.interactions.timeline("contacts", "4", search="WEEK")
        assert [r["object_type"] for r in found.rows] == ["notes"] and found.total == 1
        assert {
            r["object_type"] for r in db.interactions.timeline("contacts", "4", types=["notes"]).rows
        } == {"notes"}

    notes = [n for n in company.truth("notes") if n["person_id"]]
    activities = company.truth("activities")
    call = next(a for a in activities if a["type"] == "call")
    company.patch_object(
        "notes", notes[0]["id"], {"content": "<p>Edited <b>in the UI</b></p>", "person_id": 2}
    )
    company.patch_object(
        "activities", call["id"], {"type": "meeting", "subject": "Now a meeting", "done": True}
    )
    company.delete_object("notes", notes[1]["id"])
    company.delete_object("activities", activities[-1]["id"])
    made = httpx2.post(
        f"{company.url}/api/v1/notes",
        headers={"x-api-token": company.api_token()},
        json={"content": "<div>Made &amp; linked</div>", "deal_id": 3},
    )
    assert made.status_code == 201

    run = run_sync(pd_settings, kind="incremental", api=pd_api)

    assert run["state"] == "succeeded", run.get("error")
    # Pipedrive lists no deleted notes or activities: until their deletion sweep falls due (the
    # full pull was a look; tests/pdsync/test_timeline_deletion_sweep.py) they stay.
    gone = [
        ("notes", str(notes[1]["id"])),
        (KINDS.get(activities[-1]["type"], "tasks"), str(activities[-1]["id"])),
    ]
    left = differences(pd_settings, company)
    assert len(left) == 2 and all(p.split()[2] in {k for k, _ in gone} for p in left), left
    with store.open(pd_settings) as db:
        assert [db.interactions.get(k, i)["archived"] for k, i in gone] == [0, 0]  # type: ignore[index]
        assert db.interactions.get("calls", str(call["id"])) is None  # moved, not shown twice
        moved = db.interactions.get("meetings", str(call["id"]))
        assert moved is not None and moved["subject"] == "Now a meeting" and "done" in str(moved["summary"])
        assert db.interactions.body("notes", str(notes[0]["id"])) == "Edited in the UI"
        assert ("contacts", "2") in db.interactions.links_of("notes", str(notes[0]["id"]))
        assert db.interactions.body("notes", str(made.json()["data"]["id"])) == "Made & linked"

    run = run_sync(pd_settings, kind="full", api=pd_api)

    assert run["state"] == "succeeded", run.get("error")
    assert differences(pd_settings, company) == []
    assert (
        sum(run["counts"]["archived"].get(k, 0) for k in ("notes", "calls", "meetings", "tasks", "emails"))
        == 2
    )


def test_an_older_copy_of_an_activity_changes_neither_its_kind_its_text_nor_its_links(
    cache_target: str,
) -> None:
    """A webhook's read can race a pull: whichever copy is newer (``updated_at``) stays."""

    def call(kind: str, stamp: str, person: str) -> Interaction:
        return Interaction(kind=kind, id="9", occurred_at="2026-12-01T10:00:00Z", owner_id="1",
                           subject=f"as of {stamp}", summary=None, body="", links=(("contacts", person),),
                           updated_at=stamp)  # fmt: skip

    kinds = ("calls", "meetings", "tasks", "emails")
    with store.open(cache_target) as db:
        db.interactions.upsert_interactions([call("meetings", "2026-12-02T00:00:00Z", "5")], kinds=kinds)
        db.interactions.upsert_interactions([call("calls", "2026-12-01T00:00:00Z", "6")], kinds=kinds)
        kept = db.interactions.get("meetings", "9")
        assert kept is not None and kept["subject"] == "as of 2026-12-02T00:00:00Z"
        assert db.interactions.get("calls", "9") is None
        assert db.interactions.links_of("meetings", "9") == [("contacts", "5")]
        db.interactions.upsert_interactions([call("tasks", "2026-12-03T00:00:00Z", "6")], kinds=kinds)
        assert db.interactions.get("meetings", "9") is None
        assert db.interactions.links_of("tasks", "9") == [("contacts", "6")]
        assert db.interactions.counts()["tasks"] == 1


def test_an_item_a_full_read_lists_is_not_flagged_deleted_when_the_cache_holds_a_newer_copy(
    cache_target: str,
) -> None:
    """The copy a full read lists can be older than the cached one (a webhook's read-back of a
    later edit, a list that trails): the item is live all the same, so the full read's end,
    which flags what it did not see, keeps it, and the newer copy stays."""

    def note(stamp: str) -> Interaction:
        return Interaction(kind="notes", id="4", occurred_at="2026-12-01T10:00:00Z", owner_id="1",
                           subject=None, summary=None, body=f"as of {stamp}", links=(), updated_at=stamp)  # fmt: skip

    with store.open(cache_target) as db:
        db.interactions.upsert_interactions(
            [note("2026-12-02T00:00:00Z")], kinds=("notes",), synced_at="2026-12-05T00:00:00.000Z"
        )
        began = "2026-12-06T00:00:00.000Z"  # the full read starts, then lists the older copy
        db.interactions.upsert_interactions(
            [note("2026-12-01T00:00:00Z")], kinds=("notes",), synced_at="2026-12-06T00:00:01.000Z"
        )

        assert db.interactions.archive_unseen("notes", seen_since=began) == 0
        assert db.interactions.counts()["notes"] == 1
        assert db.interactions.body("notes", "4") == "as of 2026-12-02T00:00:00Z"
