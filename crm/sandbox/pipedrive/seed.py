"""Seed data: a believable Pipedrive company, the same for the same seed, sizes and anchor day.

Faker (seeded) fills small pools of names and company names per locale; records are composed
from the pools with ``random.Random(seed)``, so thousands of persons take well under a second.
Ids rise with creation time. A few values are hostile on purpose (HTML and script, spreadsheet
formulas, non-Latin scripts, emoji) so every screen showing CRM data is tested against them.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import unicodedata
from typing import TYPE_CHECKING, Any

from faker import Faker

from crm.sandbox.pipedrive.models import Activity, Note, Pipeline, Stage, User

if TYPE_CHECKING:
    from crm.sandbox.pipedrive.state import PipedriveState

DAY = 86_400
HISTORY_DAYS = 730
LOCALES = (("en_US", 40), ("en_GB", 10), ("de_DE", 8), ("fr_FR", 8), ("es_ES", 6), ("pt_BR", 5), ("et_EE", 4),
           ("ja_JP", 3), ("zh_CN", 2), ("ru_RU", 2), ("el_GR", 2), ("ar_AA", 2), ("hi_IN", 2))  # fmt: skip
POOL = 50
PIPELINES = (
    ("Sales pipeline", (("Qualified", 10), ("Contact made", 20), ("Demo scheduled", 40), ("Proposal made", 60),
                        ("Negotiations started", 80))),
    ("Renewals", (("Upcoming", 50), ("In discussion", 70), ("Committed", 90))),
)  # fmt: skip
LEAD_SOURCES = ("Website", "Referral", "Event", "Cold outreach", "Partner")
INDUSTRIES = ("Software", "Manufacturing", "Retail", "Finance", "Healthcare", "Education")
ACTIVITY_TYPES = ("call", "meeting", "email", "task", "lunch")
HOSTILE_PERSONS: dict[int, dict[str, str]] = {
    1: {"name": "<script>alert(1)</script>"},
    2: {"name": "<img src=x onerror=alert(1)>"},
    3: {"job_title": '=HYPERLINK("http://evil.example","x")'},
    4: {"name": "+cmd @SUM(A1)"},
    5: {"name": "Zoë 🚀 Ünïcødé"},
    6: {"name": "さくら 山田"},
    7: {"name": "Анна Иванова"},
}
HOSTILE_ORGS = {1: "<b>Bold</b> & Co", 2: "=1+2 Holdings", 3: "株式会社サンドボックス"}
HOSTILE_DEALS = {1: "<script>alert('deal')</script>", 2: "-2+3 renewal"}


@functools.lru_cache(maxsize=4)
def _pools(seed: int) -> tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...]:
    pools = []
    for locale, _ in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        firsts = tuple(fake.first_name() for _ in range(POOL))
        lasts = tuple(fake.last_name() for _ in range(POOL))
        companies = tuple(fake.company() for _ in range(POOL // 2))
        pools.append((firsts, lasts, companies))
    return tuple(pools)


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in plain if c.isalnum()) or "person"


def anchor_ts(anchor_date: str) -> int:
    """The end of the seeded history: midnight UTC after ``anchor_date``, or now."""
    if anchor_date:
        day = dt.date.fromisoformat(anchor_date)
        return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) + DAY
    return int(dt.datetime.now(dt.UTC).timestamp())


def seed_company(state: PipedriveState) -> dict[str, int]:
    """Fill ``state`` (already emptied) from its config; returns the counts."""
    cfg = state.config
    rng = random.Random(cfg.seed)
    end = anchor_ts(cfg.anchor_date)
    start = end - HISTORY_DAYS * DAY
    pools = _pools(cfg.seed)
    weights = [w for _, w in LOCALES]

    for i in range(max(cfg.users, 1)):
        user_firsts, user_lasts, _ = pools[0]
        name = f"{user_firsts[(i * 7) % POOL]} {user_lasts[(i * 11) % POOL]}"
        state.users.append(
            User(10_000_001 + i, name, f"{_ascii(name)}@{cfg.company_domain}.example.com", i == 0, start)
        )
    stage_id = 0
    for order, (pipeline_name, stages) in enumerate(PIPELINES, start=1):
        pipeline = Pipeline(order, pipeline_name, order, [])
        for stage_order, (stage_name, probability) in enumerate(stages, start=1):
            stage_id += 1
            pipeline.stages.append(Stage(stage_id, pipeline.id, stage_name, stage_order, probability))
        state.pipelines.append(pipeline)

    fields = state.fields
    lead_source = fields.create_custom("persons", "Lead source", "enum", list(LEAD_SOURCES), start)
    linkedin = fields.create_custom("persons", "LinkedIn profile", "varchar", [], start)
    industry = fields.create_custom("organizations", "Industry", "enum", list(INDUSTRIES), start)
    months = fields.create_custom("deals", "Contract months", "double", [], start)
    user_ids = [u.id for u in state.users]

    def times() -> tuple[int, int]:
        added = rng.randint(start, end - DAY)
        # Seeded edits end an hour before the anchor, so "changed since a moment ago" finds only new edits.
        return added, min(end - 3600, added + int(rng.expovariate(1 / (60 * DAY))))

    org_times = sorted(times() for _ in range(cfg.organizations))
    for n, (added, updated) in enumerate(org_times, start=1):
        _, _, companies = pools[rng.choices(range(len(LOCALES)), weights)[0]]
        name = HOSTILE_ORGS.get(n) or f"{rng.choice(companies)}"
        values: dict[str, Any] = {"name": name, "owner_id": rng.choice(user_ids), "address": None,
                                  "visible_to": 3, "label_ids": []}  # fmt: skip
        custom = {
            industry.key: rng.choice(industry.options or [{"id": None}])["id"] if rng.random() < 0.7 else None
        }
        state.records.add("organizations", values, custom, added, updated)

    person_times = sorted(times() for _ in range(cfg.persons))
    for n, (added, updated) in enumerate(person_times, start=1):
        firsts, lasts, _ = pools[rng.choices(range(len(LOCALES)), weights)[0]]
        first, last = rng.choice(firsts), rng.choice(lasts)
        hostile = HOSTILE_PERSONS.get(n, {})
        name = hostile.get("name") or f"{first} {last}"
        first_name, _, last_name = name.partition(" ")
        email = (
            f"{_ascii(first)}.{_ascii(last)}{n}@{rng.choice(('example.com', 'example.org', 'example.net'))}"
        )
        values = {
            "name": name, "first_name": first_name, "last_name": last_name or None,
            "owner_id": rng.choice(user_ids), "org_id": rng.randint(1, cfg.organizations) if cfg.organizations and rng.random() < 0.8 else None,
            "emails": [{"value": email, "primary": True, "label": "work"}],
            "phones": [{"value": f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}", "primary": True, "label": "work"}],
            "visible_to": 3, "label_ids": [], "picture_id": None, "postal_address": None, "notes": None, "im": [],
            "birthday": None, "job_title": hostile.get("job_title") or rng.choice(("CEO", "CTO", "Head of Sales",
                                                                                  "Buyer", "Engineer", None)),
        }  # fmt: skip
        custom = {
            lead_source.key: rng.choice(lead_source.options or [{"id": None}])["id"]
            if rng.random() < 0.6
            else None,
            linkedin.key: f"https://www.linkedin.com/in/{_ascii(first)}-{n}" if rng.random() < 0.3 else None,
        }
        state.records.add("persons", values, custom, added, updated)

    deal_times = sorted(times() for _ in range(cfg.deals))
    for n, (added, updated) in enumerate(deal_times, start=1):
        pipeline = state.pipelines[0] if rng.random() < 0.8 else state.pipelines[1]
        stage = rng.choice(pipeline.stages)
        status = rng.choices(("open", "won", "lost"), (70, 20, 10))[0]
        person_id = rng.randint(1, cfg.persons) if cfg.persons and rng.random() < 0.9 else None
        org_id = state.records.records["persons"][person_id].values["org_id"] if person_id else None
        values = {
            "title": HOSTILE_DEALS.get(n) or f"{rng.choice(('Annual plan', 'Pilot', 'Expansion', 'Renewal', 'Onboarding'))} #{n}",
            "value": rng.choice((1_000, 5_000, 12_000, 25_000, 80_000)), "currency": rng.choice(("USD", "EUR", "GBP")),
            "owner_id": rng.choice(user_ids), "person_id": person_id, "org_id": org_id, "pipeline_id": pipeline.id,
            "stage_id": stage.id, "status": status, "probability": None,
            "expected_close_date": dt.date.fromtimestamp(updated + 30 * DAY).isoformat(),
            "won_time": None, "lost_time": None, "close_time": None, "stage_change_time": None,
            "lost_reason": "Budget" if status == "lost" else None, "visible_to": 3, "label_ids": [],
            "is_archived": False, "origin": "ManuallyCreated",
        }  # fmt: skip
        state.records.add("deals", values, {months.key: rng.choice((6, 12, 24, 36)) if rng.random() < 0.5 else None},
                          added, updated)  # fmt: skip

    # A timeline for every third person (their organization too), in Pipedrive's shapes: note
    # content is HTML, an activity has a due day and time (UTC) and a duration.
    for n in range(1, min(cfg.persons, 40) + 1, 3):
        person = state.records.records["persons"][n]
        added = person.add_ts + DAY
        org_id = person.values.get("org_id")
        state.notes.append(Note(len(state.notes) + 1, f"<p>Call notes #{n}: <b>follow up</b> next week.</p>",
                                rng.choice(user_ids), n, org_id, None, added, added))  # fmt: skip
        state.activities.append(Activity(
            len(state.activities) + 1, f"Follow-up {n}", rng.choice(ACTIVITY_TYPES), rng.choice(user_ids),
            rng.random() < 0.5, dt.date.fromtimestamp(added + 7 * DAY).isoformat(), "10:00", n, org_id, None,
            "<p>Agenda: <i>pricing</i> &amp; next steps</p>" if n % 2 else "", added, added,
            duration="00:30" if n % 2 else "01:15",
        ))  # fmt: skip
    # And for the deals that have a person: a note on the deal and a call with its person.
    for deal in list(state.records.records["deals"].values())[:12]:
        person_id = deal.values.get("person_id")
        if not person_id:
            continue
        added = deal.add_ts + DAY // 2
        state.notes.append(Note(len(state.notes) + 1, f"<ul><li>Deal #{deal.id}: sent the proposal</li></ul>",
                                int(deal.values["owner_id"]), None, None, deal.id, added, added))  # fmt: skip
        state.activities.append(Activity(
            len(state.activities) + 1, f"Call about deal #{deal.id}", "call", int(deal.values["owner_id"]), True,
            dt.date.fromtimestamp(added + DAY).isoformat(), "14:30", person_id, deal.values.get("org_id"), deal.id,
            "", added, added, duration="00:20", participants=[person_id], done_ts=added + DAY,
        ))  # fmt: skip
    return state.counts()
