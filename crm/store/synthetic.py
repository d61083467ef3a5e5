"""Fast bulk fill of a cache with synthetic CRM records, for the dashboard benchmark.

A sync through the sandbox's rate limits would take an hour to cache a million contacts,
so the benchmark syncs a small real portal first (connection, owners, pipelines and
property definitions are then exactly what a sync writes) and appends synthetic records
here: ``executemany`` inserts on SQLite, COPY on PostgreSQL, one transaction per chunk. The contacts search
index is kept current by the schema's triggers, as it is for synced rows.

Values are deterministic for a given seed and look like a real portal's: names, emails,
companies, phones, owners, lifecycle stages and deal stages taken from what the cache
already knows (owners table, pipeline stages, property options), with HubSpot's default
association type ids.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crm.store.engine import Conn, SqliteConn
from crm.store.schema import BASE_COLUMNS, contacts_fts_rebuild_sql

if TYPE_CHECKING:
    from crm.store.handle import Store

CHUNK = 25_000
_LINK_COLUMNS = ("from_type", "from_id", "to_type", "to_id", "type_id")
_FTS_TRIGGER = "contacts_fts_insert"
# HubSpot's default (unlabelled, primary) association type ids.
CONTACT_TO_COMPANY = 1
DEAL_TO_CONTACT = 3
DEAL_TO_COMPANY = 5
TICKET_TO_CONTACT = 16
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
DEFAULT_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)

_FIRST = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Sophie",
    "Guido",
    "Anita",
    "Dennis",
    "Karen",
    "John",
    "Mary",
    "Hedy",
    "Katherine",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Yukihiro",
    "Jean",
    "Chloé",
    "Zoë",
    "Mateo",
    "Aiko",
    "Olusegun",
    "Priya",
    "Wei",
    "Fatima",
    "Lars",
    "Ingrid",
    "Diego",
    "Noor",
)
_LAST = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Wilson",
    "van Rossum",
    "Borg",
    "Ritchie",
    "Spärck Jones",
    "McCarthy",
    "Kenyon",
    "Lamarr",
    "Johnson",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Matsumoto",
    "Sammet",
    "Durand",
    "Okafor",
    "Sharma",
    "Zhang",
    "Haddad",
    "Nilsson",
    "García",
    "Tanaka",
    "O'Brien",
    "Novak",
    "Kowalski",
    "Müller",
    "Rossi",
    "Silva",
)
_COMPANY_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Massive",
    "Dynamic",
    "Blue",
    "North",
    "Bright",
    "Summit",
    "Harbor",
    "Pioneer",
)
_COMPANY_KINDS = (
    "Labs",
    "Systems",
    "Industries",
    "Partners",
    "Group",
    "Logistics",
    "Health",
    "Analytics",
    "Foods",
    "Energy",
    "Studios",
    "Robotics",
    "Finance",
    "Media",
)
_TITLES = (
    "CEO",
    "CTO",
    "Head of Sales",
    "Account Executive",
    "Marketing Manager",
    "Engineer",
    "Product Manager",
    "Office Manager",
    "Buyer",
    "Operations Lead",
    "Analyst",
    "Consultant",
)
_CITIES = (
    ("Berlin", "Germany"),
    ("Paris", "France"),
    ("Boston", "United States"),
    ("Austin", "United States"),
    ("Toronto", "Canada"),
    ("Dublin", "Ireland"),
    ("Tokyo", "Japan"),
    ("Lagos", "Nigeria"),
    ("Mumbai", "India"),
    ("São Paulo", "Brazil"),
    ("Sydney", "Australia"),
    ("Madrid", "Spain"),
    ("Stockholm", "Sweden"),
    ("Seoul", "South Korea"),
)
_INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "RETAIL",
    "HOSPITAL_HEALTH_CARE",
    "FINANCIAL_SERVICES",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "MARKETING_AND_ADVERTISING",
    "CONSTRUCTION",
)
_EPOCH = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)


def fill_synthetic(
    db: Store,
    *,
    contacts: int = 0,
    companies: int = 0,
    deals: int = 0,
    seed: int = 1,
    now: dt.datetime | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Append synthetic companies, contacts and deals (with associations) to the cache.

    Ids continue after the largest numeric id already cached for each type, so records a
    sync wrote stay untouched. Contacts are linked to a company and deals to a contact and
    a company, spread over every company the cache then holds.

    Args:
        progress: called with (object type, rows written so far) after each chunk.

    Returns:
        The number of contacts, companies and deals in the cache afterwards (the types it fills).
    """
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    owners: list[str | None] = [*db.queries.owner_ids()] or [None]
    stages = _deal_stages(db)
    lifecycle = _options(db, "contacts", "lifecyclestage") or list(LIFECYCLE_STAGES)
    span_s = max(1, int((now - _EPOCH).total_seconds()))

    def stamps(count: int) -> tuple[list[str], list[str]]:
        created = [rng.randrange(span_s) for _ in range(count)]
        modified = [c + rng.randrange(span_s - c + 1) for c in created]
        return [_iso(s) for s in created], [_iso(s) for s in modified]

    new_companies = _fill(
        db, "companies", companies, lambda ids: _company_rows(rng, ids, owners, stamps), progress=progress
    )
    company_ids = new_companies or _ids(db, "companies")
    _fill(
        db,
        "contacts",
        contacts,
        lambda ids: _contact_rows(rng, ids, owners, lifecycle, company_ids, stamps),
        progress=progress,
    )
    contact_ids = _ids(db, "contacts") if deals else []
    _fill(
        db,
        "deals",
        deals,
        lambda ids: _deal_rows(rng, ids, owners, stages, contact_ids, company_ids, stamps),
        progress=progress,
    )
    sizes = db.queries.table_sizes()
    return {t: sizes[t] for t in ("contacts", "companies", "deals")}


def settle(db: Store) -> None:
    """Make a freshly filled cache as fast to read as a synced one: SQLite folds the WAL in
    and refreshes its statistics, PostgreSQL analyses the tables (a million new rows the
    planner has not seen would otherwise be planned as an empty table)."""
    if isinstance(db.conn, SqliteConn):
        db.conn.optimize()
    elif db.conn.dialect == "postgresql":
        db.conn.execute("ANALYZE")


def _fill(
    db: Store,
    object_type: str,
    count: int,
    make_rows: Callable[[Sequence[str]], tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]],
    *,
    progress: Callable[[str, int], None] | None,
) -> list[str]:
    if count <= 0:
        return []
    columns = ["id", "archived", "created_at", "updated_at", "synced_at", *BASE_COLUMNS[object_type]]
    insert = (
        f"INSERT INTO {object_type} ({', '.join(_quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    first = _next_id(db, object_type)
    all_ids = [str(first + i) for i in range(count)]
    written = 0
    for chunk in _chunks(all_ids, CHUNK):
        rows, links = make_rows(chunk)
        with db.atomic():
            if db.conn.dialect == "postgresql":
                _copy(db, object_type, columns, rows, links)
            elif object_type == "contacts":
                _insert_contacts(db.conn, insert, rows)
            else:
                db.conn.executemany(insert, rows)
            db.conn.executemany(
                "INSERT INTO associations (from_type, from_id, to_type, to_id, type_id) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                links,
            )
            db.meta.bump_cache_version()
        written += len(chunk)
        if progress:
            progress(object_type, written)
    return all_ids


def _copy(
    db: Store,
    object_type: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    links: list[tuple[Any, ...]],
) -> None:
    """PostgreSQL: the rows and their links by COPY (the ids are new, so nothing conflicts)."""
    from crm.store.pg import PgConn

    assert isinstance(db.conn, PgConn)
    db.conn.copy_rows(object_type, columns, rows)
    db.conn.copy_rows("associations", _LINK_COLUMNS, links)


def _insert_contacts(conn: Conn, insert: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert contact rows and index them for search in one statement, not one per row (SQLite).

    The schema's insert trigger indexes each row as it lands; filling the index with one
    INSERT ... SELECT afterwards does the same work in about half the time. The trigger
    is put back in the same transaction, so no other connection ever sees it missing.
    """
    trigger = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_FTS_TRIGGER,)
    ).fetchone()
    fill_index = contacts_fts_rebuild_sql()[-1]
    if trigger is None or not fill_index.endswith(" FROM contacts c"):
        conn.executemany(insert, rows)
        return
    last_rowid = conn.execute("SELECT coalesce(max(rowid), 0) FROM contacts").fetchone()[0]
    conn.execute(f"DROP TRIGGER {_FTS_TRIGGER}")
    conn.executemany(insert, rows)
    conn.execute(fill_index + " WHERE c.rowid > ?", (last_rowid,))
    conn.execute(trigger[0])


def _company_rows(
    rng: random.Random,
    ids: Sequence[str],
    owners: list[Any],
    stamps: Callable[[int], tuple[list[str], list[str]]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    created, modified = stamps(len(ids))
    rows = []
    for i, record_id in enumerate(ids):
        word, kind = rng.choice(_COMPANY_WORDS), rng.choice(_COMPANY_KINDS)
        city, country = rng.choice(_CITIES)
        rows.append(
            (
                record_id,
                0,
                created[i],
                modified[i],
                modified[i],
                f"{word} {kind} {record_id}",
                f"{word.lower()}{kind.lower()}{record_id}.example.com",
                rng.choice(_INDUSTRIES),
                _phone(rng),
                city,
                country,
                float(rng.randrange(1, 5000)),
                float(rng.randrange(10, 50_000) * 1000),
                rng.choice(owners),
                created[i],
                modified[i],
            )
        )
    return rows, []


def _contact_rows(
    rng: random.Random,
    ids: Sequence[str],
    owners: list[Any],
    lifecycle: list[str],
    company_ids: Sequence[str],
    stamps: Callable[[int], tuple[list[str], list[str]]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    created, modified = stamps(len(ids))
    rows, links = [], []
    for i, record_id in enumerate(ids):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country = rng.choice(_CITIES)
        company_id = rng.choice(company_ids) if company_ids else None
        company = f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_KINDS)}"
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        rows.append(
            (
                record_id,
                0,
                created[i],
                modified[i],
                modified[i],
                f"{local}{record_id}@example.com",
                first,
                last,
                _phone(rng),
                _phone(rng),
                rng.choice(_TITLES),
                company,
                city,
                country,
                rng.choice(lifecycle),
                rng.choice(owners),
                created[i],
                modified[i],
            )
        )
        if company_id is not None:
            links.append(("contacts", record_id, "companies", company_id, CONTACT_TO_COMPANY))
    return rows, links


def _deal_rows(
    rng: random.Random,
    ids: Sequence[str],
    owners: list[Any],
    stages: list[tuple[str, str]],
    contact_ids: Sequence[str],
    company_ids: Sequence[str],
    stamps: Callable[[int], tuple[list[str], list[str]]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    created, modified = stamps(len(ids))
    rows, links = [], []
    for i, record_id in enumerate(ids):
        pipeline, stage = rng.choice(stages)
        close = dt.date.fromisoformat(created[i][:10]) + dt.timedelta(days=rng.randrange(14, 400))
        rows.append(
            (
                record_id,
                0,
                created[i],
                modified[i],
                modified[i],
                f"{rng.choice(_COMPANY_WORDS)} {rng.choice(('renewal', 'expansion', 'pilot', 'licence'))} {record_id}",
                float(rng.randrange(5, 2000) * 100),
                f"{close.isoformat()}T00:00:00.000Z",
                pipeline,
                stage,
                rng.choice(("newbusiness", "existingbusiness")),
                rng.choice(owners),
                created[i],
                modified[i],
            )
        )
        if contact_ids:
            links.append(("deals", record_id, "contacts", rng.choice(contact_ids), DEAL_TO_CONTACT))
        if company_ids:
            links.append(("deals", record_id, "companies", rng.choice(company_ids), DEAL_TO_COMPANY))
    return rows, links


def _deal_stages(db: Store) -> list[tuple[str, str]]:
    rows = db.conn.execute(
        "SELECT pipeline_id, id FROM pipeline_stages WHERE object_type = 'deals' AND archived = 0 "
        "ORDER BY pipeline_id, display_order"
    ).fetchall()
    return [(r[0], r[1]) for r in rows] or [("default", s) for s in DEFAULT_STAGES]


def _options(db: Store, object_type: str, name: str) -> list[str]:
    row = db.conn.execute(
        "SELECT options FROM property_defs WHERE object_type = ? AND name = ?", (object_type, name)
    ).fetchone()
    if not row:
        return []
    return [o["value"] for o in json.loads(row[0] or "[]") if not o.get("hidden") and o.get("value")]


def _ids(db: Store, object_type: str) -> list[str]:
    return [str(r[0]) for r in db.conn.execute(f"SELECT id FROM {object_type} WHERE archived = 0").fetchall()]


def _next_id(db: Store, object_type: str) -> int:
    row = db.conn.execute(
        f"SELECT max(CAST(id AS INTEGER)) FROM {object_type} WHERE id NOT LIKE 'local-%'"
    ).fetchone()
    # Leave a gap so synthetic ids never meet ids the sandbox hands out later.
    return max(int(row[0] or 0) + 1, 50_000_001)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _phone(rng: random.Random) -> str:
    return f"+1 {rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"


_DAYS: list[str] = []


def _iso(seconds: int) -> str:
    # strftime per value was a third of the fill time at a million rows.
    day, rest = divmod(seconds, 86_400)
    while len(_DAYS) <= day:
        _DAYS.append((_EPOCH + dt.timedelta(days=len(_DAYS))).strftime("%Y-%m-%d"))
    hour, rest = divmod(rest, 3600)
    return f"{_DAYS[day]}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"


def _quote(name: str) -> str:
    return '"' + name + '"'


# ----------------------------------------------------------------------------- interactions

_TOPICS = (
    "renewal", "pricing", "invoice", "onboarding", "integration", "migration", "training",
    "contract", "discount", "outage", "roadmap", "security", "audit", "shipment", "refund",
)  # fmt: skip
_VERBS = ("asked about", "confirmed", "wants to revisit", "escalated", "agreed on", "questioned")
_NEXT = (
    "Follow up next week.", "Send the revised quote.", "Loop in finance.", "Book a demo.",
    "Waiting for their legal team.", "Share the rollout plan.", "No action needed.",
)  # fmt: skip
_SUMMARIES = {
    "calls": (
        "OUTBOUND · COMPLETED · 4 min 10 s",
        "INBOUND · COMPLETED · 12 min 03 s",
        "OUTBOUND · NO_ANSWER",
    ),
    "emails": ("EMAIL · SENT", "INCOMING_EMAIL · SENT"),
    "meetings": ("COMPLETED · Video call", "SCHEDULED · Office"),
    "tasks": ("NOT_STARTED · HIGH · CALL", "COMPLETED · MEDIUM · TODO"),
    "notes": (None,),
}
_TICKET_PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")
_DEFAULT_TICKET_STAGES = ("1", "2", "3", "4")


def fill_interactions(
    db: Store,
    *,
    interactions: int,
    tickets: int = 0,
    heavy: int = 5_000,
    light: int = 5,
    seed: int = 1,
    now: dt.datetime | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Append synthetic engagements (with their text and timeline links) and tickets.

    One contact gets ``heavy`` engagements and another ``light`` (the timeline benchmark
    opens both); the rest are spread over every cached contact. Each text is distinct
    (stored once, as a synced body is) and indexed for search by the schema's triggers.

    Returns:
        ``{"interactions": n, "tickets": n, "heavy_contact": id, "light_contact": id,
        "first_id": id}`` (the first engagement it wrote), the counts being what the cache
        then holds.
    """
    from crm.store.interactions import ENGAGEMENT_TYPES, PREVIEW_CHARS, body_key

    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    span_s = max(1, int((now - _EPOCH).total_seconds()))
    contacts = _ids(db, "contacts")
    if len(contacts) < 3:
        raise ValueError("fill contacts first: the engagements are logged on them")
    heavy_id, light_id = contacts[-1], contacts[-2]
    others = contacts[:-2]
    owners: list[str | None] = [*db.queries.owner_ids()] or [None]
    _fill(
        db,
        "tickets",
        tickets,
        lambda ids: _ticket_rows(rng, ids, owners, _ticket_stages(db), others, span_s),
        progress=progress,
    )
    first = _next_engagement_id(db)
    written = 0
    for start in range(0, interactions, CHUNK):
        size = min(CHUNK, interactions - start)
        bodies, rows, links = [], [], []
        for n in range(start, start + size):
            record_id = str(first + n)
            kind = rng.choice(ENGAGEMENT_TYPES)
            topic = rng.choice(_TOPICS)
            text = (
                f"{rng.choice(_FIRST)} {rng.choice(_VERBS)} the {topic} and the "
                f"{rng.choice(_TOPICS)} ({rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_KINDS)}). "
                f"{rng.choice(_NEXT)} Ref {record_id}."
            )
            key = body_key(text)
            when = _iso(rng.randrange(span_s))
            subject = None if kind == "notes" else f"{topic.capitalize()} {rng.choice(_LAST)}"
            bodies.append((key, text, len(text)))
            rows.append(
                (kind, record_id, 0, when, when, when, when, rng.choice(owners), subject,
                 rng.choice(_SUMMARIES[kind]), text[:PREVIEW_CHARS], key, 0, "{}")
            )  # fmt: skip
            owner = heavy_id if n < heavy else light_id if n < heavy + light else rng.choice(others)
            links.append(("contacts", owner, kind, record_id, when))
        with db.atomic():
            _insert_rows(db, "interaction_bodies", ("hash", "body", "chars"), bodies)
            _insert_rows(db, "interactions", _INTERACTION_COLUMNS, rows)
            _insert_rows(db, "interaction_links", _LINK_TIMELINE_COLUMNS, links)
            db.meta.bump_cache_version()
        written += size
        if progress:
            progress("interactions", written)
    sizes = db.queries.table_sizes()
    total = int(db.conn.execute("SELECT count(*) FROM interactions").fetchone()[0])
    return {
        "interactions": total,
        "tickets": sizes.get("tickets", 0),
        "heavy_contact": heavy_id,
        "light_contact": light_id,
        "first_id": str(first),
    }


_INTERACTION_COLUMNS = (
    "object_type", "id", "archived", "occurred_at", "created_at", "updated_at", "synced_at", "owner_id",
    "subject", "summary", "preview", "body_hash", "body_hidden", "properties",
)  # fmt: skip
_LINK_TIMELINE_COLUMNS = ("record_type", "record_id", "object_type", "id", "occurred_at")


def _insert_rows(db: Store, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """New rows: COPY on PostgreSQL, executemany on SQLite (the search triggers fire on both)."""
    if db.conn.dialect == "postgresql":
        from crm.store.pg import PgConn

        assert isinstance(db.conn, PgConn)
        db.conn.copy_rows(table, columns, rows)
        return
    db.conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})", rows
    )


def _ticket_rows(
    rng: random.Random,
    ids: Sequence[str],
    owners: list[Any],
    stages: list[tuple[str, str]],
    contact_ids: Sequence[str],
    span_s: int,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rows, links = [], []
    for record_id in ids:
        created = _iso(rng.randrange(span_s))
        pipeline, stage = rng.choice(stages)
        rows.append(
            (record_id, 0, created, created, created,
             f"{rng.choice(_TOPICS).capitalize()} problem {record_id}", rng.choice(_NEXT), pipeline, stage,
             rng.choice(_TICKET_PRIORITIES), None, rng.choice(owners), created, None, created)
        )  # fmt: skip
        if contact_ids:
            links.append(("tickets", record_id, "contacts", rng.choice(contact_ids), TICKET_TO_CONTACT))
    return rows, links


def _ticket_stages(db: Store) -> list[tuple[str, str]]:
    rows = db.conn.execute(
        "SELECT pipeline_id, id FROM pipeline_stages WHERE object_type = 'tickets' AND archived = 0 "
        "ORDER BY pipeline_id, display_order"
    ).fetchall()
    return [(r[0], r[1]) for r in rows] or [("0", s) for s in _DEFAULT_TICKET_STAGES]


def _next_engagement_id(db: Store) -> int:
    # Synced ids can be any text (and past a 32-bit integer): compared in Python, not cast in SQL.
    rows = db.conn.execute("SELECT id FROM interactions").fetchall()
    largest = max((int(r[0]) for r in rows if str(r[0]).isdigit()), default=0)
    return max(largest + 1, 50_000_001)
