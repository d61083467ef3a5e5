"""Settings on a fresh cache of each backend for the connections' tests."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from crm.config import Settings


@pytest.fixture
def home_settings(cache_target: str) -> Settings:
    """Sandbox-mode settings whose CRM_DB is a fresh cache (SQLite, then PostgreSQL)."""
    return Settings(mode="sandbox", db=cache_target, secret_keys=(Fernet.generate_key().decode(),))
