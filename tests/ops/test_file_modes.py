"""The cache and the sandbox key file are created readable by their owner only."""

from __future__ import annotations

import os
import stat

import pytest

from crm import store, vault
from crm.config import load_settings


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual default: files would come out world-readable
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_cache_and_its_wal_files_are_owner_only(tmp_path, loose_umask):
    path = tmp_path / "data" / "crm.db"
    db = store.open(path)
    try:
        db.queries.counts()
        names = {p.name: _mode(p) for p in path.parent.iterdir()}
        assert names.keys() >= {"crm.db", "crm.db-wal", "crm.db-shm"}
        assert set(names.values()) == {0o600}, names
    finally:
        db.close()


def test_the_sandbox_key_file_is_owner_only(tmp_path, loose_umask):
    settings = load_settings({"CRM_DB": str(tmp_path / "crm.db")}, {})
    vault.load_keys(settings)
    assert _mode(tmp_path / "secret.key") == 0o600
