"""The HubSpot client: the only code in ``crm`` that sends CRM requests to HubSpot.

Modules:
    client   HubSpotClient: paging, batch, search past the 10,000 cap, associations v4,
             properties, pipelines, owners, account info; retries and 401 refresh
    walks    the search walks: modified since (past the cap), one id range, the highest id
    limits   the per-portal rolling rate budgets, the daily budget, backoff and the circuit breaker
    errors   HubSpot error bodies -> crm.errors (ValidationFailed.field_errors, ...)
    models   Record, Page, SearchPage, BatchResult, ClientStats, TokenSource and the
             wire -> snake_case translation
    tokens   the OAuth token endpoint (code exchange, refresh, introspection, revocation)

``crm.hubspot`` never imports ``crm.sandbox``: the sandbox is reached through its URL only.
"""

from __future__ import annotations

from crm.hubspot.client import PATHS, HubSpotClient
from crm.hubspot.limits import CircuitBreaker, PortalLimits, RollingWindow, limits_for, reset_limits
from crm.hubspot.models import (
    LAST_MODIFIED,
    BatchResult,
    ClientStats,
    ObjectType,
    Page,
    Record,
    SearchPage,
    TokenSource,
)
from crm.hubspot.tokens import StaticToken

__all__ = [
    "LAST_MODIFIED",
    "PATHS",
    "BatchResult",
    "CircuitBreaker",
    "ClientStats",
    "HubSpotClient",
    "ObjectType",
    "Page",
    "PortalLimits",
    "Record",
    "RollingWindow",
    "SearchPage",
    "StaticToken",
    "TokenSource",
    "limits_for",
    "reset_limits",
]
