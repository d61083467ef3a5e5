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
        ("CRM_LIVE", "push"),
        ("CRM_LIVE_POLL", "0.5"),
        ("CRM_LIVE_POLL", "3600"),
        ("CRM_DAILY_BUDGET", "0%"),
        ("CRM_DAILY_BUDGET", "150%"),
        ("CRM_DAILY_BUDGET", "50"),
        ("CRM_DAILY_BUDGET", "half"),
        ("CRM_DAILY_LIMIT", "-1"),
        ("CRM_DAILY_LIMIT", "lots"),
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


@pytest.mark.parametrize(
    ("value", "share"),
    [("", 0.5), ("50%", 0.5), ("12.5 %", 0.125), ("0.25", 0.25), ("100%", 1.0), ("1", 1.0)],
)
def test_the_daily_budget_reads_as_a_share_of_the_portals_limit(value: str, share: float):
    assert load_settings({"CRM_DAILY_BUDGET": value}, {}).daily_budget == pytest.approx(share)


def test_a_daily_limit_may_be_configured_for_apps_that_hubspot_tells_none():
    assert load_settings({}, {}).daily_limit == 0
    assert load_settings({"CRM_DAILY_LIMIT": "250_000"}, {}).daily_limit == 250_000


def test_ports_at_the_edges_are_accepted():
    assert load_settings({"CRM_SANDBOX_PORT": "65535"}, {}).sandbox_port == 65535
    assert load_settings({"CRM_SANDBOX_PORT": "0"}, {}).sandbox_port == 0
    assert load_settings({"HUBSPOT_REDIRECT_URI": "https://crm.example.com:8443/hubspot/callback"}, {})


KEY = "k" * 43 + "="


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "webhooks"),  # demo: the embedded sandbox delivers to the app
        ({"CRM_LIVE": "journal"}, "off"),  # demo without a sandbox URL yet: no client id...
        ({"HUBSPOT_CLIENT_ID": "a", "HUBSPOT_CLIENT_SECRET": "s", "CRM_SECRET_KEY": KEY}, "journal"),
        (
            {"HUBSPOT_CLIENT_ID": "a", "HUBSPOT_CLIENT_SECRET": "s", "CRM_SECRET_KEY": KEY,
             "HUBSPOT_WEBHOOK_URL": "https://crm.example.com/hubspot/webhook"},
            "webhooks",
        ),
        ({"HUBSPOT_ACCESS_TOKEN": "pat"}, "off"),
        ({"HUBSPOT_ACCESS_TOKEN": "pat", "HUBSPOT_CLIENT_ID": "a", "HUBSPOT_CLIENT_SECRET": "s"}, "journal"),
        (
            {"HUBSPOT_ACCESS_TOKEN": "pat", "HUBSPOT_CLIENT_ID": "a", "HUBSPOT_CLIENT_SECRET": "s",
             "HUBSPOT_WEBHOOK_URL": "https://crm.example.com/hubspot/webhook", "CRM_LIVE": "OFF"},
            "off",
        ),
    ],
)  # fmt: skip
def test_live_updates_use_what_the_configuration_allows_unless_crm_live_says(env: dict[str, str], mode: str):
    assert load_settings(env, {}).live_mode()[0] == mode


def test_demo_mode_polls_the_journal_when_asked_once_pointed_at_its_sandbox():
    settings = load_settings({"CRM_LIVE": "journal"}, {}).for_sandbox("http://127.0.0.1:9")
    assert settings.live_mode() == ("journal", "CRM_LIVE=journal")


def test_deletion_sweeps_run_every_four_hours_unless_configured_or_turned_off():
    assert load_settings({}, {}).deletion_sweep_s == 4 * 3600
    assert load_settings({"CRM_DELETION_SWEEP": "1h"}, {}).deletion_sweep_s == 3600
    assert load_settings({"CRM_DELETION_SWEEP": "off"}, {}).deletion_sweep_s == 0
    with pytest.raises(ConfigError, match="CRM_DELETION_SWEEP"):
        load_settings({"CRM_DELETION_SWEEP": "often"}, {})
