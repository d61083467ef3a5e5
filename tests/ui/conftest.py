"""AppTest fixtures: ``portal`` (the app's secrets for the test sandbox and a temporary
cache), ``connected`` (OAuth done) and ``synced`` (a full sync done too).

``synced`` makes the full sync once per session, backend and portal content, and gives each
test a copy of that cache, reconnected with tokens of its own: the small portal every test
resets to is the same each time (same seed and day: same ids, values and times), so the
copy holds exactly what a sync of the test's own portal would. A full sync per test was
most of this directory's time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from uikit import ROOT, Portal, make_portal

from crm import store
from crm.config import is_postgresql_url
from crm.hubspot import reset_limits
from crm.sandbox.admin import SandboxAdmin


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No outside configuration leaks in, the cwd is the repo (config.toml), caches start empty."""
    for name in list(os.environ):
        if name.startswith(("CRM_", "HUBSPOT_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    st.cache_data.clear()
    st.cache_resource.clear()
    reset_limits()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    reset_limits()


@pytest.fixture
def portal(sandbox: SandboxAdmin, cache_target: str) -> Portal:
    """The app's secrets for the sandbox, on a cache of the test's own: each page test runs
    on SQLite, then on PostgreSQL (``cache_target``). Modules that test no storage (the
    access guard) or only SQLite's scale override this with ``sqlite_portal``."""
    return make_portal(sandbox, cache_target)


@pytest.fixture
def connected(portal: Portal) -> Portal:
    portal.connect()
    return portal


@pytest.fixture(scope="session")
def synced_caches(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """Synced caches to copy: ``{(backend, portal fingerprint): SQLite path or database name}``."""
    return {}


def _fingerprint(portal: Portal) -> str:
    """What the sandbox holds now (records, their times and owners), to know a copy fits it."""
    truth = {t: portal.sandbox.truth(t) for t in ("contacts", "companies", "deals", "tickets")}
    return hashlib.sha256(json.dumps(truth, sort_keys=True, default=str).encode()).hexdigest()


@pytest.fixture
def synced(
    portal: Portal,
    synced_caches: dict[tuple[str, str], str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Portal:
    """The portal connected and fully synced (from a copy of the session's synced cache)."""
    on_pg = is_postgresql_url(portal.settings.db)
    key = ("postgresql" if on_pg else "sqlite", _fingerprint(portal))
    if key not in synced_caches:
        if on_pg:
            cluster: Any = request.getfixturevalue("pg_cluster")
            name = f"crm_synced_{len(synced_caches)}"
            template = make_portal(portal.sandbox, cluster.create_database(name=name))
        else:
            name = str(tmp_path_factory.mktemp("synced") / "crm.db")
            template = make_portal(portal.sandbox, name)
        template.connect()
        assert template.sync("full")["state"] == "succeeded"
        store.close_engines()  # a PostgreSQL template takes no open sessions; SQLite checkpoints
        synced_caches[key] = name
    store.close_engines()
    if on_pg:
        cluster = request.getfixturevalue("pg_cluster")
        database = portal.settings.db.rsplit("/", 1)[1].split("?")[0]
        cluster.drop_database(database)
        cluster.create_database(name=database, template=synced_caches[key])
    else:
        for suffix in ("", "-wal"):  # the log is folded in when the last connection closes
            if Path(synced_caches[key] + suffix).exists():
                shutil.copyfile(synced_caches[key] + suffix, portal.settings.db + suffix)
    portal.connect()  # the same portal again: a reconnect, which keeps the cache
    return portal
