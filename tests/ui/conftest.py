"""AppTest fixtures: the app pointed at the test sandbox and a temporary cache.

``portal`` connects the cache to the sandbox through the real OAuth functions (a code
minted by the sandbox's admin API stands in for a person pressing "Connect app"), and
``synced`` also runs a full sync, so a page test starts where a user would.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
# A page run as the main script puts only pages/ on sys.path; the app imports ui and crm.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crm import oauth  # noqa: E402
from crm.config import Settings, load_settings  # noqa: E402
from crm.sandbox.admin import SandboxAdmin  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:8501/hubspot/callback"
PAGES = ("connect", "contacts", "companies", "deals", "record", "sync")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No outside configuration leaks in, the cwd is the repo (config.toml), caches start empty."""
    for name in list(os.environ):
        if name.startswith(("CRM_", "HUBSPOT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


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

    def page(self, name: str, **kw: Any) -> AppTest:
        """The whole app (navigation, guard, sidebar) switched to one page, run once."""
        at = self.app(**kw)
        at.run()
        at.switch_page(f"pages/{name}.py")
        return at

    def connect(self) -> None:
        """What Connect HubSpot -> Connect app -> callback does, without a browser."""
        ticket = oauth.create_ticket(self.settings, None)
        authorize_url, nonce = oauth.start_connect(self.settings, ticket=ticket)
        query = parse_qs(urlsplit(authorize_url).query)
        state = query["state"][0]
        minted = self.sandbox.oauth_code(
            client_id=self.settings.client_id,
            redirect_uri=self.settings.redirect_uri,
            scopes=query["scope"][0].split(),
            state=state,
            **({"code_challenge": query["code_challenge"][0]} if "code_challenge" in query else {}),
        )
        code = minted.get("code") or parse_qs(urlsplit(minted["redirect_url"]).query)["code"][0]
        oauth.complete_connect(self.settings, state=state, code=code, nonce=nonce)

    def sync(self, kind: str = "full") -> dict[str, Any]:
        from crm import sync

        return sync.run_sync(self.settings, kind=kind, trigger="test")  # type: ignore[arg-type]


@pytest.fixture
def portal(sandbox: SandboxAdmin, tmp_path: Path) -> Portal:
    secrets = {
        "CRM_SANDBOX_URL": sandbox.url,
        "CRM_DB": str(tmp_path / "crm.db"),
        "HUBSPOT_REDIRECT_URI": REDIRECT_URI,
    }
    settings = load_settings({}, secrets).for_sandbox(sandbox.url)
    return Portal(sandbox=sandbox, secrets=secrets, settings=settings)


@pytest.fixture
def connected(portal: Portal) -> Portal:
    portal.connect()
    return portal


@pytest.fixture
def synced(connected: Portal) -> Portal:
    connected.sync("full")
    return connected


def texts(at: AppTest) -> str:
    """Everything a person reads on the page (Markdown sources, alerts, captions, text)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "code", "error", "warning", "info",
                 "success", "toast"):
        parts.extend(str(el.value) for el in getattr(at, kind))
    parts.extend(str(m.label) + " " + str(m.value) for m in at.metric)
    return "\n".join(parts)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds, with a deadline (no fixed sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
