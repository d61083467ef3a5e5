"""The activity timeline on record pages and the Tickets page (AppTest over a synced sandbox)."""

from __future__ import annotations

import datetime as dt
import json
import re

from uikit import Portal, plain, texts

from crm import store


def _db(portal: Portal):
    return store.open(portal.settings.db)


def _lines(at) -> list[str]:
    """The timeline's lines as a person reads them (the outbox's own expander left out)."""
    return [plain(e.label) for e in at.expander if not plain(e.label).startswith("Changes waiting")]


def _busiest_contact(portal: Portal) -> tuple[str, int]:
    with _db(portal) as db:
        row = db.conn.execute(
            "SELECT l.record_id, count(*) FROM interaction_links l JOIN interactions i "
            "ON i.object_type = l.object_type AND i.id = l.id WHERE l.record_type = 'contacts' "
            "AND i.archived = 0 GROUP BY l.record_id ORDER BY count(*) DESC, l.record_id LIMIT 1"
        ).fetchone()
    return str(row[0]), int(row[1])


def test_a_contacts_timeline_pages_newest_first_and_filters_by_type(synced: Portal) -> None:
    contact, count = _busiest_contact(synced)
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    assert not at.exception
    assert f"{count:,} interactions" in texts(at)
    with _db(synced) as db:
        expected = db.interactions.timeline("contacts", contact, limit=25).rows
    labels = _lines(at)
    assert len(labels) == min(25, count)
    first = expected[0]
    assert labels[0].startswith(
        {"notes": "Note", "calls": "Call", "emails": "Email", "meetings": "Meeting", "tasks": "Task"}[
            first["object_type"]
        ]
    )
    assert first["occurred_at"][:10] in labels[0]

    at.multiselect(key="timeline_types").set_value(["calls"]).run()
    assert not at.exception
    assert all(line.startswith("Call") for line in _lines(at))


def test_the_timeline_pages_by_keyset_with_older_and_newer(synced: Portal) -> None:
    # Give one contact 60 notes so the timeline has three pages.
    contact, _ = _busiest_contact(synced)
    from crm.hubspot.models import Record

    with _db(synced) as db:
        notes = [
            Record(
                id=f"9{n:05d}",
                properties={
                    "hs_timestamp": f"2020-01-01T00:{n // 60:02d}:{n % 60:02d}Z",
                    "hs_note_body": f"<p>Old note {n}</p>",
                },
                created_at=None,
                updated_at=None,
            )
            for n in range(60)
        ]
        db.interactions.upsert_records("notes", notes)
        db.interactions.replace_associations(
            "notes", "contacts", [r.id for r in notes], {r.id: [(contact, 202)] for r in notes}
        )
        total = db.interactions.timeline("contacts", contact).total
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    seen: list[str] = _lines(at)
    pages = 1
    while not at.button(key=f"timeline_contacts_{contact}_older").disabled:
        at.button(key=f"timeline_contacts_{contact}_older").click().run()
        assert not at.exception
        seen += _lines(at)
        pages += 1
    assert len(seen) == total and len(set(seen)) == total
    assert pages == -(-total // 25)
    assert "Old note 0" in seen[-1]
    at.button(key=f"timeline_contacts_{contact}_newer").click().run()
    assert len(_lines(at)) == 25


def test_the_timeline_search_finds_text_in_bodies_and_shows_a_script_as_text(synced: Portal) -> None:
    contact, _ = _busiest_contact(synced)
    from crm.hubspot.models import Record

    hostile = "<p>Quarterly zebra review</p><script>alert('owned')</script><img src=x onerror=alert(2)>"
    with _db(synced) as db:
        db.interactions.upsert_records(
            "emails",
            [
                Record(
                    id="777001",
                    properties={
                        "hs_timestamp": "2026-01-10T09:00:00Z",
                        "hs_email_subject": "**bold** [link](javascript:alert(1))",
                        "hs_email_html": hostile,
                    },
                    created_at=None,
                    updated_at=None,
                )
            ],
        )
        db.interactions.replace_associations("emails", "contacts", ["777001"], {"777001": [(contact, 198)]})
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    at.text_input(key="timeline_search").set_value("zebra").run()
    assert not at.exception
    assert "1 interaction · showing 1-1, newest first" in texts(at)
    lines = [e for e in at.expander if not plain(e.label).startswith("Changes waiting")]
    assert len(lines) == 1
    label = lines[0].label
    assert "**bold**" not in label and "\\*\\*bold\\*\\*" in label
    bodies = [t.value for t in at.text]
    assert "Quarterly zebra review" in bodies
    assert not any("<script" in b or "onerror" in b for b in bodies)
    assert [m.value for m in at.markdown if m.allow_html] == []


def test_tickets_page_lists_tickets_with_labels_chart_and_filters(synced: Portal) -> None:
    at = synced.page("tickets")
    at.run()
    assert not at.exception
    with _db(synced) as db:
        live = db.queries.counts()["tickets"]
        open_count = db.queries.query_records("tickets", filters={"ticket_state": "OPEN"}, limit=1)[1]
    frame = at.data_editor[0].value
    assert len(frame) == min(50, live)
    assert {"contact", "company", "age_days"} <= set(frame.columns)
    assert [m.value for m in at.metric][0] == f"{open_count:,}"
    assert len(at.get("vega_lite_chart")) == 2  # by stage, by age
    at.selectbox(key="tickets_state").set_value("CLOSED").run()
    assert not at.exception
    assert len(at.data_editor[0].value) == live - open_count


def test_a_ticket_stage_edit_is_queued_pushed_and_a_bad_priority_refused(synced: Portal) -> None:
    at = synced.page("tickets")
    at.run()
    frame = at.data_editor[0].value
    rid = str(frame.index[0])
    with _db(synced) as db:
        pipeline = next(p for p in db.queries.pipelines("tickets") if p["id"] == frame.iloc[0]["hs_pipeline"])
    target = next(s["id"] for s in pipeline["stages"] if s["id"] != frame.iloc[0]["hs_pipeline_stage"])
    options = json.loads(at.data_editor[0].proto.columns)["hs_pipeline_stage"]["type_config"]["options"]
    assert target in [o["value"] for o in options]
    key = at.data_editor[0].key
    at.session_state[key] = {
        "edited_rows": {0: {"hs_ticket_priority": "NOT_A_PRIORITY"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    assert "Priority" in plain(at.error[0].value)
    at.button(key="tickets_discard").click().run()
    key = at.data_editor[0].key
    at.session_state[key] = {
        "edited_rows": {0: {"hs_pipeline_stage": target}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    with _db(synced) as db:
        queued = db.outbox.edits_frame(statuses=("pending",))
    assert list(zip(queued["record_id"], queued["property"], strict=True)) == [(rid, "hs_pipeline_stage")]
    at.button(key="tickets_push").click().run()
    assert not at.exception
    truth = next(t for t in synced.sandbox.truth("tickets") if t["id"] == rid)
    assert truth["properties"]["hs_pipeline_stage"] == target


def test_a_portal_without_the_tickets_scope_is_told_how_to_grant_it(synced: Portal) -> None:
    with _db(synced) as db:
        db.meta.put("missing_scopes", json.dumps({"tickets": ["tickets", "crm.objects.tickets.read"]}))
    at = synced.page("tickets")
    at.run()
    assert not at.exception
    warning = plain(at.warning[0].value)
    assert "Tickets are not synced" in warning and "tickets" in warning and "Connect page" in warning


def test_the_sync_page_counts_tickets_and_interactions(synced: Portal) -> None:
    at = synced.page("sync")
    at.run()
    assert not at.exception
    with _db(synced) as db:
        tickets = db.queries.counts()["tickets"]
        interactions = sum(db.interactions.counts().values())
    shown = {m.label: m.value for m in at.metric}
    assert interactions > 0
    assert (shown["Tickets"], shown["Interactions"]) == (f"{tickets:,}", f"{interactions:,}")
    history = next(d.value for d in at.dataframe if "Interactions" in d.value.columns)
    assert history["Interactions"].iloc[0] == interactions


def test_a_note_logged_on_a_record_shows_pending_and_is_pushed_from_the_page(synced: Portal) -> None:
    contact, _ = _busiest_contact(synced)
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    at.text_area(key="timeline_note_text").set_value("Met at the **fair**; <b>keen</b>")
    next(b for b in at.button if b.label == "Save note").click().run()
    assert not at.exception
    first = _lines(at)[0]
    assert first.startswith("Note") and "waiting to be pushed" in first
    assert "Met at the **fair**; <b>keen</b>" in [t.value for t in at.text]
    at.button(key="record_push").click().run()
    assert not at.exception
    notes = [
        n for n in synced.sandbox.truth("notes") if "fair" in (n["properties"].get("hs_note_body") or "")
    ]
    assert len(notes) == 1 and [str(a["id"]) for a in notes[0]["associations"]["contacts"]] == [contact]
    assert "waiting to be pushed" not in _lines(at)[0]


def test_an_empty_note_is_refused_where_the_person_typed_it(synced: Portal) -> None:
    contact, _ = _busiest_contact(synced)
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    next(b for b in at.button if b.label == "Save note").click().run()
    assert not at.exception
    assert "Write something first" in plain(at.error[0].value)


def test_search_everything_groups_hits_by_type_and_links_to_the_record(synced: Portal) -> None:
    contact, _ = _busiest_contact(synced)
    from crm.hubspot.models import Record

    with _db(synced) as db:
        db.interactions.upsert_records(
            "calls",
            [
                Record(
                    id="888001",
                    properties={
                        "hs_timestamp": "2026-01-11T09:00:00Z",
                        "hs_call_body": "<p>Discussed the <b>Okapi</b> plan</p>",
                    },
                    created_at=None,
                    updated_at=None,
                )
            ],
        )
        db.interactions.replace_associations("calls", "contacts", ["888001"], {"888001": [(contact, 194)]})
        company = db.queries.query_records("companies", limit=1)[0].index[0]
        db.records.set_local_values("companies", company, {"name": "Okapi <Labs>"})
    at = synced.page("search")
    at.run()
    at.text_input(key="search_text").set_value("okapi").run()
    assert not at.exception
    headings = [plain(s.value) for s in at.subheader]
    assert headings == ["Companies (1)", "Interactions (1)"]
    links = at.get("page_link")
    labels = [plain(link.proto.label) for link in links]
    assert labels[0] == "Okapi <Labs>"
    assert labels[1].startswith("Call · 2026-01-11 · Discussed the Okapi plan")
    assert links[1].proto.query_string == f"type=contacts&id={contact}&connection=hubspot-62515"
    assert links[0].proto.query_string.startswith("type=companies&id=")


def test_a_ticket_opens_as_a_record_with_its_contact_and_activity(synced: Portal) -> None:
    with _db(synced) as db:
        row = db.conn.execute(
            "SELECT a.from_id, a.to_id FROM associations a JOIN tickets t ON t.id = a.from_id "
            "WHERE a.from_type = 'tickets' AND a.to_type = 'contacts' AND t.archived = 0 ORDER BY a.from_id LIMIT 1"
        ).fetchone()
        ticket, contact = str(row[0]), str(row[1])
        record = db.queries.get_record("tickets", ticket)
        stage = next(
            s["label"]
            for p in db.queries.pipelines("tickets")
            for s in p["stages"]
            if s["id"] == record["hs_pipeline_stage"]
        )
    at = synced.page("record")
    at.query_params.update({"type": "tickets", "id": ticket})
    at.run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Properties", "Contacts", "Companies", "Deals", "Activity"]
    props = at.dataframe[0].value
    # The stage by its label ("Stage (Pipeline)" when there are several), not its id.
    assert any(str(v).startswith(stage) for v in props["Value"])
    assert record["hs_pipeline_stage"] not in set(props["Value"])
    contacts = at.dataframe[1].value
    assert contact in {str(i) for i in contacts.index}


def test_the_ticket_charts_give_every_stage_and_age_a_labelled_row(synced: Portal) -> None:
    # Streamlit fits the whole chart, axis included, into its height: with too little, Vega
    # drops every other row's label, and upright age bars left a sliver of a plot.
    at = synced.page("tickets")
    at.run()
    assert not at.exception
    by_stage, by_age = (json.loads(c.proto.spec) for c in at.get("vega_lite_chart"))
    for spec, field in ((by_stage, "where"), (by_age, "bucket")):
        assert spec["encoding"]["y"]["field"] == field, "one row per category, its label read across"
        rows = len(spec["encoding"]["y"]["sort"])
        assert spec["height"] >= 60 + 34 * rows
    assert by_age["encoding"]["y"]["sort"] == ["under a day", "1-7 days", "1-4 weeks", "1-3 months", "older"]


def test_search_tells_apart_tickets_that_share_a_subject_and_shows_each_interactions_type(
    synced: Portal,
) -> None:
    with _db(synced) as db:
        first, second = (str(i) for i in db.queries.query_records("tickets", limit=2)[0].index)
        for ticket in (first, second):
            db.records.set_local_values("tickets", ticket, {"subject": "Okapi refund request"})
    at = synced.page("search")
    at.run()
    at.text_input(key="search_text").set_value("okapi refund").run()
    assert not at.exception
    labels = sorted(plain(link.proto.label) for link in at.get("page_link"))
    assert labels == sorted(f"Okapi refund request · #{t}" for t in (first, second))

    at.text_input(key="search_text").set_value("invoice").run()
    assert not at.exception
    icons = {
        plain(link.proto.label).split(" · ")[0]: link.proto.icon
        for link in at.get("page_link")
        if " · 20" in plain(link.proto.label)
    }
    assert icons.get("Email") == ":material/mail:" and icons.get("Call") == ":material/call:"


def test_a_task_created_on_a_record_shows_pending_at_its_due_time_and_is_pushed(synced: Portal) -> None:
    contact, _ = _busiest_contact(synced)
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    at.text_input(key="timeline_task_subject").set_value("Send the renewal quote")
    at.date_input(key="timeline_task_day").set_value(dt.date(2030, 1, 15))
    at.time_input(key="timeline_task_time").set_value(dt.time(9, 30))
    at.selectbox(key="timeline_task_priority").set_value("HIGH")
    at.text_area(key="timeline_task_notes").set_value("Ask for the PO number")
    next(b for b in at.button if b.label == "Save task").click().run()
    assert not at.exception
    # Due in 2030, so it heads the timeline, newest first, and says how far ahead it is.
    first = _lines(at)[0]
    assert first.startswith("Task · 2030-01-15 09:30 UTC (in ") and " days) · " in first
    assert "Send the renewal quote" in first and "waiting to be pushed" in first
    at.button(key="record_push").click().run()
    assert not at.exception
    tasks = [
        t
        for t in synced.sandbox.truth("tasks")
        if "renewal" in (t["properties"].get("hs_task_subject") or "")
    ]
    assert len(tasks) == 1
    props = tasks[0]["properties"]
    assert props["hs_task_subject"] == "Send the renewal quote"
    assert props["hs_task_priority"] == "HIGH"
    due = dt.datetime(2030, 1, 15, 9, 30, tzinfo=dt.UTC)
    stamp = str(props["hs_timestamp"])
    assert stamp == str(int(due.timestamp() * 1000)) or stamp.startswith("2030-01-15T09:30")
    assert [str(a["id"]) for a in tasks[0]["associations"]["contacts"]] == [contact]
    assert "waiting to be pushed" not in _lines(at)[0]


def test_a_task_without_a_subject_is_refused_and_nothing_is_queued(synced: Portal) -> None:
    contact, _ = _busiest_contact(synced)
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    next(b for b in at.button if b.label == "Save task").click().run()
    assert not at.exception
    assert "Subject: A task needs a subject" in plain(at.error[0].value)
    with _db(synced) as db:
        assert len(db.outbox.edits_frame(statuses=("pending",))) == 0


def test_the_timeline_filters_by_dates_including_both_days(synced: Portal) -> None:
    contact, count = _busiest_contact(synced)
    with _db(synced) as db:
        days = sorted(
            {r["occurred_at"][:10] for r in db.interactions.timeline("contacts", contact, limit=count).rows}
        )
    assert len(days) >= 3
    start, end = dt.date.fromisoformat(days[1]), dt.date.fromisoformat(days[-2])
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    at.date_input(key="timeline_dates").set_value((start, end)).run()
    assert not at.exception
    shown = [re.search(r"\d{4}-\d{2}-\d{2}", line).group(0) for line in _lines(at)]
    assert shown and all(start.isoformat() <= d <= end.isoformat() for d in shown)
    assert days[1] in shown and days[-2] in shown
    assert days[0] not in shown and days[-1] not in shown
    assert f"{len(shown)} interaction" in texts(at)


def test_tickets_filter_by_pipeline_priority_and_owner(synced: Portal) -> None:
    at = synced.page("tickets")
    at.run()
    with _db(synced) as db:
        pipelines = db.queries.pipelines("tickets")
        frame = db.queries.query_records("tickets", limit=1000)[0]
    pipeline = next(p["id"] for p in pipelines if (frame["hs_pipeline"] == p["id"]).any())
    priority = frame["hs_ticket_priority"].mode()[0]
    owner = frame["hubspot_owner_id"].dropna().mode()[0]
    chosen = frame
    for key, column, value in (
        ("tickets_pipeline", "hs_pipeline", pipeline),
        ("tickets_priority", "hs_ticket_priority", priority),
        ("tickets_owner", "hubspot_owner_id", owner),
    ):
        at.selectbox(key=key).set_value(value).run()
        assert not at.exception
        chosen = chosen[chosen[column] == value]
        total = len(chosen)
        assert f"{total:,} ticket{'s' if total != 1 else ''} · page 1 of {max(1, -(-total // 50))}" in texts(
            at
        )
        assert set(at.data_editor[0].value.index.astype(str)) == set(chosen.index.astype(str))


def test_search_says_when_nothing_matches(synced: Portal) -> None:
    at = synced.page("search")
    at.run()
    assert "Type to search every contact" in texts(at)
    at.text_input(key="search_text").set_value("zzqx no such words").run()
    assert not at.exception
    assert "Nothing matches." in plain(at.info[0].value)
    assert [s.value for s in at.subheader] == []


def test_a_contacts_tickets_and_deals_show_priority_and_stage_by_label(synced: Portal) -> None:
    with _db(synced) as db:
        row = db.conn.execute(
            "SELECT t.to_id FROM associations t JOIN associations d ON d.to_id = t.to_id "
            "WHERE t.from_type = 'tickets' AND t.to_type = 'contacts' "
            "AND d.from_type = 'deals' AND d.to_type = 'contacts' ORDER BY t.to_id LIMIT 1"
        ).fetchone()
        contact = str(row[0])
        tickets = db.queries.query_records("tickets", limit=1000)[0]
        deals = db.queries.query_records("deals", limit=1000)[0]
        stage_names = {s["id"]: s["label"] for p in db.queries.pipelines("deals") for s in p["stages"]}
    at = synced.page("record")
    at.query_params.update({"type": "contacts", "id": contact})
    at.run()
    assert not at.exception
    assert {"Deals", "Tickets"} <= {plain(s.value) for s in at.subheader}
    frames = [d.value for d in at.dataframe]
    ticket_table = next(f for f in frames if "hs_ticket_priority" in f.columns)
    deal_table = next(f for f in frames if "dealstage" in f.columns)
    priorities = {"LOW": "Low", "MEDIUM": "Medium", "HIGH": "High", "URGENT": "Urgent"}
    for rid, value in ticket_table["hs_ticket_priority"].items():
        assert value == priorities[tickets.loc[rid, "hs_ticket_priority"]]
    for rid, value in deal_table["dealstage"].items():
        assert str(value).startswith(stage_names[deals.loc[rid, "dealstage"]])
