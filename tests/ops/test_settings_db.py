"""CRM_DB: a PostgreSQL URL is kept whole and its password never shown; anything else is a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm import store
from crm.config import load_settings
from crm.errors import ConfigError

URL = "postgresql://crm:s3cret%40pw@db.example.com:5433/crm"


def test_a_postgresql_url_is_kept_as_given_and_opens_postgresql():
    settings = load_settings({"CRM_DB": URL}, {})
    assert settings.db == URL and settings.db_is_postgresql
    assert store.target_of(settings) == URL
    with pytest.raises(ConfigError, match="CRM_DB"):
        settings.db_path  # noqa: B018 - a URL has no file


def test_the_password_is_in_no_label_key_or_repr():
    settings = load_settings({"CRM_DB": URL}, {})
    assert settings.db_label == "PostgreSQL at db.example.com:5433/crm"
    for shown in (settings.db_label, settings.db_key, repr(settings)):
        assert "s3cret" not in shown


def test_anything_else_is_a_sqlite_file(tmp_path: Path):
    settings = load_settings({"CRM_DB": str(tmp_path / "c.db")}, {})
    assert not settings.db_is_postgresql
    assert settings.db_path == tmp_path / "c.db"
    assert settings.db_label == str(tmp_path / "c.db")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("postgresql:/db.example.com/crm", "two slashes"),
        ("postgresql://crm@db.example.com", "must name a database"),
        ("postgresql://crm:pw@db.example.com:99999/crm", "port"),
    ],
)
def test_a_broken_postgresql_url_is_refused_without_showing_its_password(value, problem):
    with pytest.raises(ConfigError) as refused:
        load_settings({"CRM_DB": value}, {})
    assert problem in str(refused.value) and "pw@" not in str(refused.value)
