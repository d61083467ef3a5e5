"""SandboxState: one sandbox portal, everything the routes read and change.

``lock`` guards the records, properties and owners. Handlers take it only around work that
never awaits, so a request sleeping out its latency never holds it.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import threading
from typing import Any

from crm.sandbox.config import SandboxConfig
from crm.sandbox.conversations import Conversations
from crm.sandbox.daily import DailyBudget
from crm.sandbox.journal import Journal
from crm.sandbox.limits import Faults, Limits
from crm.sandbox.oauth.models import OAuthModel
from crm.sandbox.objects.models import ObjectStore
from crm.sandbox.owners import Owners
from crm.sandbox.pipelines import Pipelines
from crm.sandbox.properties import PropertyRegistry
from crm.sandbox.seed import seed_portal
from crm.sandbox.transcripts import Transcript
from crm.sandbox.webhooks import WebhookSender

SIZE_KEYS = (
    "seed",
    "contacts",
    "companies",
    "deals",
    "owners",
    "tickets",
    "engagements",
    "threads",
    "anchor_date",
)


class Stats:
    """Requests per method and route template, responses per status, limits and faults served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.responses: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.rate_limited = 0
        self.search_rate_limited = 0

    def record(self, route: str, status: int | None) -> None:
        with self._lock:
            self.requests[route] += 1
            if status is not None:
                self.responses[str(status)] += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def count_limited(self, *, search: bool) -> None:
        with self._lock:
            if search:
                self.search_rate_limited += 1
            else:
                self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "responses": dict(self.responses),
                "total_requests": sum(self.requests.values()),
                "rate_limited": self.rate_limited + self.search_rate_limited + self.faults.get("429", 0),
                "burst_rate_limited": self.rate_limited,
                "search_rate_limited": self.search_rate_limited,
                "faults": dict(self.faults),
            }


class SandboxState:
    """The portal: config, auth, webhooks, records, conversations, transcripts, properties, pipelines,
    owners, limits, stats."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._initial = copy.deepcopy(self.config)
        self.lock = threading.RLock()
        self.auth = OAuthModel(self.config)
        self.webhooks = WebhookSender(self.config)
        self.properties = PropertyRegistry()
        self.pipelines = Pipelines()
        self.owners = Owners()
        self.objects = ObjectStore(self.properties, self.pipelines, self.config)
        self.conversations = Conversations()
        self.transcripts: dict[str, Transcript] = {}
        self.journal = Journal(self.config)
        self.webhooks.observers.append(self.journal.record)
        self.daily = DailyBudget(self.config)
        self.limits = Limits(self.config)
        self.faults = Faults(self.config)
        self.stats = Stats()
        self.counts: dict[str, int] = {}
        with self.lock:
            self.counts = seed_portal(self)

    def reset(self, options: dict[str, Any]) -> dict[str, int]:
        """Re-seed the portal. ``options``: sizes and seed, plus tokens/webhooks/config flags.

        Raises ValueError for an unknown option or a negative size.
        """
        options = dict(options)
        restore = bool(options.pop("config", False))
        reset_tokens = bool(options.pop("tokens", False))
        reset_webhooks = bool(options.pop("webhooks", False))
        unknown = set(options) - set(SIZE_KEYS)
        if unknown:
            raise ValueError(f"unknown reset options: {sorted(unknown)}")
        for key in ("contacts", "companies", "deals", "owners", "tickets", "engagements", "threads"):
            if key in options and (not isinstance(options[key], int) or options[key] < 0):
                raise ValueError(f"{key} must be a whole number, 0 or more")
        with self.lock:
            if restore:
                self.restore_config()
            self.config.update(options)
            self.counts = seed_portal(self)
            self.limits.reset()
            self.daily.reset()
            self.journal.reset()
            self.faults.reset()
            self.stats = Stats()
        if reset_tokens:
            self.auth.reset()
        if reset_webhooks:
            self.webhooks.reset()
        return dict(self.counts)

    def restore_config(self) -> None:
        """Put back every setting the sandbox started with, in place (auth and webhooks share it)."""
        for field in dataclasses.fields(self.config):
            setattr(self.config, field.name, copy.deepcopy(getattr(self._initial, field.name)))

    def close(self) -> None:
        self.webhooks.close()
