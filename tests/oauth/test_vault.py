"""Token encryption at rest: binding to the row, key rotation, failing closed (pure)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from crm.config import load_settings
from crm.errors import ConfigError, NeedsReconnect
from crm.vault import Vault, load_keys

TOKEN = "CKz-access-token-1234567890"


def test_ciphertext_hides_the_token_and_decrypts_for_its_own_row():
    vault = Vault([Fernet.generate_key().decode()])
    ciphertext = vault.encrypt(TOKEN, portal_id=62515, kind="access")
    assert TOKEN not in ciphertext
    assert vault.decrypt(ciphertext, portal_id=62515, kind="access") == TOKEN


def test_ciphertext_copied_to_another_row_is_refused():
    vault = Vault([Fernet.generate_key().decode()])
    ciphertext = vault.encrypt(TOKEN, portal_id=62515, kind="access")
    with pytest.raises(NeedsReconnect):
        vault.decrypt(ciphertext, portal_id=62515, kind="refresh")
    with pytest.raises(NeedsReconnect):
        vault.decrypt(ciphertext, portal_id=99, kind="access")


def test_wrong_key_fails_closed_without_revealing_anything():
    ciphertext = Vault([Fernet.generate_key().decode()]).encrypt(TOKEN, portal_id=1, kind="access")
    with pytest.raises(NeedsReconnect) as caught:
        Vault([Fernet.generate_key().decode()]).decrypt(ciphertext, portal_id=1, kind="access")
    assert TOKEN not in str(caught.value)
    with pytest.raises(NeedsReconnect):
        Vault([Fernet.generate_key().decode()]).decrypt("not-a-fernet-token", portal_id=1, kind="access")


def test_old_key_still_decrypts_while_listed_and_rotate_moves_to_the_newest():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ciphertext = Vault([old]).encrypt(TOKEN, portal_id=1, kind="refresh")
    both = Vault([new, old])
    assert both.decrypt(ciphertext, portal_id=1, kind="refresh") == TOKEN
    rotated = both.rotate(ciphertext, portal_id=1, kind="refresh")
    assert Vault([new]).decrypt(rotated, portal_id=1, kind="refresh") == TOKEN
    with pytest.raises(NeedsReconnect):
        Vault([old]).decrypt(rotated, portal_id=1, kind="refresh")


def test_sandbox_mode_creates_a_private_key_file_beside_the_cache_once(tmp_path: Path):
    settings = load_settings({"CRM_DB": str(tmp_path / "cache" / "crm.db")}, {})
    first = load_keys(settings)
    key_file = tmp_path / "cache" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_keys(settings) == first
    Vault(first)  # a usable Fernet key


def test_configured_keys_win_newest_first(tmp_path: Path):
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = load_settings({"CRM_DB": str(tmp_path / "crm.db"), "CRM_SECRET_KEY": f"{k2},{k1}"}, {})
    assert load_keys(settings) == [k2, k1]
    assert not (tmp_path / "secret.key").exists()


def test_no_key_outside_sandbox_mode_is_a_config_error(tmp_path: Path):
    settings = load_settings({"CRM_DB": str(tmp_path / "crm.db"), "HUBSPOT_ACCESS_TOKEN": "pat-1"}, {})
    with pytest.raises(ConfigError) as caught:
        load_keys(settings)
    assert caught.value.setting == "CRM_SECRET_KEY"
