"""What the AppTest tests share: the app pointed at the test sandbox, and small readers.

``Portal`` connects a temporary cache to the sandbox through the real OAuth functions (a
code minted by the sandbox's admin API stands in for a person pressing "Connect app") and
syncs it with the real sync engine, so a page test starts where a user would.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
# A page run as the main script puts only pages/ on sys.path; the app imports ui and crm.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crm import oauth  # noqa: E402
from crm.config import Settings, is_postgresql_url, load_settings  # noqa: E402
from crm.sandbox.admin import SandboxAdmin  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:8501/hubspot/callback"
# Staff login configured: anyone at example.com is staff, ana@example.com the one admin.
STAFF_LOGIN = {
    "auth": {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-32-bytes-plus",
        "client_id": "staff-idp-client",
        "client_secret": "staff-idp-secret",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    },
    "CRM_STAFF_DOMAINS": "example.com",
    "CRM_ADMIN_EMAILS": "ana@example.com",
}
PAGES = ("connect", "contacts", "companies", "deals", "record", "sync")


@dataclasses.dataclass
class Portal:
    """The test sandbox, the app's secrets for it, and the Settings the app will resolve."""

    sandbox: SandboxAdmin
    secrets: dict[str, Any]
    settings: Settings

    def app(self, script: str = "app.py", *, secrets: dict[str, Any] | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / script), default_timeout=60)
        at.secrets.update(self.secrets)
        if secrets:
            at.secrets.update(secrets)
        return at

    def page(self, name: str, *, user: dict[str, Any] | None = None, **kw: Any) -> AppTest:
        """The whole app (navigation, guard, sidebar) switched to one page; call ``.run()`` next.

        AppTest (1.67) keeps what app.py drew in the sidebar only on the first run of the
        default page, so sidebar assertions belong there.
        """
        at = self.app(**kw)
        if user is not None:
            at.user = user
        if name != "contacts":  # the default page; AppTest drops the sidebar after a switch
            at.run()
            at.switch_page(f"pages/{name}.py")
        return at

    def connect(self, portal_id: int | None = None) -> None:
        """What Connect HubSpot -> Connect app -> callback does, without a browser.

        ``portal_id``: the account picked on the consent page (the sandbox's default if None).
        """
        ticket = oauth.create_ticket(self.settings, None)
        authorize_url, nonce = oauth.start_connect(self.settings, ticket=ticket)
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        extra = {}
        if "code_challenge" in query:
            extra = {
                "code_challenge": query["code_challenge"],
                "code_challenge_method": query["code_challenge_method"],
            }
        minted = self.sandbox.oauth_code(
            portal_id=portal_id,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            scopes=query["scope"].split(),
            optional_scopes=query.get("optional_scope", "").split(),
            state=query["state"],
            **extra,
        )
        oauth.complete_connect(self.settings, state=query["state"], code=str(minted["code"]), nonce=nonce)

    def sync(self, kind: str = "full") -> dict[str, Any]:
        from crm import sync

        return sync.run_sync(self.settings, kind=kind, trigger="test")  # type: ignore[arg-type]


def texts(at: AppTest, *, raw: bool = False) -> str:
    """Everything a person reads on the page (alerts, captions, text...), Markdown escapes removed.

    ``raw=True`` keeps the Markdown sources as sent to the browser.
    """
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "text",
        "code",
        "error",
        "warning",
        "info",
        "success",
        "toast",
    ):
        parts.extend(str(el.value) for el in getattr(at, kind))
    parts.extend(str(m.label) + " " + str(m.value) for m in at.metric)
    joined = "\n".join(parts)
    return joined if raw else plain(joined)


def plain(markdown: str) -> str:
    """Markdown source as a person reads it: bold markers, escapes and zero-width spaces dropped."""
    unescaped = re.sub(r"\\(.)", r"\1", re.sub(r"(?<!\\)\*\*", "", markdown))
    return unescaped.replace("\u200b", "")


def rename_the_chosen_record(
    at: AppTest, settings: Settings, object_type: str, row: int, properties: dict[str, str]
) -> tuple[Any, str]:
    """On a run list page of ``object_type``: choose its ``row``-th record in the "Open a ..."
    picker, rename it in the cache as a webhook's update does, run again; the picker and the id."""
    from crm import store
    from crm.interface import Record

    key = next(k for k in at.session_state if str(k).startswith(f"{object_type}_open_"))
    rid = str(at.data_editor[0].value.index[row])
    at.selectbox(key=key).set_value(rid).run()
    with store.open(settings) as db:
        db.records.upsert_records(object_type, [Record(rid, object_type, properties, None, None)])
    at.run()
    return at.selectbox(key=key), rid


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds, with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def make_portal(sandbox: SandboxAdmin, db: str) -> Portal:
    """The app's secrets for the test sandbox on the cache ``db`` (a SQLite path or a
    PostgreSQL URL), and the Settings the app will resolve from them."""
    secrets = {"CRM_SANDBOX_URL": sandbox.url, "CRM_DB": db, "HUBSPOT_REDIRECT_URI": REDIRECT_URI}
    if is_postgresql_url(db):
        # No cache file to keep the demo's key beside (it would land in the repo's data/).
        secrets["CRM_SECRET_KEY"] = Fernet.generate_key().decode()
    settings = load_settings({}, secrets).for_sandbox(sandbox.url)
    return Portal(sandbox=sandbox, secrets=secrets, settings=settings)
