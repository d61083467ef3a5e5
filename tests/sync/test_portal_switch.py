"""One cache, one portal: a token for another portal never shows the first portal's data."""

from __future__ import annotations

import dataclasses

from crm import store, sync


def test_a_private_app_token_for_another_portal_starts_the_cache_afresh(settings, sandbox):
    sync.run_sync(settings, kind="full", trigger="test")
    contact_id = str(next(r["id"] for r in sandbox.truth("contacts") if not r.get("archived")))
    sync.queue_edits(settings, "contacts", {contact_id: {"jobtitle": "First portal only"}}, by=None)

    sandbox.configure(portal_id=99002)
    other = dataclasses.replace(settings, access_token=sandbox.private_app_token())
    sync.run_sync(other, kind="incremental", trigger="test")

    db = store.open(settings)
    try:
        assert db.outbox.edits_frame(statuses=("pending", "conflict")).empty
        row = db.queries.get_record("contacts", contact_id)
        assert row is not None and row["jobtitle"] != "First portal only"  # re-read from the new portal
    finally:
        db.close()
