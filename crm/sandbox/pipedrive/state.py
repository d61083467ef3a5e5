"""PipedriveState: one sandbox company, everything the routes read and change.

``lock`` guards records, fields, notes and activities. Handlers hold it only around work
that never awaits, so a request sleeping out its latency never holds it.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import threading
from typing import Any

from crm.sandbox.limits import RollingWindow
from crm.sandbox.pipedrive.auth import AuthModel, Principal
from crm.sandbox.pipedrive.config import PipedriveConfig
from crm.sandbox.pipedrive.models import (
    ENTITY_TYPES,
    Activity,
    FieldRegistry,
    Note,
    Pipeline,
    RecordStore,
    Stage,
    User,
)
from crm.sandbox.pipedrive.seed import anchor_ts, seed_company
from crm.sandbox.pipedrive.webhooks import WebhookHub

SIZE_KEYS = ("seed", "persons", "organizations", "deals", "users", "anchor_date")


class Stats:
    """Requests per method and route template, responses per status, 429s by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.responses: collections.Counter[str] = collections.Counter()
        self.limited: collections.Counter[str] = collections.Counter()
        self.tokens_spent = 0

    def record(self, route: str, status: int | None) -> None:
        with self._lock:
            self.requests[route] += 1
            if status is not None:
                self.responses[str(status)] += 1

    def add_tokens(self, cost: int) -> None:
        with self._lock:
            self.tokens_spent += cost

    def count_limited(self, kind: str) -> None:
        with self._lock:
            self.limited[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "responses": dict(self.responses),
                "total_requests": sum(self.requests.values()),
                "rate_limited": sum(self.limited.values()),
                "rate_limited_by_kind": dict(self.limited),
                "tokens_spent": self.tokens_spent,
            }


class Limits:
    """Burst windows per token (search has its own), the daily budget and daily writes."""

    def __init__(self, config: PipedriveConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], RollingWindow] = {}
        self._day = ""
        self.budget_spent = 0
        self._writes: collections.Counter[str] = collections.Counter()

    def take(self, principal: Principal, *, search: bool) -> tuple[bool, int, int, float]:
        """One slot of the caller's window: (allowed, limit, remaining, seconds until a slot frees)."""
        cfg = self.config
        if search:
            limit = cfg.search_burst
        else:
            limit = cfg.api_token_burst if principal.kind == "api_token" else cfg.oauth_burst
        with self._lock:
            window = self._windows.setdefault(
                (principal.token, "search" if search else "burst"), RollingWindow()
            )
        allowed, remaining, wait = window.acquire(max(limit, 0), max(cfg.burst_window_s, 0.001))
        return allowed, limit, remaining, wait

    def spend(self, cost: int) -> bool:
        """Take ``cost`` tokens from today's budget (UTC day); False when it would go over."""
        with self._lock:
            self._roll()
            if self.budget_spent + cost > self.config.daily_token_budget:
                return False
            self.budget_spent += cost
            return True

    def write(self, principal: Principal) -> int:
        """Count a POST/PUT/PATCH of an api_token user; the requests left today."""
        with self._lock:
            self._roll()
            self._writes[principal.token] += 1
            return max(self.config.daily_write_requests - self._writes[principal.token], 0)

    def writes_left(self, principal: Principal) -> int:
        with self._lock:
            self._roll()
            return max(self.config.daily_write_requests - self._writes[principal.token], 0)

    def _roll(self) -> None:
        today = dt.datetime.now(dt.UTC).date().isoformat()
        if today != self._day:
            self._day, self.budget_spent = today, 0
            self._writes.clear()

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._day, self.budget_spent = "", 0
            self._writes.clear()


class PipedriveState:
    """The company: config, auth, webhooks, records, fields, users, pipelines, limits, stats."""

    def __init__(self, config: PipedriveConfig | None = None) -> None:
        self.config = config or PipedriveConfig()
        self._initial = copy.deepcopy(self.config)
        self.lock = threading.RLock()
        self.auth = AuthModel(self.config)
        self.webhooks = WebhookHub(self.config)
        self.limits = Limits(self.config)
        self.stats = Stats()
        self._empty()
        with self.lock:
            seed_company(self)

    def _empty(self) -> None:
        self.fields = FieldRegistry(self.config.seed, anchor_ts(self.config.anchor_date) - 730 * 86_400)
        self.records = RecordStore()
        self.users: list[User] = []
        self.pipelines: list[Pipeline] = []
        self.notes: list[Note] = []
        self.activities: list[Activity] = []

    def reset(self, options: dict[str, Any]) -> dict[str, int]:
        """Re-seed the company. ``options``: sizes and seed, plus tokens/webhooks/config flags.

        Raises ValueError for an unknown option or a negative size.
        """
        options = dict(options)
        restore = bool(options.pop("config", False))
        reset_tokens = bool(options.pop("tokens", False))
        reset_webhooks = bool(options.pop("webhooks", False))
        unknown = set(options) - set(SIZE_KEYS)
        if unknown:
            raise ValueError(f"unknown reset options: {sorted(unknown)}")
        for key in ("persons", "organizations", "deals", "users"):
            if key in options and (
                isinstance(options[key], bool) or not isinstance(options[key], int) or options[key] < 0
            ):
                raise ValueError(f"{key} must be a whole number, 0 or more")
        with self.lock:
            if restore:
                for field in dataclasses.fields(self.config):
                    setattr(self.config, field.name, copy.deepcopy(getattr(self._initial, field.name)))
            self.config.update(options)
            self._empty()
            seed_company(self)
            self.limits.reset()
            self.stats = Stats()
        if reset_tokens:
            self.auth.reset()
        if reset_webhooks:
            self.webhooks.reset()
        return self.counts()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {t: len(self.records.all_live(t)) for t in ENTITY_TYPES}
        counts.update(users=len(self.users), notes=len(self.notes), activities=len(self.activities))
        return counts

    def user(self, user_id: int) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def pipeline(self, pipeline_id: int) -> Pipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def stage(self, stage_id: int) -> Stage | None:
        return next((s for p in self.pipelines for s in p.stages if s.id == stage_id), None)

    def exists(self, kind: str, ref: int) -> bool:
        if kind == "users":
            return self.user(ref) is not None
        return kind in ENTITY_TYPES and self.records.live(kind, ref) is not None

    def company(self) -> dict[str, Any]:
        cfg = self.config
        return {"company_id": cfg.company_id, "company_name": cfg.company_name, "company_domain": cfg.company_domain,
                "company_country": "EE", "company_industry": "Software"}  # fmt: skip

    def close(self) -> None:
        self.webhooks.close()
