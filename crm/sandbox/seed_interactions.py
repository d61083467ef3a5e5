"""Seeded interactions: tickets, engagements, call transcripts and conversation threads.

Runs after contacts, companies and deals with its own random stream (seeded from the portal
seed), so adding interactions never changes the records seeded before them. Sizes are
totals from the config (``tickets``, ``engagements``, ``threads``): engagements are spread
unevenly, a few contacts getting many, as in a real portal.

Hostile on purpose, like the rest of the seed: an email whose HTML carries ``<script>`` and
an ``onerror`` image, a note at HubSpot's 65,536-character limit, a 100 KB call transcript,
Japanese, Arabic and Cyrillic text and emoji in subjects, bodies and chat messages.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import TYPE_CHECKING, Any

from crm.sandbox.associations import DEFAULT_TYPES
from crm.sandbox.conversations import CHANNELS, Actor, Message, Thread, message_id
from crm.sandbox.objects.types import iso
from crm.sandbox.pipelines import (
    DEFAULT_TICKET_PIPELINE,
    ESCALATION_STAGES,
    ESCALATIONS_PIPELINE,
    TICKET_STAGES,
)
from crm.sandbox.transcripts import Transcript, Utterance

if TYPE_CHECKING:
    from crm.sandbox.state import SandboxState

DAY_MS = 86_400_000
MINUTE_MS = 60_000
MAX_NOTE = 65_536
TRANSCRIPT_BYTES = 100_000
ENGAGEMENT_KINDS = ("notes", "calls", "emails", "meetings", "tasks")
ENGAGEMENT_WEIGHTS = (25, 20, 30, 10, 15)
# The first engagements take each type in turn, so every type's hostile values exist even
# in a small portal.
FIRST_TYPES = ("emails", "notes", "calls", "meetings", "tasks") * 2
TICKET_SUBJECTS = (
    "Cannot log in after password reset",
    "Invoice shows the wrong VAT number",
    "Export to CSV times out",
    "Feature request: dark mode",
    "Sync with calendar stopped",
    "Refund for duplicate charge",
    "Mobile app crashes on start",
    "How do I add a second admin?",
    "API returns 429 too often",
    "Data import stuck at 90%",
    "Cancel my subscription",
    "SSO configuration help",
)
TICKET_BODIES = (
    "Customer reports the problem since the last release. Steps to reproduce attached.",
    "Happens for every user in their team; workaround given, fix pending.",
    "Asked for screenshots and the browser version.",
    "Escalated after the second follow-up; customer is waiting on us.",
)
NOTE_BODIES = (
    "Spoke with {first} about renewal timing; budget approved for next quarter.",
    "<p>{first} asked for a <b>security questionnaire</b>. Sent it over.</p>",
    "Follow-up: {first} wants a demo for the finance team.",
    "Left a voicemail for {first}. Will try again Thursday.",
)
CALL_BODIES = (
    "Discovery call with {first}. Pain points: reporting and onboarding time.",
    "Checked in with {first} on the pilot; two blockers, both on our side.",
    "{first} called about the invoice; resolved on the call.",
)
EMAIL_SUBJECTS = (
    "Re: your trial",
    "Proposal and next steps",
    "Quick question about onboarding",
    "Your invoice",
    "Meeting notes",
)
MEETING_TITLES = (
    "Kick-off",
    "Quarterly business review",
    "Demo for the finance team",
    "Onboarding session",
    "Contract review",
)
TASK_SUBJECTS = (
    "Send the proposal",
    "Call back about pricing",
    "Prepare the QBR deck",
    "Chase signed contract",
    "Book onboarding",
)
CHAT_OPENERS = (
    "Hi, I can't find the export button.",
    "Hello! Is there a discount for annual plans?",
    "My invoice looks wrong, can someone help?",
    "How do I reset my password?",
)
AGENT_REPLIES = (
    "Thanks for reaching out! Let me check.",
    "Here is the article that explains it.",
    "I've fixed that on our side; could you try again?",
    "Happy to help, anything else?",
)

HOSTILE_TICKETS: dict[int, dict[str, str]] = {
    1: {
        "subject": "<script>alert('ticket')</script> Login broken",
        "content": "<img src=x onerror=alert(1)>",
    },
    2: {"subject": "ログインできません 🚨", "content": "パスワードをリセットした後、ログインできません。"},
    3: {"subject": "مشكلة في الفاتورة", "content": "الفاتورة تحتوي على رقم ضريبي خاطئ."},
    4: {"subject": "Не работает экспорт", "content": ("Журнал ошибок: " + "ошибка 504; " * 400).strip()},
    5: {
        "subject": '=HYPERLINK("http://evil.example","x")',
        "content": "[click](http://evil.example) **now**",
    },
}
_SCRIPT_HTML = (
    "<html><body><p>Hi,</p><script>alert('email')</script><img src=x onerror=alert(1)>"
    '<p>Please <a href="javascript:alert(2)">click here</a> to confirm.</p></body></html>'
)
HOSTILE_ENGAGEMENTS: dict[tuple[str, int], dict[str, str]] = {
    ("emails", 1): {
        "hs_email_subject": "<script>alert('subject')</script>",
        "hs_email_html": _SCRIPT_HTML,
        "hs_email_text": "Hi, please click here to confirm.",
    },
    ("emails", 2): {
        "hs_email_subject": "お見積もりについて 📄",
        "hs_email_text": "お世話になっております。見積書を添付します。",
        "hs_email_html": "<p>お世話になっております。<br>見積書を添付します。</p>",
    },
    ("notes", 1): {"hs_note_body": ("Long meeting log. " * (MAX_NOTE // 18 + 1))[:MAX_NOTE]},
    ("notes", 2): {"hs_note_body": "اتصل العميل بخصوص التجديد. 🤝"},
    ("calls", 1): {
        "hs_call_title": "Звонок: продление договора",
        "hs_call_body": "Клиент просит скидку 10 %.",
    },
    ("meetings", 1): {
        "hs_meeting_title": "🚀 Launch review — Ωmega 株式会社",
        "hs_meeting_body": "<img src=x onerror=alert('meeting')>",
    },
    ("tasks", 1): {"hs_task_subject": "@SUM(A1) follow up", "hs_task_body": "=1+1"},
}
HOSTILE_MESSAGES = (
    "<script>alert('chat')</script> hello?",
    "こんにちは、請求書について質問があります。",
    "مرحبا، أحتاج مساعدة في حسابي.",
    "Привет! 👋 Не могу войти в аккаунт 😭",
)


def seed_interactions(
    state: SandboxState, anchor: int, owner_ids: list[Any], contact_ids: list[int]
) -> dict[str, int]:
    """Seed tickets, engagements, transcripts and threads; returns their counts."""
    config = state.config
    rng = random.Random(f"{state.seed_key}:interactions")
    state.transcripts.clear()
    state.conversations.reset(anchor - 900 * DAY_MS)
    portal = _Portal(state, rng, anchor, owner_ids, contact_ids, _people(state, contact_ids), {})
    return {
        "tickets": _tickets(portal, max(0, config.tickets)),
        "engagements": _engagements(portal, max(0, config.engagements)),
        "threads": _threads(portal, max(0, config.threads)),
    }


@dataclasses.dataclass
class _Portal:
    """What every seeding step reads: the state, the random stream, and the contacts seeded before."""

    state: SandboxState
    rng: random.Random
    anchor: int
    owner_ids: list[Any]
    contact_ids: list[int]
    people: dict[int, tuple[str, str, str]]
    tickets_by_contact: dict[int, list[int]]


def _people(state: SandboxState, contact_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """(first name, last name, email) per contact, read back from the seeded records."""
    store = state.objects.types["contacts"]
    result = {}
    for contact_id in contact_ids:
        record = store.records[contact_id]
        result[contact_id] = (
            store.raw(record, "firstname") or "",
            store.raw(record, "lastname") or "",
            store.raw(record, "email") or "",
        )
    return result


def _span(rng: random.Random, anchor: int, created: int) -> tuple[int, int]:
    """A moment between ``created`` and the anchor, and a later last-modified time."""
    start = max(created, anchor - 700 * DAY_MS)
    moment = rng.randrange(start, anchor - MINUTE_MS) if anchor - MINUTE_MS > start else start
    return moment, moment + int((anchor - moment) * rng.random() ** 3)


def _tickets(p: _Portal, count: int) -> int:
    state, rng, anchor, owner_ids, contact_ids = p.state, p.rng, p.anchor, p.owner_ids, p.contact_ids
    tickets_by_contact = p.tickets_by_contact
    associations = state.objects.associations
    contacts = state.objects.types["contacts"].records
    for n in range(1, count + 1):
        contact = rng.choice(contact_ids) if contact_ids else None
        created, updated = _span(rng, anchor, contacts[contact].created if contact else anchor - 700 * DAY_MS)
        escalation = rng.random() < 0.2
        stages = ESCALATION_STAGES if escalation else TICKET_STAGES
        stage_id, _, ticket_state = rng.choices(stages, weights=[3] * (len(stages) - 1) + [5])[0]
        values: dict[str, str | None] = {
            "subject": rng.choice(TICKET_SUBJECTS),
            "content": rng.choice(TICKET_BODIES),
            "hs_pipeline": ESCALATIONS_PIPELINE if escalation else DEFAULT_TICKET_PIPELINE,
            "hs_pipeline_stage": stage_id,
            "hs_ticket_priority": rng.choice(("LOW", "MEDIUM", "MEDIUM", "HIGH", "URGENT")),
            "hs_ticket_category": rng.choice(
                ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")
            ),
            "source_type": rng.choice(("CHAT", "EMAIL", "FORM", "PHONE")),
            "hubspot_owner_id": rng.choice(owner_ids) if rng.random() < 0.85 else None,
            "closed_date": iso(updated) if ticket_state == "CLOSED" else None,
        }
        values.update(HOSTILE_TICKETS.get(n, {}))
        record = state.objects.create("tickets", values, updated, created=created, lag=False)
        if contact is None:
            continue
        associations.add("tickets", record.id, "contacts", contact, [16])
        tickets_by_contact.setdefault(contact, []).append(record.id)
        for company in associations.targets("contacts", contact, "companies"):
            associations.add("tickets", record.id, "companies", company, [26])
            break
        deals = list(associations.targets("contacts", contact, "deals"))
        if deals and rng.random() < 0.3:
            associations.add("tickets", record.id, "deals", rng.choice(deals), [28])
    return count


def _engagement_contact(rng: random.Random, contact_ids: list[int]) -> int:
    """Uneven on purpose: a third of engagements land on the first 2% of contacts."""
    if rng.random() < 0.33:
        return contact_ids[rng.randrange(max(1, len(contact_ids) // 50))]
    return rng.choice(contact_ids)


def _engagements(p: _Portal, count: int) -> int:
    state, rng, anchor, owner_ids, contact_ids = p.state, p.rng, p.anchor, p.owner_ids, p.contact_ids
    people, tickets_by_contact = p.people, p.tickets_by_contact
    if not contact_ids:
        return 0
    associations = state.objects.associations
    contacts = state.objects.types["contacts"].records
    seen: dict[str, int] = {}
    for n in range(count):
        kind = (
            FIRST_TYPES[n]
            if n < len(FIRST_TYPES)
            else rng.choices(ENGAGEMENT_KINDS, weights=ENGAGEMENT_WEIGHTS)[0]
        )
        seen[kind] = seen.get(kind, 0) + 1
        contact = _engagement_contact(rng, contact_ids)
        first, last, email = people[contact]
        moment, updated = _span(rng, anchor, contacts[contact].created)
        values = _engagement_values(rng, kind, moment, first, last, email, owner_ids)
        values.update(HOSTILE_ENGAGEMENTS.get((kind, seen[kind]), {}))
        huge = kind == "calls" and seen[kind] == 2
        if huge:
            values.update({"hs_call_status": "COMPLETED", "hs_call_duration": "3540000"})
        record = state.objects.create(kind, values, updated, created=moment, lag=False)
        to_contact, to_company, to_deal, to_ticket = (
            DEFAULT_TYPES[(kind, other)][0] for other in ("contacts", "companies", "deals", "tickets")
        )
        associations.add(kind, record.id, "contacts", contact, [to_contact])
        for company in associations.targets("contacts", contact, "companies"):
            associations.add(kind, record.id, "companies", company, [to_company])
            break
        deals = list(associations.targets("contacts", contact, "deals"))
        if deals and rng.random() < 0.25:
            associations.add(kind, record.id, "deals", rng.choice(deals), [to_deal])
        tickets = tickets_by_contact.get(contact)
        if tickets and kind in ("emails", "calls", "notes") and rng.random() < 0.3:
            associations.add(kind, record.id, "tickets", rng.choice(tickets), [to_ticket])
        if kind == "calls" and values.get("hs_call_status") == "COMPLETED" and (huge or rng.random() < 0.4):
            _transcript(state, rng, record.id, moment, first, last, email, huge=huge)
    return count


def _engagement_values(
    rng: random.Random, kind: str, moment: int, first: str, last: str, email: str, owner_ids: list[Any]
) -> dict[str, str | None]:
    owner = rng.choice(owner_ids) if rng.random() < 0.9 else None
    values: dict[str, str | None] = {"hs_timestamp": iso(moment), "hubspot_owner_id": owner}
    if kind == "notes":
        values["hs_note_body"] = rng.choice(NOTE_BODIES).format(first=first)
    elif kind == "calls":
        status = rng.choices(("COMPLETED", "NO_ANSWER", "BUSY", "FAILED"), weights=(70, 18, 8, 4))[0]
        values.update(
            {
                "hs_call_title": f"Call with {first} {last}".strip(),
                "hs_call_body": rng.choice(CALL_BODIES).format(first=first),
                "hs_call_direction": rng.choice(("INBOUND", "OUTBOUND", "OUTBOUND")),
                "hs_call_status": status,
                "hs_call_duration": str(rng.randrange(60, 2400) * 1000) if status == "COMPLETED" else "0",
                "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7"
                if status == "COMPLETED"
                else "73a0d17f-1163-4015-bdd5-ec830791da20",
                "hs_call_to_number": f"+1 {rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
                "hs_call_recording_url": f"https://recordings.example.com/{rng.getrandbits(64):016x}.mp3"
                if status == "COMPLETED"
                else None,
            }
        )
    elif kind == "emails":
        incoming = rng.random() < 0.45
        subject = rng.choice(EMAIL_SUBJECTS)
        text = f"Hi {first},\n\nThanks for your time today. Notes below.\n\nBest regards"
        values.update(
            {
                "hs_email_direction": "INCOMING_EMAIL" if incoming else "EMAIL",
                "hs_email_status": "SENT",
                "hs_email_subject": subject,
                "hs_email_text": text,
                "hs_email_html": "<p>" + text.replace("\n\n", "</p><p>") + "</p>",
                "hs_email_headers": json.dumps(
                    {
                        "from": {"email": email if incoming else "sales@sandbox-portal.example.com"},
                        "to": [
                            {
                                "email": "sales@sandbox-portal.example.com" if incoming else email,
                                "firstName": "" if incoming else first,
                                "lastName": "" if incoming else last,
                            }
                        ],
                        "cc": [],
                        "bcc": [],
                    },
                    ensure_ascii=False,
                ),
            }
        )
    elif kind == "meetings":
        past = rng.random() < 0.8
        values.update(
            {
                "hs_meeting_title": rng.choice(MEETING_TITLES),
                "hs_meeting_body": f"Agenda for {first}: goals, timeline, open questions.",
                "hs_meeting_start_time": iso(moment),
                "hs_meeting_end_time": iso(moment + rng.choice((30, 45, 60)) * MINUTE_MS),
                "hs_meeting_outcome": rng.choice(("COMPLETED", "COMPLETED", "NO_SHOW", "RESCHEDULED"))
                if past
                else "SCHEDULED",
                "hs_meeting_location": rng.choice(("Zoom", "Google Meet", "Office", None)),
            }
        )
    else:
        done = rng.random() < 0.55
        values.update(
            {
                "hs_task_subject": rng.choice(TASK_SUBJECTS),
                "hs_task_body": f"For {first} {last}".strip(),
                "hs_task_status": "COMPLETED"
                if done
                else rng.choice(("NOT_STARTED", "IN_PROGRESS", "WAITING")),
                "hs_task_priority": rng.choice(("NONE", "LOW", "MEDIUM", "HIGH")),
                "hs_task_type": rng.choice(("TODO", "CALL", "EMAIL")),
            }
        )
    return values


def _transcript(
    state: SandboxState,
    rng: random.Random,
    call_id: int,
    moment: int,
    first: str,
    last: str,
    email: str,
    *,
    huge: bool,
) -> None:
    """A transcript for one call; the ``huge`` one passes 100 KB and mixes scripts and emoji."""
    lines = [
        "Thanks for taking the call today.",
        "Sure, happy to talk.",
        "How is the rollout going?",
        "Mostly fine, reporting is slow for us.",
        "Let me look into that and get back to you.",
    ]
    if huge:
        # Long utterances built by repetition: 100 KB of text without a random draw per word.
        block = " ".join(
            lines
            + [
                "Мы обсудили сроки внедрения.",
                "価格について確認させてください。",
                "شكراً جزيلاً 🙏",
                "<script>alert('transcript')</script>",
            ]
        )
        texts = [f"{i}: {block} " * 8 for i in range(TRANSCRIPT_BYTES // (len(block.encode()) * 8) + 2)]
    else:
        texts = [rng.choice(lines) for _ in range(rng.randrange(4, 12))]
    utterances: list[Utterance] = []
    clock = 0
    for index, text in enumerate(texts):
        agent = index % 2 == 0
        length = rng.randrange(3000, 20000)
        utterances.append(
            Utterance(
                speaker_id="A-1" if agent else f"V-{call_id}",
                speaker_name="Sales rep" if agent else f"{first} {last}".strip(),
                speaker_email=None if agent else email or None,
                text=text,
                start_ms=clock,
                end_ms=clock + length,
            )
        )
        clock += length
    transcript_id = f"{call_id}0{len(state.transcripts) + 1}"
    state.transcripts[transcript_id] = Transcript(transcript_id, call_id, moment + clock, utterances)
    calls = state.objects.types["calls"]
    calls.put(calls.records[call_id], "hs_call_transcription_id", transcript_id)


def _threads(p: _Portal, count: int) -> int:
    state, rng, anchor, owner_ids, contact_ids = p.state, p.rng, p.anchor, p.owner_ids, p.contact_ids
    people, tickets_by_contact = p.people, p.tickets_by_contact
    if not contact_ids:
        return 0
    contacts = state.objects.types["contacts"].records
    channels = list(CHANNELS)
    agents = [f"A-{9_000_000 + i}" for i in range(max(1, len(owner_ids)))]
    for n in range(count):
        contact = rng.choice(contact_ids)
        first, last, email = people[contact]
        channel = rng.choices(channels, weights=(50, 35, 10, 5))[0]
        created, _ = _span(rng, anchor, contacts[contact].created)
        thread = state.conversations.add(Thread(state.conversations.next_id, created, channel, contact))
        visitor = Actor(
            f"V-{contact}", f"{first} {last}".strip(), ("EMAIL", email) if channel == "1002" else None
        )
        agent = Actor(rng.choice(agents), "Support team")
        clock = created
        for index in range(rng.randrange(2, 7)):
            incoming = index % 2 == 0
            if incoming:
                text = (
                    HOSTILE_MESSAGES[n]
                    if index == 0 and n < len(HOSTILE_MESSAGES)
                    else rng.choice(CHAT_OPENERS)
                )
            else:
                text = rng.choice(AGENT_REPLIES)
            rich = "<p>" + text + "</p>"
            subject = rng.choice(EMAIL_SUBJECTS) if channel == "1002" else None
            thread.messages.append(
                Message(
                    message_id(thread.id, index),
                    thread.id,
                    clock,
                    "MESSAGE",
                    "INCOMING" if incoming else "OUTGOING",
                    text,
                    rich,
                    visitor if incoming else agent,
                    [agent] if incoming else [visitor],
                    channel,
                    subject,
                )
            )
            clock += rng.randrange(1, 240) * MINUTE_MS
        if rng.random() < 0.6:
            thread.status = "CLOSED"
            thread.closed_at = clock
        thread.assigned_to = agent.actor_id if rng.random() < 0.8 else None
        tickets = tickets_by_contact.get(contact)
        if tickets and rng.random() < 0.4:
            thread.ticket_id = rng.choice(tickets)
    return count
