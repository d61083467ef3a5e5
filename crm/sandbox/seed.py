"""Seed data: a believable portal, the same for the same seed, sizes and anchor day.

Faker (seeded) fills small pools of names, companies, jobs and cities per locale once per
seed; records are then composed from the pools with ``random.Random(seed)``, which keeps
200,000 contacts to seconds and a 50-contact reset to milliseconds. Ids rise with creation
time, as they do in HubSpot.

A few values are hostile on purpose (HTML and script, spreadsheet formulas, markdown links,
very long text, non-Latin scripts, emoji) so every screen that shows CRM data is tested
against them.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import random
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from faker import Faker

from crm.sandbox.objects.types import iso
from crm.sandbox.owners import Owner
from crm.sandbox.pipelines import DEFAULT_PIPELINE, DEFAULT_STAGES, RENEWAL_STAGES, RENEWALS_PIPELINE
from crm.sandbox.properties import COMPANY_TYPES, INDUSTRIES, LEAD_STATUSES
from crm.sandbox.seed_interactions import seed_interactions

if TYPE_CHECKING:
    from crm.sandbox.state import SandboxState

DAY_MS = 86_400_000
HISTORY_DAYS = 730
# (locale, weight, country): mostly Latin scripts, with Japanese, Chinese, Russian, Arabic,
# Hindi and Greek names mixed in.
LOCALES = (
    ("en_US", 38, "United States"),
    ("en_GB", 10, "United Kingdom"),
    ("de_DE", 8, "Germany"),
    ("fr_FR", 8, "France"),
    ("es_ES", 6, "Spain"),
    ("pt_BR", 5, "Brazil"),
    ("it_IT", 4, "Italy"),
    ("nl_NL", 3, "Netherlands"),
    ("pl_PL", 3, "Poland"),
    ("sv_SE", 2, "Sweden"),
    ("ja_JP", 3, "Japan"),
    ("zh_CN", 2, "China"),
    ("ru_RU", 2, "Russia"),
    ("el_GR", 2, "Greece"),
    ("ar_AA", 2, "United Arab Emirates"),
    ("hi_IN", 2, "India"),
)
POOL = 60
TLDS = ("com", "io", "net", "co", "org", "de", "fr", "co.uk")
LIFECYCLE_WEIGHTS = (
    ("subscriber", 10),
    ("lead", 35),
    ("marketingqualifiedlead", 15),
    ("salesqualifiedlead", 12),
    ("opportunity", 10),
    ("customer", 15),
    ("evangelist", 2),
    ("other", 1),
)
STAGE_WEIGHTS = (18, 16, 14, 12, 10, 18, 12)
RENEWAL_WEIGHTS = (30, 25, 30, 15)
PRODUCTS = (
    "Annual plan",
    "Enterprise licence",
    "Onboarding package",
    "Support renewal",
    "Pilot",
    "Expansion",
    "Data migration",
    "Training",
    "Premium tier",
    "Multi-year agreement",
)
OWNER_TEAMS = ("Sales", "Customer Success", "Partnerships")
LONG_TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 180).strip()

# Hostile values, by object type and position (1-based among the seeded records).
HOSTILE: dict[str, dict[int, dict[str, str]]] = {
    "contacts": {
        1: {"firstname": "<script>alert(1)</script>"},
        2: {"lastname": "<img src=x onerror=alert(1)>"},
        3: {"jobtitle": '=HYPERLINK("http://evil.example","x")'},
        4: {"firstname": "+cmd", "lastname": "@SUM(A1)"},
        5: {"jobtitle": "[click me](http://evil.example)", "lastname": "**bold** _name_"},
        6: {"firstname": "Zoë 🚀", "lastname": "Ünïcødé 😀"},
        7: {"firstname": "さくら", "lastname": "山田"},
        8: {"firstname": "Анна", "lastname": "Иванова"},
        9: {"firstname": "ليلى", "lastname": "حداد", "city": "القاهرة"},
        10: {"address": LONG_TEXT, "jobtitle": "Head of " + "Very " * 60 + "Long Titles"},
        11: {"firstname": "-2+3", "company": "=1+1"},
    },
    "companies": {
        1: {"name": "<script>alert('company')</script> Ltd"},
        2: {"name": '=HYPERLINK("http://evil.example","x")'},
        3: {"description": LONG_TEXT},
        4: {"name": "株式会社テスト 🚀"},
        5: {"description": "[docs](http://evil.example) <b>bold</b>"},
    },
    "deals": {
        1: {"dealname": "<img src=x onerror=alert(1)>"},
        2: {"dealname": "=1+1"},
        3: {"dealname": "🚀 Expansion — Ωmega 株式会社", "description": LONG_TEXT},
        4: {"dealname": "@SUM(A1) [win](http://evil.example)"},
    },
}


@functools.lru_cache(maxsize=4)
def _pools(seed: int) -> dict[str, Any]:
    """Names, cities, companies and jobs from seeded Faker instances, computed once per seed."""
    pools: dict[str, Any] = {"locales": []}
    for index, (locale, weight, country) in enumerate(LOCALES):
        fake = _faker(locale)
        fake.seed_instance(seed * 1000 + index)
        pools["locales"].append(
            {
                "weight": weight,
                "country": country,
                "first": [fake.first_name() for _ in range(POOL)],
                "last": [fake.last_name() for _ in range(POOL)],
                "city": [fake.city() for _ in range(POOL // 3)],
            }
        )
    fake = _faker("en_US")
    fake.seed_instance(seed)
    pools["latin_first"] = pools["locales"][0]["first"]
    pools["latin_last"] = pools["locales"][0]["last"]
    pools["companies"] = [fake.company() for _ in range(POOL * 4)]
    pools["jobs"] = [fake.job() for _ in range(POOL * 2)]
    pools["streets"] = [fake.street_address() for _ in range(POOL * 2)]
    pools["phrases"] = [fake.catch_phrase() for _ in range(POOL)]
    return pools


@functools.cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def anchor_ms(anchor_date: str) -> int:
    """Midnight UTC of the anchor day (today when empty)."""
    day = dt.date.fromisoformat(anchor_date) if anchor_date else dt.datetime.now(dt.UTC).date()
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


@functools.lru_cache(maxsize=65_536)
def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", folded.lower())


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, int], ...]) -> Any:
    values, cumulative = _cumulative(pairs)
    return rng.choices(values, cum_weights=cumulative)[0]


@functools.lru_cache(maxsize=16)
def _cumulative(pairs: tuple[tuple[Any, int], ...]) -> tuple[list[Any], list[int]]:
    total, cumulative = 0, []
    for _, weight in pairs:
        total += weight
        cumulative.append(total)
    return [p[0] for p in pairs], cumulative


def _times(rng: random.Random, count: int, anchor: int) -> list[tuple[int, int]]:
    """(created, updated) pairs, created ascending, all before the anchor."""
    start = anchor - HISTORY_DAYS * DAY_MS
    created = sorted(rng.randrange(start, anchor - DAY_MS) for _ in range(count))
    return [(c, c + int((anchor - c) * rng.random() ** 2)) for c in created]


def seed_portal(state: SandboxState) -> dict[str, int]:
    """Replace every record, owner and custom property with a fresh seeded portal."""
    # Seeding allocates millions of long-lived objects and no cycles; the cyclic collector
    # would re-scan them over and over, doubling the time for large portals.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _seed(state)
    finally:
        if was_enabled:
            gc.enable()


def _seed(state: SandboxState) -> dict[str, int]:
    config = state.config
    # seed_key is the seed itself for the default portal, (seed, portal id) for the others.
    rng = random.Random(state.seed_key)
    pools = _pools(config.seed)
    anchor = anchor_ms(config.anchor_date)
    state.properties.reset()
    state.objects.reset()

    owners = _owners(rng, pools, max(0, config.owners), anchor)
    state.owners.reset(owners)
    owner_ids: list[str | None] = [o.id for o in owners] or [None]

    company_ids, company_names, company_domains = _companies(
        state, rng, pools, config.companies, anchor, owner_ids
    )
    contacts_by_company: dict[int, list[int]] = {}
    contact_ids = _contacts(
        state,
        rng,
        pools,
        config.contacts,
        anchor,
        owner_ids,
        company_ids,
        company_names,
        company_domains,
        contacts_by_company,
    )
    _deals(
        state,
        rng,
        config.deals,
        anchor,
        owner_ids,
        company_ids,
        company_names,
        contact_ids,
        contacts_by_company,
    )
    interactions = seed_interactions(state, anchor, owner_ids, contact_ids)
    return {
        "contacts": len(contact_ids),
        "companies": len(company_ids),
        "deals": config.deals,
        "owners": len(owners),
        **interactions,
    }


def _owners(rng: random.Random, pools: dict[str, Any], count: int, anchor: int) -> list[Owner]:
    owners = []
    seen: set[str] = set()
    for i in range(count):
        first, last = rng.choice(pools["latin_first"]), rng.choice(pools["latin_last"])
        local = f"{_ascii(first)}.{_ascii(last)}"
        while local in seen:
            local += str(i)
        seen.add(local)
        created = anchor - rng.randrange(400, 1500) * DAY_MS
        owners.append(
            Owner(
                id=str(41_000_000 + rng.randrange(0, 999_999) * 10 + i),
                email=f"{local}@sandbox-portal.example.com",
                first_name=first,
                last_name=last,
                user_id=9_000_000 + rng.randrange(0, 999_999) * 10 + i,
                team=OWNER_TEAMS[i % len(OWNER_TEAMS)],
                created=created,
                updated=created + rng.randrange(0, 300) * DAY_MS,
            )
        )
    return owners


def _companies(
    state: SandboxState,
    rng: random.Random,
    pools: dict[str, Any],
    count: int,
    anchor: int,
    owner_ids: list[Any],
) -> tuple[list[int], dict[int, str], dict[int, str]]:
    ids: list[int] = []
    names: dict[int, str] = {}
    domains: dict[int, str] = {}
    used: set[str] = set()
    locale_weights = tuple((i, loc["weight"]) for i, loc in enumerate(pools["locales"]))
    industries = [o["value"] for o in INDUSTRIES]
    types = [o["value"] for o in COMPANY_TYPES]
    for n, (created, updated) in enumerate(_times(rng, max(0, count), anchor), start=1):
        name = rng.choice(pools["companies"])
        base = _ascii(name.split(",")[0]) or "company"
        domain = f"{base}.{rng.choice(TLDS)}"
        while domain in used:
            domain = f"{base}{rng.randrange(2, 9999)}.{rng.choice(TLDS)}"
        used.add(domain)
        loc = pools["locales"][_weighted(rng, locale_weights)]
        values: dict[str, str | None] = {
            "name": name,
            "domain": domain,
            "website": f"https://www.{domain}",
            "phone": f"+1 {rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
            "city": rng.choice(loc["city"]),
            "country": loc["country"],
            "industry": rng.choice(industries),
            "type": rng.choice(types),
            "numberofemployees": str(rng.choice((5, 12, 25, 50, 120, 250, 800, 2500, 10000))),
            "annualrevenue": str(rng.randrange(1, 5000) * 10_000),
            "description": rng.choice(pools["phrases"]) if rng.random() < 0.6 else None,
            "lifecyclestage": rng.choice(("lead", "opportunity", "customer", "customer", "evangelist")),
            "hubspot_owner_id": rng.choice(owner_ids),
        }
        values.update(HOSTILE["companies"].get(n, {}))
        record = state.objects.create("companies", values, updated, created=created, lag=False)
        ids.append(record.id)
        names[record.id] = values["name"] or ""
        domains[record.id] = domain
    return ids, names, domains


def _contacts(
    state: SandboxState,
    rng: random.Random,
    pools: dict[str, Any],
    count: int,
    anchor: int,
    owner_ids: list[Any],
    company_ids: list[int],
    company_names: dict[int, str],
    company_domains: dict[int, str],
    contacts_by_company: dict[int, list[int]],
) -> list[int]:
    ids: list[int] = []
    used: set[str] = set()
    locale_weights = tuple((i, loc["weight"]) for i, loc in enumerate(pools["locales"]))
    statuses = [o["value"] for o in LEAD_STATUSES]
    associations = state.objects.associations
    for n, (created, updated) in enumerate(_times(rng, max(0, count), anchor), start=1):
        loc = pools["locales"][_weighted(rng, locale_weights)]
        first, last = rng.choice(loc["first"]), rng.choice(loc["last"])
        company = rng.choice(company_ids) if company_ids and rng.random() < 0.9 else None
        hostile = HOSTILE["contacts"].get(n, {})
        shown_first, shown_last = hostile.get("firstname", first), hostile.get("lastname", last)
        # Emails are ASCII even for names in other scripts; fall back to a Latin pool name.
        local_first = _ascii(shown_first) or _ascii(rng.choice(pools["latin_first"]))
        local_last = _ascii(shown_last) or _ascii(rng.choice(pools["latin_last"]))
        domain = (
            company_domains[company] if company else rng.choice(("example.com", "example.org", "example.net"))
        )
        email = f"{local_first}.{local_last}@{domain}"
        while email in used:
            email = f"{local_first}.{local_last}{rng.randrange(2, 99999)}@{domain}"
        used.add(email)
        values: dict[str, str | None] = {
            "email": email,
            "firstname": first,
            "lastname": last,
            "phone": f"+1 {rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"
            if rng.random() < 0.8
            else None,
            "company": company_names[company] if company else None,
            "jobtitle": rng.choice(pools["jobs"]) if rng.random() < 0.85 else None,
            "address": rng.choice(pools["streets"]) if rng.random() < 0.5 else None,
            "city": rng.choice(loc["city"]),
            "country": loc["country"],
            "lifecyclestage": _weighted(rng, LIFECYCLE_WEIGHTS),
            "hs_lead_status": rng.choice(statuses) if rng.random() < 0.7 else None,
            "hubspot_owner_id": rng.choice(owner_ids) if rng.random() < 0.9 else None,
        }
        values.update(hostile)
        record = state.objects.create("contacts", values, updated, created=created, lag=False)
        ids.append(record.id)
        if company is not None:
            associations.add("contacts", record.id, "companies", company, [1])
            contacts_by_company.setdefault(company, []).append(record.id)
    return ids


def _deals(
    state: SandboxState,
    rng: random.Random,
    count: int,
    anchor: int,
    owner_ids: list[Any],
    company_ids: list[int],
    company_names: dict[int, str],
    contact_ids: list[int],
    contacts_by_company: dict[int, list[int]],
) -> None:
    associations = state.objects.associations
    default_stages = [s[0] for s in DEFAULT_STAGES]
    renewal_stages = [s[0] for s in RENEWAL_STAGES]
    for n, (created, updated) in enumerate(_times(rng, max(0, count), anchor), start=1):
        company = rng.choice(company_ids) if company_ids else None
        renewal = rng.random() < 0.2
        if renewal:
            pipeline, stage = (
                RENEWALS_PIPELINE,
                _weighted(rng, tuple(zip(renewal_stages, RENEWAL_WEIGHTS, strict=True))),
            )
            closed = stage in renewal_stages[2:]
        else:
            pipeline, stage = (
                DEFAULT_PIPELINE,
                _weighted(rng, tuple(zip(default_stages, STAGE_WEIGHTS, strict=True))),
            )
            closed = stage in ("closedwon", "closedlost")
        if closed:
            close = created + int((updated - created) * rng.random())
        else:
            close = anchor + rng.randrange(3, 150) * DAY_MS
        amount = rng.choice((500, 1200, 2500, 4800, 7500, 12000, 25000, 40000, 90000)) * rng.choice(
            (1, 1, 2, 3)
        )
        label = company_names[company] if company else "Direct"
        values: dict[str, str | None] = {
            "dealname": f"{label} — {rng.choice(PRODUCTS)}",
            "amount": f"{amount}.00" if rng.random() < 0.3 else str(amount),
            "closedate": iso(close - close % DAY_MS + 17 * 3_600_000),
            "pipeline": pipeline,
            "dealstage": stage,
            "dealtype": "existingbusiness" if renewal or rng.random() < 0.3 else "newbusiness",
            "hs_priority": rng.choice(("low", "medium", "high", None)),
            "hubspot_owner_id": rng.choice(owner_ids),
        }
        values.update(HOSTILE["deals"].get(n, {}))
        record = state.objects.create("deals", values, updated, created=created, lag=False)
        if company is not None:
            associations.add("deals", record.id, "companies", company, [5])
        pool = contacts_by_company.get(company, []) if company is not None else []
        if not pool and contact_ids:
            pool = [rng.choice(contact_ids)]
        for contact in rng.sample(pool, min(len(pool), rng.choice((1, 1, 2, 3)))):
            associations.add("deals", record.id, "contacts", contact, [3])
