"""Interaction text search finds the same engagements on PostgreSQL as on SQLite.

The same awkward engagements (accents composed and decomposed, non-Latin scripts, HTML,
underscores and punctuation, a long transcript, shared bodies) go into a SQLite cache and a
PostgreSQL one through ``Interactions.upsert_records``; every query, typed as a user would,
must find the same set on both. Then: a cache of the previous schema version gains the
index with its engagements already searchable, on each backend.
"""

from __future__ import annotations

import random
import re
import sqlite3
import unicodedata
from pathlib import Path

import psycopg

from crm import store
from crm.hubspot import Record
from crm.store.engine import _statements
from crm.store.pg import PostgresEngine
from crm.store.pg_schema import PG_MIGRATIONS
from crm.store.schema import MIGRATIONS

TEXTS = [
    "Called José about the renewal; he wants Zoë in copy",
    "Jose\u0301 prefers e-mail: jose@example.com",
    "<p>Meeting with <b>Müller</b> &amp; Straße GmbH</p>",
    "Ёлка и Дмитрий обсудили счёт-фактуру",
    "Γιώργος: ΣΟΦΙΑ σοφία",
    "王芳 asked for 发票 before Friday",
    "محمد confirmed the order",
    "100% sure_thing, déjà vu, naïve café",
    "Ann_Lee and Anne-Marie O'Brien on the call",
    "Invoice #4471 overdue (EUR 1,200.50)",
    "word " * 3_000 + "needle in the transcript",
    "Nguyễn Đặng Ørjan Åsa Ævar Œdipe",
    "ﬁona sent the Ｆｕｌｌ report",
    "İlker and Ilgın, Şükrü",
    "",
]
SUBJECTS = ["Renewal", "Quarterly review", None, "Re: Invoice", "Überprüfung", "見積もり"]
FIXED_QUERIES = [
    "jose",
    "JOSÉ",
    "zoe",
    "muller",
    "MÜLL",
    "strasse",
    "straße",
    "ёлка",
    "елка",
    "σοφια",
    "王芳",
    "sure_thing",
    "sure thing",
    "ann lee",
    "o'brien",
    "4471",
    "1,200",
    "needle transcript",
    "deja",
    "naive cafe",
    "fiona",
    "full",
    "ilker",
    "sukru",
    "review quart",
    "renewal jose",
    "nothing-like-this",
    "gmbh",
    "p",
    "b",
]


def _engagements() -> list[tuple[str, Record]]:
    rng = random.Random(13)
    out = []
    for n in range(160):
        kind = rng.choice(["notes", "calls", "emails", "meetings"])
        body = rng.choice(TEXTS)
        if rng.random() < 0.3:
            body = unicodedata.normalize(rng.choice(["NFC", "NFD"]), body)
        subject = rng.choice(SUBJECTS)
        props: dict[str, str | None] = {"hs_timestamp": f"2024-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"}
        if kind == "notes":
            props["hs_note_body"] = body
        elif kind == "calls":
            props.update(hs_call_title=subject, hs_call_body=body, hs_call_direction="OUTBOUND")
        elif kind == "emails":
            props.update(hs_email_subject=subject, hs_email_html=body, hs_email_direction="EMAIL")
        else:
            props.update(hs_meeting_title=subject, hs_meeting_body=body)
        out.append((kind, Record(str(n), props, "2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z")))
    return out


def _load(target: str, engagements: list[tuple[str, Record]]) -> None:
    with store.open(target) as db:
        for kind in ("notes", "calls", "emails", "meetings"):
            db.interactions.upsert_records(kind, [r for k, r in engagements if k == kind])


def _queries() -> list[str]:
    words = sorted({w for text in TEXTS + [s or "" for s in SUBJECTS] for w in re.findall(r"\w+", text)})
    rng = random.Random(7)
    derived = set()
    for word in rng.sample(words, 60):
        derived.update({word, word[:1], word[:2], word[:4], word.upper()})
    return FIXED_QUERIES + sorted(derived)


def _found(target: str, query: str) -> set[tuple[str, str]]:
    with store.open(target) as db:
        return {(h["object_type"], h["id"]) for h in db.interactions.search(query, limit=10_000)}


def test_postgresql_finds_the_same_interactions_as_sqlite(pg_migrated_url: str, tmp_path: Path) -> None:
    engagements = _engagements()
    sqlite_path = str(tmp_path / "crm.db")
    _load(sqlite_path, engagements)
    _load(pg_migrated_url, engagements)
    differences = {}
    matched = 0
    queries = _queries()
    try:
        for query in queries:
            expected, got = _found(sqlite_path, query), _found(pg_migrated_url, query)
            matched += bool(expected)
            if expected != got:
                differences[query] = {
                    "only_sqlite": sorted(expected - got),
                    "only_pg": sorted(got - expected),
                }
    finally:
        store.close_engines()
    assert differences == {}
    assert matched > len(queries) * 0.6  # the queries really find things


def _interaction_v5(execute) -> None:
    """One engagement and its body as a version-5 cache holds them."""
    execute(
        "INSERT INTO interaction_bodies (hash, body, chars) VALUES ('h1', 'Asked about the okapi pricing', 29)"
    )
    execute(
        "INSERT INTO interactions (object_type, id, archived, occurred_at, subject, body_hash) "
        "VALUES ('calls', '5', 0, '2024-01-01T00:00:00Z', 'Zoë follow-up', 'h1')"
    )


def test_a_version_5_sqlite_cache_gains_the_interactions_index_with_its_text(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:5]:
        for statement in _statements(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    _interaction_v5(conn.execute)
    conn.commit()
    conn.close()
    assert _found(str(path), "okapi") == {("calls", "5")}
    assert _found(str(path), "zoe follow") == {("calls", "5")}


def test_a_version_5_postgresql_cache_gains_the_interactions_index_with_its_text(pg_cluster) -> None:
    url = pg_cluster.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_version (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
        )
        for step in PG_MIGRATIONS[:5]:
            conn.execute(step)
        conn.execute("INSERT INTO schema_version (id, version) VALUES (1, 5)")
        _interaction_v5(conn.execute)
    engine = PostgresEngine(url, max_size=1)
    try:
        assert engine.version == len(PG_MIGRATIONS)
    finally:
        engine.close()
    try:
        assert _found(url, "okapi") == {("calls", "5")}
        assert _found(url, "zoe follow") == {("calls", "5")}
    finally:
        store.close_engines()
