"""The HubSpot client: the only code in ``crm`` that sends CRM requests to HubSpot.

Modules:
    client         HubSpotClient: the facade callers hold; each method hands over to one area
    transport      the shared httpx2 client: limits, bearer token, retries, 401 refresh, errors
    paths          HubSpot's endpoint paths, in one table
    paging         list pages and single gets (properties past the URL limit by batch read)
    batches        batch read, update, upsert, create (never retried once it may have acted), archive
    search         one search page and lookups on one page
    associations   the v4 associations batch read
    metadata       properties, pipelines, owners, account info
    conversations  the inbox (threads, messages, channels) and call transcripts
    walks          the search walks: modified since (past the cap), one id range, the highest id
    limits         the per-portal rolling rate budgets, the daily budget, backoff and the circuit breaker
    errors         HubSpot error bodies -> crm.errors (ValidationFailed.field_errors, ...)
    models         Record, Page, SearchPage, BatchResult, ClientStats, TokenSource and the
                   wire -> snake_case translation
    tokens         the OAuth token endpoint (code exchange, refresh, introspection, revocation)

``crm.hubspot`` never imports ``crm.sandbox``: the sandbox is reached through its URL only.
"""

from __future__ import annotations

from crm.hubspot.client import HubSpotClient
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
from crm.hubspot.paths import PATHS
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
