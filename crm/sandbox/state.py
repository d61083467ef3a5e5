"""SandboxState: one sandbox portal, everything the routes read and change.

``lock`` guards the records, properties and owners. Handlers take it only around work that
never awaits, so a request sleeping out its latency never holds it.

A sandbox may serve several portals (``config.extra_portal_ids``). The first state built is
the default portal; it builds one ``SandboxState`` per extra portal and they all share
``portals`` (portal id to state). Each portal has its own config copy, records, tokens,
limits, faults, stats and webhook sender; the gate picks the portal from the bearer token
(a token belongs to one portal, as at HubSpot), admin routes from ``portal_id``. Settings
that belong to the app or the server (client, redirect URIs, webhook URL, latency, limits,
...) are kept equal in every portal's config by ``configure``.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from crm.sandbox.config import SandboxConfig
from crm.sandbox.conversations import Conversations
from crm.sandbox.daily import DailyBudget
from crm.sandbox.journal import Journal
from crm.sandbox.limits import Faults, Limits
from crm.sandbox.oauth.models import OAuthModel
from crm.sandbox.objects.models import FIRST_ID, ObjectStore
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
# Settings each portal has for itself; every other setting is shared by all the portals.
# portal_id may change (tests switch a one-portal sandbox to "another portal" so).
PORTAL_SETTINGS = ("portal_id", "hub_domain", "extra_portal_ids")
# Another portal's record ids start at FIRST_ID + portal id × this, so ids never collide.
PORTAL_ID_SPACING = 1_000_000


def portal_config(default: SandboxConfig, portal_id: int) -> SandboxConfig:
    """The config of another portal served beside ``default``: the same settings, its own identity."""
    return dataclasses.replace(
        copy.deepcopy(default),
        portal_id=portal_id,
        hub_domain=f"portal-{portal_id}.sandbox.example.com",
        extra_portal_ids=(),
    )


class Stats:
    """Requests per method and route template, responses per status, limits and faults served,
    and the most requests served at once, in all and per method and path
    (``max_in_flight``, ``max_in_flight_by_path``: they show a client's parallelism without
    timing it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.responses: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.rate_limited = 0
        self.search_rate_limited = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._in_flight_by: collections.Counter[str] = collections.Counter()
        self.max_in_flight_by: dict[str, int] = {}

    def started(self, key: str) -> None:
        """A request of this portal (``key``: its method and path) is being served, latency included."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._in_flight_by[key] += 1
            self.max_in_flight_by[key] = max(self.max_in_flight_by.get(key, 0), self._in_flight_by[key])

    def ended(self, key: str) -> None:
        with self._lock:
            self.in_flight -= 1
            self._in_flight_by[key] -= 1

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
                "max_in_flight": self.max_in_flight,
                "max_in_flight_by_path": dict(self.max_in_flight_by),
            }


class SandboxState:
    """The portal: config, auth, webhooks, records, conversations, transcripts, properties, pipelines,
    owners, limits, stats."""

    def __init__(self, config: SandboxConfig | None = None, *, default: SandboxState | None = None) -> None:
        """``default``: the sandbox's default portal, when this state is one of its extra portals.

        Raises ValueError when a portal id is repeated.
        """
        self.config = config or SandboxConfig()
        ids = (self.config.portal_id, *self.config.extra_portal_ids)
        if len(set(ids)) != len(ids):
            raise ValueError(f"each portal id must be different: {list(ids)}")
        self._initial = copy.deepcopy(self.config)
        self.is_default = default is None
        self.seed_key = self._seed_key()
        self.portals: dict[int, SandboxState] = {ids[0]: self} if default is None else default.portals
        self.lock = threading.RLock()
        self.auth = OAuthModel(self.config)
        self.webhooks = WebhookSender(self.config)
        self.properties = PropertyRegistry()
        self.pipelines = Pipelines()
        self.owners = Owners()
        first_id = FIRST_ID if self.is_default else FIRST_ID + ids[0] * PORTAL_ID_SPACING
        self.objects = ObjectStore(self.properties, self.pipelines, self.config, first_id=first_id)
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
        for portal_id in self.config.extra_portal_ids if default is None else ():
            self.portals[portal_id] = SandboxState(portal_config(self.config, portal_id), default=self)

    def _seed_key(self) -> int | str:
        # The default portal seeds exactly as a one-portal sandbox always has; others mix in their id.
        return self.config.seed if self.is_default else f"{self.config.seed}:portal:{self.config.portal_id}"

    @property
    def default_portal(self) -> SandboxState:
        return next(iter(self.portals.values()))

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Change settings: this portal's own (``PORTAL_SETTINGS``) here, the rest in every portal.

        Raises ValueError for an unknown setting or one fixed at start.
        """
        if "extra_portal_ids" in changes:
            raise ValueError("extra_portal_ids: fixed when the sandbox starts (--portal-id)")
        new_id = changes.get("portal_id", self.config.portal_id)
        if new_id != self.config.portal_id and new_id in self.portals:
            raise ValueError(f"portal_id: the sandbox already serves portal {new_id}")
        own = {k: v for k, v in changes.items() if k in PORTAL_SETTINGS}
        shared = {k: v for k, v in changes.items() if k not in PORTAL_SETTINGS}
        for portal in self.portals.values():
            portal.config.update(shared)
        self.config.update(own)
        self._renumber()

    def _renumber(self) -> None:
        """Key ``portals`` by each portal's id again, after a portal_id change (a portal switch in tests).

        A new dict replaces the old one in every portal, so a request iterating the old one is unharmed.
        """
        current = list(self.portals.values())
        renumbered = {portal.config.portal_id: portal for portal in current}
        if list(renumbered) == list(self.portals):
            return
        for portal in current:
            portal.portals = renumbered
        current[0].config.extra_portal_ids = tuple(renumbered)[1:]

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
        if restore:
            # Shared settings must stay equal, so every portal goes back to its start.
            for portal in self.portals.values():
                with portal.lock:
                    portal.restore_config()
            self._renumber()
        with self.lock:
            self.config.update(options)
            self.seed_key = self._seed_key()
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
        """Stop webhook delivery; the default portal stops every portal's."""
        for portal in self.portals.values() if self.is_default else (self,):
            portal.webhooks.close()
