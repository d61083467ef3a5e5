"""Synced caches made once and copied per test (``synced_copies``, session scope).

Tests that start "after a full sync of the small portal" spent most of their time in that
sync. The portal every test resets to is the same each time (same seed and day: the same
ids, values and times), so a cache synced once holds exactly what the test's own sync would
write. ``synced_copies.fill(target, how, fingerprint, build)`` copies the cache kept for ``how``
(the name of the way ``build`` makes it: an OAuth connect and sync, a private-app sync...)
and ``fingerprint`` into the test's fresh, empty cache ``target`` (a SQLite path or a
migrated PostgreSQL URL), after ``build(template_target)`` made it the first time. The
fingerprint is what the sandbox holds (``portal_fingerprint``), so a test that reset the
sandbox to something else gets a sync of its own.

A SQLite cache is copied with its connections' partitions (sibling files); a PostgreSQL one
with its schemas (the whole database is the template).

What differs from a sync of its own: the run row and the cursors carry the first sync's
times (seconds to minutes earlier), and anything the build stored encrypted (OAuth tokens)
was encrypted with the template's key: a test that needs tokens connects again (a
reconnect of the same portal keeps the cache).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crm import store
from crm.config import is_postgresql_url


def portal_fingerprint(sandbox: Any, portal_id: int | None = None) -> str:
    """A digest of what a sandbox portal holds now (records, their times and owners)."""
    kw = {} if portal_id is None else {"portal_id": portal_id}
    truth = {t: sandbox.truth(t, **kw) for t in ("contacts", "companies", "deals", "tickets")}
    return hashlib.sha256(json.dumps(truth, sort_keys=True, default=str).encode()).hexdigest()


class SyncedCopies:
    def __init__(self, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> None:
        self._tmp = tmp_path_factory
        self._request = request
        self._made: dict[tuple[bool, str, str], str] = {}

    def fill(self, target: str, how: str, fingerprint: str, build: Callable[[str], None]) -> None:
        """Make the empty cache ``target`` a copy of the cache ``build`` made for ``how`` and ``fingerprint``."""
        on_pg = is_postgresql_url(target)
        key = (on_pg, how, fingerprint)
        if key not in self._made:
            if on_pg:
                name = f"crm_synced_{len(self._made)}"
                build(self._cluster().create_database(name=name))
            else:
                name = str(self._tmp.mktemp("synced") / "crm.db")
                build(name)
            self._made[key] = name
        store.close_engines()  # a PostgreSQL template takes no open sessions; SQLite checkpoints
        template = self._made[key]
        if on_pg:
            database = target.rsplit("/", 1)[1].split("?")[0]
            self._cluster().drop_database(database)
            self._cluster().create_database(name=database, template=template)
        else:
            # The cache and its connections' partitions (sibling files ``crm.<partition>.db``);
            # a log is folded in when the last connection closes, but copy one if it is there.
            source, dest = Path(template), Path(target)
            for found in sorted(source.parent.glob(source.stem + ".*")):
                if found.name.endswith("-shm"):
                    continue
                shutil.copyfile(found, dest.with_name(dest.stem + found.name[len(source.stem) :]))

    def _cluster(self) -> Any:
        return self._request.getfixturevalue("pg_cluster")


@pytest.fixture(scope="session")
def synced_copies(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> SyncedCopies:
    return SyncedCopies(tmp_path_factory, request)
