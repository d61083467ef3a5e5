"""Driving the OAuth round trip against the sandbox, as a browser and a person would."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from crm import oauth, store
from crm.config import Settings


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def approve(sandbox, authorize_url: str) -> str:
    """What a person pressing "Connect app" does: a code for this authorize URL."""
    q = query(authorize_url)
    extra = {}
    if "code_challenge" in q:
        extra = {"code_challenge": q["code_challenge"], "code_challenge_method": q["code_challenge_method"]}
    answer = sandbox.oauth_code(
        client_id=q["client_id"],
        redirect_uri=q["redirect_uri"],
        scopes=q["scope"].split(),
        optional_scopes=q.get("optional_scope", "").split(),
        state=q["state"],
        **extra,
    )
    return str(answer["code"])


def start(settings: Settings) -> tuple[str, str]:
    """What pressing Connect HubSpot on the Connect page does: a fresh ticket, then the flow."""
    return oauth.start_connect(settings, ticket=oauth.create_ticket(settings, None))


def connect(settings: Settings, sandbox) -> oauth.ConnectionInfo:
    url, nonce = start(settings)
    code = approve(sandbox, url)
    return oauth.complete_connect(settings, state=query(url)["state"], code=code, nonce=nonce)


def token_requests(sandbox, grant_type: str | None = None) -> list[dict]:
    requests = sandbox.tokens()["requests"]
    return [r for r in requests if grant_type is None or r.get("grant_type") == grant_type]


def expire_all(sandbox) -> None:
    sandbox._call("POST", "/_sandbox/tokens/expire", {"all": True})


def stored_bytes(settings: Settings) -> bytes:
    """What the cache keeps: a SQLite file's bytes with its write-ahead log, or every row of
    every table of a PostgreSQL cache."""
    if not settings.db_is_postgresql:
        files = [settings.db_path, Path(str(settings.db_path) + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with store.open(settings) as db:
        tables = [
            str(row[0])
            for row in db.conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).fetchall()
        ]
        rows = [repr(db.conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables]
    return "\n".join(rows).encode()
