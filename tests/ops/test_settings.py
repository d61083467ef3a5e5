"""Impossible settings are refused with one message naming the setting."""

from __future__ import annotations

import pytest

from crm.config import load_settings
from crm.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CRM_SANDBOX_PORT", "70000"),
        ("CRM_SANDBOX_PORT", "-1"),
        ("HUBSPOT_REDIRECT_URI", "http://localhost:99999/hubspot/callback"),
        ("HUBSPOT_BASE_URL", "http://127.0.0.1:0x50"),
        ("CRM_HTTP_TIMEOUT", "0"),
        ("CRM_HTTP_TIMEOUT", "-5"),
        ("CRM_HTTP_TIMEOUT", "inf"),
        ("CRM_SYNC_INTERVAL", "0"),
        ("CRM_SYNC_INTERVAL", "-15m"),
        ("CRM_SYNC_INTERVAL", "10s"),
        ("CRM_SYNC_INTERVAL", "fortnightly"),
        ("CRM_SYNC_INTERVAL", "15x"),
        ("CRM_SYNC_INTERVAL", "30d"),
        ("CRM_LOG_LEVEL", "chatty"),
        ("CRM_LOG_FORMAT", "yaml"),
    ],
)
def test_an_impossible_value_is_refused_naming_the_setting(name: str, value: str):
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value}, {})
    assert caught.value.setting == name
    assert str(caught.value).startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("", 0),
        ("off", 0),
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("600", 600),
    ],
)
def test_sync_intervals_read_as_people_write_them(value: str, seconds: int):
    assert load_settings({"CRM_SYNC_INTERVAL": value}, {}).sync_interval_s == seconds


def test_ports_at_the_edges_are_accepted():
    assert load_settings({"CRM_SANDBOX_PORT": "65535"}, {}).sandbox_port == 65535
    assert load_settings({"CRM_SANDBOX_PORT": "0"}, {}).sandbox_port == 0
    assert load_settings({"HUBSPOT_REDIRECT_URI": "https://crm.example.com:8443/hubspot/callback"}, {})
