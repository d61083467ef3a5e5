"""The sandbox's options: CLI flags, the Python API and ``POST /_sandbox/config`` share them."""

from __future__ import annotations

import dataclasses
from typing import Any

DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REDIRECT_URIS = (
    "http://localhost:8501/hubspot/callback",
    "http://127.0.0.1:8501/hubspot/callback",
)
FAULT_KINDS = ("429", "500", "502", "503", "slow", "drop")


@dataclasses.dataclass
class SandboxConfig:
    """Everything that shapes one sandbox portal; mutable through the admin API."""

    seed: int = 42
    contacts: int = 2000
    companies: int = 400
    deals: int = 600
    owners: int = 8
    # Interactions are totals, not per contact, so a million-contact bench portal does not
    # grow by millions of engagements: tickets; notes, calls, emails, meetings and tasks
    # together (spread unevenly over contacts); conversation threads (a few messages each).
    tickets: int = 120
    engagements: int = 600
    threads: int = 40
    # The default portal; ``extra_portal_ids`` are more portals served beside it, each with its
    # own records, tokens, limits and webhook deliveries (fixed at start, like ``--portal-id``).
    portal_id: int = 62515
    extra_portal_ids: tuple[int, ...] = ()
    app_id: int = 54321
    app_name: str = "CRM Dashboard (sandbox)"
    ui_domain: str = "app.hubspot.com"
    hub_domain: str = "sandbox-portal.example.com"
    user_email: str = "admin@sandbox-portal.example.com"
    user_id: int = 222222
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    burst_limit: int = 110
    burst_window_s: float = 10.0
    search_limit: int = 5
    token_ttl: int = 1800
    code_ttl: int = 600
    rotate_refresh_tokens: bool = False
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    webhook_url: str = ""
    webhook_timeout_s: float = 5.0
    webhook_retry_all_4xx: bool = False
    # Seconds before each retry of a failed webhook delivery (HubSpot: 10 retries over ~24 h).
    webhook_retry_delays: tuple[float, ...] = (10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 50400)
    # Events emitted within this window go in one delivery request.
    webhook_batch_ms: float = 100.0
    index_lag_ms: float = 0.0
    # Each write becomes searchable after index_lag_ms plus up to this much more, drawn per
    # write, so writes near "now" can surface out of order (docs/JOURNAL_AND_LIMITS_API.md §7).
    index_lag_jitter_ms: float = 0.0
    # The portal's daily request budget (X-HubSpot-RateLimit-Daily); 0 means no daily limit,
    # as for public OAuth apps. Resets at midnight UTC or through /_sandbox/daily.
    daily_limit: int = 0
    # Webhooks journal: how long entries stay (HubSpot: about 3 days) and how long a
    # journal entry's download URL works.
    journal_retention_s: float = 3 * 24 * 3600.0
    journal_url_ttl_s: float = 300.0
    # Merging contacts or companies gives the result a new id (HubSpot's current behaviour);
    # False keeps the primary's id (the behaviour before, and still the one for deals).
    merge_new_id: bool = True
    # Archived records can be restored (as in the UI's recycle bin) for this many days.
    recycle_bin_days: float = 90.0
    retry_after: bool = True
    max_url_length: int = 16_000
    # Probability per request of each fault kind, e.g. {"429": 0.05, "drop": 0.01}.
    faults: dict[str, float] = dataclasses.field(default_factory=dict)
    # How long a "slow" fault holds a response, on top of latency_ms.
    slow_ms: float = 3000.0
    # Associations per input page in v4 batch read (and the single-record GET's maximum).
    association_page_size: int = 500
    # The day seeded dates are anchored to (YYYY-MM-DD, UTC); empty means today, so the
    # demo portal always looks current. Pin it for byte-identical seeds across days.
    anchor_date: str = ""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the known keys of ``changes``; raise ValueError naming an unknown one."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown sandbox setting: {key}")
            if key == "faults":
                unknown = set(value) - set(FAULT_KINDS)
                if unknown:
                    raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
                value = {k: float(v) for k, v in value.items()}
            elif key in ("redirect_uris", "webhook_retry_delays", "extra_portal_ids"):
                value = tuple(value)
            setattr(self, key, value)
