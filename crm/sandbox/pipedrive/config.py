"""The Pipedrive sandbox's options: CLI flags, the Python API and ``POST /_sandbox/config`` share them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

DEFAULT_CLIENT_ID = "pipedrive-sandbox-client-id"
DEFAULT_CLIENT_SECRET = "pipedrive-sandbox-client-secret"
DEFAULT_REDIRECT_URIS = (
    "http://localhost:8501/pipedrive/callback",
    "http://127.0.0.1:8501/pipedrive/callback",
)
# Scopes a Pipedrive app asks for at registration (docs/PIPEDRIVE_API.md §1); shown on the consent page.
DEFAULT_SCOPES = ("base", "contacts:full", "deals:full", "activities:full", "users:read", "admin")


@dataclasses.dataclass
class PipedriveConfig:
    """Everything that shapes one sandbox company; mutable through the admin API."""

    seed: int = 42
    persons: int = 2000
    organizations: int = 400
    deals: int = 600
    users: int = 6
    company_id: int = 13_370_001
    company_name: str = "Sandbox Company"
    company_domain: str = "sandbox-company"
    # The api_domain handed out with OAuth tokens; empty means this sandbox's own base URL.
    api_domain: str = ""
    app_name: str = "CRM Dashboard (Pipedrive sandbox)"
    latency_ms: float = 0.0
    # Burst limits per token per window (docs/PIPEDRIVE_API.md §6; Professional plan by default).
    api_token_burst: int = 80
    oauth_burst: int = 320
    search_burst: int = 10
    burst_window_s: float = 2.0
    # The company's daily token budget and the api_token POST/PUT allowance (x-daily-requests-left).
    daily_token_budget: int = 1_000_000
    daily_write_requests: int = 10_000
    token_ttl: int = 3600
    code_ttl: int = 300
    rotate_refresh_tokens: bool = False
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    webhook_timeout_s: float = 10.0
    # Seconds before each retry of a failed webhook delivery.
    webhook_retry_delays: tuple[float, ...] = (3.0, 30.0, 150.0)
    # The day seeded dates end at (YYYY-MM-DD, UTC); empty means today.
    anchor_date: str = ""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes``; raise ValueError naming an unknown key or a value of the wrong type."""
        defaults = PipedriveConfig()
        for key, value in changes.items():
            if not hasattr(defaults, key):
                raise ValueError(f"unknown sandbox setting: {key}")
            value = _coerce(key, getattr(defaults, key), value)
            if key == "anchor_date" and value:
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"anchor_date: {value!r} is not a YYYY-MM-DD date") from None
            setattr(self, key, value)


def _coerce(key: str, default: Any, value: Any) -> Any:
    """``value`` in the type of ``default``, so a typo cannot break the sandbox."""
    wrong = ValueError(f"{key}: {value!r} has the wrong type")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise wrong
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise wrong
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise wrong
        return value
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise wrong
        kind = type(default[0]) if default else str
        if kind is float:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise wrong
            return tuple(float(v) for v in value)
        if not all(isinstance(v, str) for v in value):
            raise wrong
        return tuple(value)
    raise wrong
