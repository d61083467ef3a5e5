"""The Sync page: starting syncs, progress from the database, history, outbox and conflicts."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from uikit import Portal, plain, texts, wait_until

from crm import store, sync
from crm.hubspot import HubSpotClient, StaticToken
from crm.store import syncstate


def _db(portal: Portal):
    return store.open(portal.settings)


def _frame_with(at, column: str):
    """The table on the page that has ``column`` (read-only tables carry no key to find them by)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _run_finished(portal: Portal) -> bool:
    db = _db(portal)
    try:
        run = db.syncstate.latest_run()
        return run is not None and run["state"] != "running"
    finally:
        db.close()


def test_sync_now_runs_in_the_background_and_lands_in_the_history(connected: Portal) -> None:
    at = connected.page("sync")
    at.run()
    assert not at.exception
    assert "No sync has run yet." in texts(at)
    at.button(key="sync_now").click().run()
    assert not at.exception
    assert any("Sync started" in t.value for t in at.toast)
    wait_until(lambda: _run_finished(connected), what="the background sync")
    at.run()
    history = _frame_with(at, "State")
    assert list(history["State"]) == ["succeeded"]
    assert history["Contacts"].iloc[0] == 40
    # When it started is a time the grid formats, not the stored ISO text.
    assert isinstance(history["Started (UTC)"].iloc[0], pd.Timestamp)
    assert "succeeded" in plain(at.success[0].value)
    assert [m.value for m in at.metric][:3] == ["40", "10", "15"]


@contextmanager
def _running_elsewhere(portal: Portal, progress: dict) -> Iterator[None]:
    """A run the CLI holds, with ``progress`` as its last heartbeat; it succeeds on exit."""
    db = _db(portal)
    owner = syncstate.new_owner()
    try:
        run_id = db.syncstate.start_run(kind="full", trigger="cli", started_by="cli", owner=owner)
        assert run_id is not None
        db.syncstate.heartbeat(run_id, owner, progress)
        yield
    finally:
        db.syncstate.finish_run(run_id, owner, state="succeeded")
        db.close()


def test_a_sync_running_elsewhere_shows_live_progress_and_blocks_new_ones(synced: Portal) -> None:
    progress = {
        "phase": "records",
        "object_type": "contacts",
        "done": 12,
        "total": 40,
        "requests": 5,
        "counts": {"modes": {"contacts": "full", "companies": "full"}, "records": {"contacts": 12}},
    }
    with _running_elsewhere(synced, progress):
        at = synced.page("sync")
        at.run()
        assert not at.exception
        [bar] = at.get("progress")
        assert bar.value == 30
        assert "Reading records contacts: 12 of 40 records" == plain(bar.proto.text)
        # HubSpot's pull names its current type: no line per type under the bar.
        assert not [c.value for c in at.caption if c.value.startswith("Contacts 12")]
        assert at.button(key="sync_now").disabled and at.button(key="sync_full").disabled
    at.run()
    assert len(at.get("progress")) == 0
    assert not at.button(key="sync_now").disabled


def _conflict(portal: Portal) -> tuple[str, int]:
    """A phone edited here and, meanwhile, in HubSpot: the push finds a conflict."""
    contact = portal.sandbox.truth("contacts")[3]
    rid = str(contact["id"])
    sync.queue_edits(portal.settings, "contacts", {rid: {"phone": "+1 555 0101"}}, by="tester")
    portal.sandbox.patch_object("contacts", rid, {"phone": "+1 555 0999"})
    result = sync.push(portal.settings, by="tester")
    assert result["conflicts"] == 1
    db = _db(portal)
    try:
        conflicts = db.outbox.edits_frame(statuses=("conflict",))
    finally:
        db.close()
    return rid, int(conflicts["id"].iloc[0])


def test_conflict_shows_mine_theirs_and_base_and_keep_mine_pushes_mine(synced: Portal) -> None:
    rid, outbox_id = _conflict(synced)
    at = synced.page("sync")
    at.run()
    assert not at.exception
    codes = [c.value for c in at.code]
    assert codes[:2] == ["+1 555 0101", "+1 555 0999"]
    at.button(key=f"sync_keep_mine_{outbox_id}").click().run()
    assert not at.exception
    assert any("Kept your value" in plain(t.value) for t in at.toast)
    db = _db(synced)
    try:
        pending = db.outbox.edits_frame(statuses=("pending",))
    finally:
        db.close()
    assert list(pending["base_value"]) == ["+1 555 0999"]

    at.button(key="sync_push").click().run()
    assert not at.exception
    truth = next(r for r in synced.sandbox.truth("contacts") if str(r["id"]) == rid)
    assert truth["properties"]["phone"] == "+1 555 0101"
    audit = _frame_with(at, "result")
    assert "conflict: kept mine" in set(audit["result"])


def test_keep_hubspots_value_drops_my_edit_and_the_cache_takes_theirs(synced: Portal) -> None:
    rid, outbox_id = _conflict(synced)
    at = synced.page("sync")
    at.run()
    at.button(key=f"sync_keep_theirs_{outbox_id}").click().run()
    assert not at.exception
    db = _db(synced)
    try:
        assert db.queries.get_record("contacts", rid)["phone"] == "+1 555 0999"
        assert db.outbox.edits_frame(statuses=("pending", "conflict")).empty
    finally:
        db.close()
    truth = next(r for r in synced.sandbox.truth("contacts") if str(r["id"]) == rid)
    assert truth["properties"]["phone"] == "+1 555 0999"
    assert "Conflicts (0)" in [t.label for t in at.tabs]


def test_pending_edits_are_listed_before_they_are_pushed(synced: Portal) -> None:
    rid = str(synced.sandbox.truth("contacts")[0]["id"])
    sync.queue_edits(synced.settings, "contacts", {rid: {"jobtitle": "Queued Title"}}, by="tester")
    at = synced.page("sync")
    at.run()
    pending = _frame_with(at, "new_value")
    assert list(pending["new_value"]) == ["Queued Title"]
    assert "Pending (1)" in [t.label for t in at.tabs]


def test_an_edit_hubspot_refuses_is_listed_with_hubspots_message(synced: Portal) -> None:
    contact = synced.sandbox.truth("contacts")[0]
    sync.queue_edits(synced.settings, "contacts", {str(contact["id"]): {"jobtitle": "Refused"}}, by="tester")
    # Deleted in HubSpot meanwhile: HubSpot refuses the update for that record.
    synced.sandbox.archive_object("contacts", contact["id"])
    result = sync.push(synced.settings, by="tester")
    assert result["failed"] == 1, result
    at = synced.page("sync")
    at.run()
    assert not at.exception
    assert "Failed (1)" in [t.label for t in at.tabs]
    failed = _frame_with(at, "error")
    message = failed.loc[failed["status"] == "failed", "error"].iloc[0]
    assert message == result["results"][0]["message"] and message


HOSTILE = "<img src=x onerror=alert(1)>**Hopper**"


def _held_new_contact(portal: Portal) -> tuple[str, str, int]:
    """A colleague creates Grace in HubSpot after the sync; mine, queued here, is held by the push."""
    with HubSpotClient(portal.settings, StaticToken(portal.sandbox.private_app_token())) as client:
        (made,) = client.batch_create(
            "contacts",
            [{"properties": {"email": "grace@existing.example", "firstname": "Grace", "lastname": HOSTILE}}],
        ).records
    local = sync.queue_new_contact(
        portal.settings,
        {"email": "grace@existing.example", "lastname": "Murray", "phone": "+1 555 0100"},
        by="tester",
    )
    assert sync.push(portal.settings, by="tester")["conflicts"] == 1
    db = _db(portal)
    try:
        (outbox_id,) = db.outbox.edits_frame(statuses=("conflict",))["id"]
    finally:
        db.close()
    return str(made.id), local, int(outbox_id)


def _grace(portal: Portal) -> dict:
    return next(
        r
        for r in portal.sandbox.truth("contacts")
        if r["properties"].get("email") == "grace@existing.example"
    )


def test_a_new_contact_hubspot_already_has_is_a_decision_and_link_queues_my_fields(synced: Portal) -> None:
    existing_id, local, outbox_id = _held_new_contact(synced)
    at = synced.page("sync")
    at.run()
    assert not at.exception
    assert "Conflicts (1)" in [t.label for t in at.tabs]
    assert "HubSpot already has a contact with this email" in texts(at)
    values = _frame_with(at, "HubSpot's")
    assert values.set_index("Property").loc["lastname"].to_dict() == {"Mine": "Murray", "HubSpot's": HOSTILE}
    assert [m.value for m in at.markdown if m.allow_html] == []
    assert "<img" not in "\n".join(m.value for m in at.markdown)
    assert at.button(key=f"sync_discard_new_{outbox_id}")

    at.button(key=f"sync_link_{outbox_id}").click().run()
    assert not at.exception
    assert any("1 field(s) queued to push, 1 conflict(s)" in plain(t.value) for t in at.toast)
    db = _db(synced)
    try:
        assert db.queries.get_record("contacts", local) is None
        assert db.queries.get_record("contacts", existing_id)["phone"] == "+1 555 0100"
    finally:
        db.close()
    codes = [c.value for c in at.code]
    assert codes[:3] == ["Murray", HOSTILE, "(empty)"]  # mine, HubSpot's, base: a person decides
    assert _grace(synced)["properties"]["lastname"] == HOSTILE


def test_discard_mine_drops_the_new_contact_and_leaves_hubspots(synced: Portal) -> None:
    existing_id, local, outbox_id = _held_new_contact(synced)
    before = _grace(synced)
    at = synced.page("sync")
    at.run()
    at.button(key=f"sync_discard_new_{outbox_id}").click().run()
    assert not at.exception
    assert any("Discarded your new contact" in plain(t.value) for t in at.toast)
    assert "Conflicts (0)" in [t.label for t in at.tabs]
    db = _db(synced)
    try:
        assert db.queries.get_record("contacts", local) is None
    finally:
        db.close()
    audit = _frame_with(at, "result")
    assert "HubSpot already had this email" in audit.loc[audit["result"] == "discarded", "detail"].iloc[0]
    assert _grace(synced) == before and before["id"] == existing_id


def test_the_page_shows_the_schedule_and_the_next_run(connected: Portal, monkeypatch) -> None:
    import ui.runtime

    monkeypatch.setattr(ui.runtime, "_start_schedule", lambda settings: None)  # no thread in the test process
    at = connected.page("sync", secrets={"CRM_SYNC_INTERVAL": "15m"})
    at.run()
    assert not at.exception
    shown = texts(at)
    assert "Scheduled sync: every 15 min" in shown
    assert "Next run at" in shown and "UTC" in shown

    off = connected.page("sync")
    off.run()
    assert "Scheduled sync is off" in texts(off)


BUDGETS = {
    "burst": {"used": 88, "limit": 110, "window_s": 10.0},
    "search": {"used": 4, "limit": 5, "window_s": 1.0},
    "daily": {"used": 1200, "allowance": 125_000, "limit": 250_000, "share": 0.5, "source": "headers"},
}


def test_a_running_sync_shows_the_burst_search_and_daily_gauges(synced: Portal) -> None:
    progress = {"phase": "records", "done": 10, "total": 40, "requests": 5, "counts": {"budgets": BUDGETS}}
    with _running_elsewhere(synced, progress):
        at = synced.page("sync")
        at.run()
        assert not at.exception
        bars = {plain(b.proto.text).split(":")[0]: b.value for b in at.get("progress")}
        assert bars["Burst"] == 80 and bars["Search"] == 80 and bars["Daily"] == 0
        shown = [plain(b.proto.text) for b in at.get("progress")]
        assert "Daily: 1,200 of 125,000 (50% share)" in shown


def test_a_sync_paused_for_the_daily_budget_says_when_it_goes_on(synced: Portal) -> None:
    db = _db(synced)
    owner = syncstate.new_owner()
    message = (
        "Paused: this app's daily budget is spent (125,000 of 125,000 requests). It resumes after midnight."
    )
    try:
        run_id = db.syncstate.start_run(kind="full", trigger="ui", started_by="kim", owner=owner)
        assert run_id is not None
        counts = {"budgets": BUDGETS, "resume_at": time.time() + 3 * 3600}
        db.syncstate.finish_run(run_id, owner, state="paused", progress={"counts": counts}, error=message)
    finally:
        db.close()
    at = synced.page("sync")
    at.run()
    assert not at.exception
    [warning] = [w for w in at.warning if "daily budget" in plain(w.value)]
    assert message in plain(warning.value) and re.search(r"\(in 1[78]\d min", plain(warning.value))
    assert not at.button(key="sync_now").disabled


def test_the_page_estimates_a_full_resync_from_the_last_sync(synced: Portal) -> None:
    at = synced.page("sync")
    at.run()
    assert not at.exception
    [line] = [c.value for c in at.caption if c.value.startswith("Full re-sync:")]
    assert "requests and" in line and "minutes for" in line and "the last sync's totals" in line
