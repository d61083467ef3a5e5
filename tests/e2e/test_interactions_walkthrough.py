"""Customer interactions in Chromium: a contact's timeline, logging a note, /tickets, /search.

The same setup as the demo walkthrough (``streamlit run app.py`` in demo mode against the
embedded sandbox, over loopback): the module connects and syncs once, then each test opens
its own tab. What HubSpot holds is read from the sandbox's admin API, so every count the
page shows is checked against the portal, not against the cache the page reads. The seeded
data carries script on purpose (an email's HTML, a chat message); a JavaScript dialog
opening fails the test (tests/e2e/conftest.py). Screenshots continue the walkthrough's
numbering in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from e2ekit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    choose_in_first_row,
    connect_through_consent,
    pick_option,
    push_changes,
    settle,
    shoot,
    sync_now,
    timeline_lines,
)
from playwright.sync_api import Page, expect, sync_playwright

from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipelines import ESCALATION_STAGES, ESCALATIONS_PIPELINE, TICKET_STAGES

pytestmark = pytest.mark.e2e

ENGAGEMENTS = ("notes", "calls", "emails", "meetings", "tasks")
# The timeline's Types box: type -> its label there.
TYPES = {
    "notes": "Notes",
    "calls": "Calls",
    "emails": "Emails",
    "meetings": "Meetings",
    "tasks": "Tasks",
    "threads": "Conversations",
}
CLOSED_STAGES = {sid for sid, _, state in (*TICKET_STAGES, *ESCALATION_STAGES) if state == "CLOSED"}
WHEN = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC")
# Grid columns of the Tickets page, left to right (0 is the record id, then link and status).
TICKET_STAGE_COLUMN = 5
TICKET_PRIORITY_COLUMN = 6


@pytest.fixture(scope="module")
def synced(app_server: dict[str, str]) -> Iterator[dict[str, str]]:
    """The module's server, connected through the consent page and synced once."""
    base = app_server["url"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Visit / first: a fresh server serves pages/ directly until some session runs app.py.
        tab.goto(base + "/")
        settle(tab)
        connect_through_consent(tab, base)
        sync_now(tab)
        browser.close()
    yield app_server


def _minute(stamp: str) -> str:
    """A HubSpot timestamp as the timeline shows it: ``YYYY-MM-DD HH:MM`` (UTC)."""
    return stamp[:16].replace("T", " ")


def _contact_story(sandbox: SandboxAdmin, contact: str) -> list[tuple[str, str]]:
    """(type, when) of every live engagement and chat thread HubSpot has on ``contact``."""
    story = [
        (kind, _minute(r["properties"]["hs_timestamp"]))
        for kind in ENGAGEMENTS
        for r in sandbox.truth(kind)
        if not r.get("archived") and contact in {str(a["id"]) for a in r["associations"].get("contacts", [])}
    ]
    story += [
        ("threads", _minute(t["latestMessageTimestamp"]))
        for t in sandbox.threads()
        if not t.get("archived") and str(t.get("associatedContactId")) == contact
    ]
    return story


def _when(line: str) -> str:
    found = WHEN.search(line)
    assert found, f"no time in the timeline line {line!r}"
    return found.group(1)


def _expand(page: Page, text: str) -> None:
    """Open the one timeline line that contains ``text``."""
    line = page.get_by_test_id("stExpander").filter(has_text=text)
    expect(line).to_have_count(1)
    line.locator("summary").click()


def _assert_no_live_markup(page: Page) -> None:
    """Nothing from the seeded hostile values became an element: no script, no image, no js: link."""
    scripts = page.locator("script").evaluate_all("nodes => nodes.map(n => n.textContent)")
    assert not [s for s in scripts if "alert(" in s]
    expect(page.locator("img[src='x']")).to_have_count(0)
    expect(page.locator("a[href^='javascript']")).to_have_count(0)


def test_a_contacts_timeline_reads_newest_first_filters_and_shows_script_as_text(
    synced: dict[str, str], page: Page
) -> None:
    base = synced["url"]
    sandbox = SandboxAdmin(synced["sandbox"])
    # The contact who received the email whose HTML carries <script> and an onerror image.
    email = next(
        r for r in sandbox.truth("emails") if "<script>" in (r["properties"].get("hs_email_html") or "")
    )
    contact = str(email["associations"]["contacts"][0]["id"])
    story = _contact_story(sandbox, contact)
    assert 3 <= len(story) <= 25, "the seeded contact fits on one timeline page"

    page.goto(f"{base}/record?type=contacts&id={contact}")
    settle(page)
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    expect(
        page.get_by_text(f"{len(story)} interactions · showing 1-{len(story)}, newest first")
    ).to_be_visible()
    lines = timeline_lines(page)
    assert len(lines) == len(story)
    shown = [_when(line) for line in lines]
    assert shown == sorted(shown, reverse=True), "newest first"
    assert shown[0] == max(when for _, when in story)

    # Expanded, the email reads as its words: the script and the image are gone, not run.
    _expand(page, "please click here to confirm")
    body = page.get_by_test_id("stExpander").filter(has_text="please click here").get_by_test_id("stText")
    expect(body).to_have_text("Hi, please click here to confirm.")
    _assert_no_live_markup(page)
    # The main area scrolls inside the page, so a full-page shot stops at the fold.
    page.get_by_role("button", name="Older").scroll_into_view_if_needed()
    shoot(page, "10-record-timeline")

    # Search the text: one line, and the count says so in words.
    box = page.get_by_placeholder("Text in any interaction")
    box.fill("click here to confirm")
    box.press("Enter")
    expect(page.get_by_text("1 interaction · showing 1-1, newest first")).to_be_visible(timeout=20_000)
    settle(page)
    assert len(timeline_lines(page)) == 1
    box.fill("")
    box.press("Enter")
    expect(page.get_by_text(f"{len(story)} interactions ·")).to_be_visible(timeout=20_000)

    # Only emails: every other type removed from the Types box.
    kept = dict(TYPES)
    for kind, label in TYPES.items():
        if kind == "emails":
            continue
        settle(page)
        page.get_by_role("button", name=f"Remove {label}").click()
        del kept[kind]
        # Wait for the rerun that drops them, so the next removal is not lost to a redraw.
        left = sum(1 for k, _ in story if k in kept)
        expect(page.get_by_text(f"{left} interactions · showing 1-{left}")).to_be_visible(timeout=20_000)
        expect(page.get_by_role("button", name=f"Remove {label}")).to_have_count(0)
    settle(page)
    emails = sorted((when for kind, when in story if kind == "emails"), reverse=True)
    assert len(emails) >= 3, "the seeded contact has emails on several days"
    lines = timeline_lines(page)
    assert [line.split(" · ")[0] for line in lines] == ["Email"] * len(emails)
    assert [_when(line) for line in lines] == emails

    # Between two dates (typed into the date range box), inclusive of both days.
    start, end = emails[-2][:10], emails[0][:10]
    page.get_by_role("spinbutton", name="year, Between start date").click()
    page.keyboard.type(start.replace("-", ""))
    page.get_by_role("spinbutton", name="year, Between end date").click()
    page.keyboard.type(end.replace("-", ""))
    page.keyboard.press("Escape")
    page.get_by_role("heading", name="Activity").click()
    inside = [when for when in emails if start <= when[:10] <= end]
    expect(page.get_by_text(f"{len(inside)} interactions · showing 1-{len(inside)}")).to_be_visible(
        timeout=20_000
    )
    settle(page)
    assert [_when(line) for line in timeline_lines(page)] == inside
    page.get_by_role("button", name="Older").scroll_into_view_if_needed()
    shoot(page, "11-timeline-filtered")

    # A chat message whose text is a script tag: the tag is visible text on the customer's timeline.
    chat = next(
        t for t in sandbox.threads() if any("<script>" in (m.get("text") or "") for m in t["messages"])
    )
    page.goto(f"{base}/record?type=contacts&id={chat['associatedContactId']}")
    settle(page)
    hostile = next(m["text"] for m in chat["messages"] if "<script>" in (m.get("text") or ""))
    conversation = page.get_by_test_id("stExpander").filter(has_text="Conversation ·").first
    conversation.locator("summary").click()
    expect(conversation.get_by_test_id("stText")).to_contain_text(hostile)
    _assert_no_live_markup(page)


def test_a_note_logged_on_a_contact_shows_pending_and_reaches_hubspot_once(
    synced: dict[str, str], page: Page
) -> None:
    base = synced["url"]
    sandbox = SandboxAdmin(synced["sandbox"])
    contact = next(
        str(r["id"])
        for r in sorted(sandbox.truth("contacts"), key=lambda r: int(r["id"]))
        if not r.get("archived")
        and all((r["properties"].get(k) or "").isascii() for k in ("firstname", "lastname"))
        and (r["properties"].get("firstname") or "").isalpha()
    )
    marker = "E2E-note-4711"
    text = f"Renewal call {marker}: <b>keen</b> on the <script>alert('note')</script> plan"
    page.goto(f"{base}/record?type=contacts&id={contact}")
    settle(page)
    before = len(_contact_story(sandbox, contact))

    page.get_by_role("button", name="Log a note").click()
    page.get_by_role("textbox", name="Note", exact=True).fill(text)
    page.get_by_role("button", name="Save note").click()
    settle(page)
    first = page.get_by_test_id("stExpander").filter(has_text=marker)
    expect(first).to_have_count(1)
    line = timeline_lines(page)[0]
    assert line.startswith("Note · ") and marker in line and "waiting to be pushed" in line
    # What was typed, tags and all, is what the line reads.
    assert "<b>keen</b> on the <script>alert('note')</script> plan" in line
    expect(page.get_by_test_id("stSidebar").get_by_text("Edits waiting to be pushed: 1")).to_be_visible()
    page.keyboard.press("Escape")  # close the Log a note box
    expect(page.get_by_role("button", name="Save note")).to_be_hidden()
    first.scroll_into_view_if_needed()
    first.locator("summary").click()
    expect(first.get_by_test_id("stText")).to_have_text(text)
    shoot(page, "12-note-logged")

    push_changes(page)
    expect(page.get_by_text("Pushed 1 change to HubSpot")).to_be_visible(timeout=30_000)
    in_hubspot = [n for n in sandbox.truth("notes") if marker in (n["properties"].get("hs_note_body") or "")]
    assert len(in_hubspot) == 1
    assert [str(a["id"]) for a in in_hubspot[0]["associations"]["contacts"]] == [contact]
    # HubSpot keeps the note as HTML with the typed tags escaped, so they stay text there too.
    assert "<script>" not in in_hubspot[0]["properties"]["hs_note_body"]
    assert len(_contact_story(sandbox, contact)) == before + 1

    # A fresh visit after a sync: the note is there once, no longer waiting, still reading as typed.
    sync_now(page)
    page.goto(f"{base}/record?type=contacts&id={contact}")
    settle(page)
    noted = [line for line in timeline_lines(page) if marker in line]
    assert len(noted) == 1
    assert "waiting to be pushed" not in noted[0]
    assert "<script>alert('note')</script>" in noted[0]
    expect(page.get_by_text(f"{before + 1} interactions ·")).to_be_visible()
    _assert_no_live_markup(page)


def _ticket_count(page: Page, count: int) -> None:
    pages = max(1, -(-count // 50))
    noun = "ticket" if count == 1 else "tickets"
    expect(page.get_by_text(f"{count:,} {noun} · page 1 of {pages}")).to_be_visible(timeout=20_000)
    settle(page)


def test_tickets_filter_chart_and_an_inline_edit_is_pushed_to_hubspot(
    synced: dict[str, str], page: Page
) -> None:
    base = synced["url"]
    sandbox = SandboxAdmin(synced["sandbox"])
    tickets = [t for t in sandbox.truth("tickets") if not t.get("archived")]
    open_tickets = [t for t in tickets if t["properties"]["hs_pipeline_stage"] not in CLOSED_STAGES]

    page.goto(base + "/tickets")
    settle(page)
    _ticket_count(page, len(tickets))
    expect(page.get_by_test_id("stMetric").filter(has_text="Open tickets")).to_contain_text(
        str(len(open_tickets))
    )
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(2)  # open tickets by stage, and by age
    for chart in charts.all():
        expect(chart.locator("canvas, svg").first).to_be_visible()
    shoot(page, "13-tickets")

    pick_option(page, "Status", "Open")
    _ticket_count(page, len(open_tickets))
    pick_option(page, "Pipeline", "Escalations")
    escalated = [t for t in open_tickets if t["properties"]["hs_pipeline"] == ESCALATIONS_PIPELINE]
    _ticket_count(page, len(escalated))
    priorities = [t["properties"]["hs_ticket_priority"] for t in escalated]
    common = max(set(priorities), key=priorities.count)
    pick_option(page, "Priority", common.capitalize())
    _ticket_count(page, priorities.count(common))

    # A fresh visit starts unfiltered; find one ticket by its subject and edit it in the grid.
    target = next(t for t in tickets if t["properties"]["subject"] == "Не работает экспорт")
    props = target["properties"]
    stages = ESCALATION_STAGES if props["hs_pipeline"] == ESCALATIONS_PIPELINE else TICKET_STAGES
    stage_id, stage_label, _ = next(s for s in stages if s[0] != props["hs_pipeline_stage"])
    # With two ticket pipelines, the grid names a stage with its pipeline.
    pipeline_name = "Escalations" if props["hs_pipeline"] == ESCALATIONS_PIPELINE else "Support Pipeline"
    priority = "LOW" if props["hs_ticket_priority"] != "LOW" else "HIGH"
    page.goto(base + "/tickets")
    settle(page)
    search = page.get_by_placeholder("Subject or description")
    search.fill("экспорт")
    search.press("Enter")
    _ticket_count(page, 1)
    one = page.get_by_text("1 change waiting to be pushed")
    choose_in_first_row(page, "tickets", TICKET_PRIORITY_COLUMN, priority.capitalize(), then=one)
    two = page.get_by_text("2 changes waiting to be pushed")
    choose_in_first_row(page, "tickets", TICKET_STAGE_COLUMN, f"{stage_label} ({pipeline_name})", then=two)
    expect(two).to_be_visible(timeout=20_000)
    shoot(page, "14-tickets-edited")
    push_changes(page)
    expect(page.get_by_text("Pushed 2 changes to HubSpot")).to_be_visible(timeout=30_000)
    now = next(t for t in sandbox.truth("tickets") if t["id"] == target["id"])["properties"]
    assert (now["hs_ticket_priority"], now["hs_pipeline_stage"]) == (priority, stage_id)


def test_search_finds_a_ticket_and_an_email_by_their_text_and_opens_them(
    synced: dict[str, str], page: Page
) -> None:
    base = synced["url"]
    sandbox = SandboxAdmin(synced["sandbox"])
    ticket = next(t for t in sandbox.truth("tickets") if t["properties"]["subject"] == "Не работает экспорт")
    page.goto(base + "/search")
    settle(page)
    box = page.get_by_placeholder("A name, email, company, deal, ticket subject or words from a note")
    box.fill("экспорт")
    box.press("Enter")
    expect(page.get_by_role("heading", name="Tickets (1)")).to_be_visible(timeout=20_000)
    page.get_by_role("link", name="Не работает экспорт").click()
    settle(page)
    expect(page.get_by_role("heading", name="Не работает экспорт")).to_be_visible()
    assert f"id={ticket['id']}" in page.url

    email = next(
        r for r in sandbox.truth("emails") if "<script>" in (r["properties"].get("hs_email_html") or "")
    )
    contact = next(
        c
        for c in sandbox.truth("contacts")
        if str(c["id"]) == str(email["associations"]["contacts"][0]["id"])
    )
    page.goto(base + "/search")
    settle(page)
    box.fill("click here to confirm")
    box.press("Enter")
    expect(page.get_by_role("heading", name="Interactions (1)")).to_be_visible(timeout=20_000)
    day = email["properties"]["hs_timestamp"][:10]
    # Its subject is a script tag as typed: HubSpot subjects are plain text, shown as text.
    subject = email["properties"]["hs_email_subject"]
    assert "<script>" in subject
    link = page.get_by_role("link", name=f"Email · {day} · {subject}")
    expect(link).to_be_visible()
    link.click()
    settle(page)
    name = f"{contact['properties']['firstname']} {contact['properties']['lastname']}"
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    assert f"id={contact['id']}" in page.url
    expect(page.get_by_test_id("stExpander").filter(has_text="please click here to confirm")).to_have_count(1)

    # A word in ticket subjects and in emails and calls: each kind under its own heading.
    page.goto(base + "/search")
    settle(page)
    box.fill("invoice")
    box.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(r"^Tickets \(\d+\+?\)$"))).to_be_visible(
        timeout=20_000
    )
    expect(page.get_by_role("heading", name=re.compile(r"^Interactions \(\d+\+?\)$"))).to_be_visible()
    expect(page.get_by_role("link", name="Invoice shows the wrong VAT number").first).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Email · .* · Your invoice$")).first).to_be_visible()
    shoot(page, "15-search")
