"""Rate limits and injected faults.

- Burst: a rolling window per portal (``burst_limit`` requests per ``burst_window_s``,
  HubSpot's 110 per 10 s), reported in ``X-HubSpot-RateLimit-*`` headers.
- Search: its own ``search_limit`` per second, exempt from the burst window, no headers.
- Faults: "fail next" rules set through the admin API, then random faults drawn per
  request from ``config.faults`` with a generator seeded from ``config.seed``.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import random
import threading
import time

from crm.sandbox.config import FAULT_KINDS, SandboxConfig


class RollingWindow:
    """Counts accepted requests over the last ``window`` seconds."""

    def __init__(self) -> None:
        self._hits: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self, limit: int, window: float, now: float | None = None) -> tuple[bool, int, float]:
        """Take one slot: (allowed, remaining after this request, seconds until a slot frees)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._hits and self._hits[0] <= now - window:
                self._hits.popleft()
            if len(self._hits) >= limit:
                wait = self._hits[0] + window - now if self._hits else window
                return False, 0, max(wait, 0.0)
            self._hits.append(now)
            return True, max(limit - len(self._hits), 0), 0.0

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


class Limits:
    """The portal's burst and search budgets."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.burst = RollingWindow()
        self.search = RollingWindow()

    def take_burst(self) -> tuple[bool, int, float]:
        return self.burst.acquire(max(self.config.burst_limit, 0), max(self.config.burst_window_s, 0.001))

    def take_search(self) -> tuple[bool, int, float]:
        return self.search.acquire(max(self.config.search_limit, 0), 1.0)

    def reset(self) -> None:
        self.burst.reset()
        self.search.reset()


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, at least 1, as HTTP's Retry-After wants them."""
    return str(max(1, math.ceil(wait_s)))


@dataclasses.dataclass
class FailRule:
    path: str
    status: int | str
    remaining: int
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path) and (self.method is None or self.method.upper() == method)


class Faults:
    """Decides, per CRM request, whether to answer with a fault instead."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.rules: list[FailRule] = []
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def add_rule(self, rule: FailRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self._rng = random.Random(self.config.seed)

    def pick(self, method: str, path: str) -> str | None:
        """The fault for this request ("429", "500", "502", "503", "slow", "drop") or None."""
        with self._lock:
            for rule in self.rules:
                if rule.remaining > 0 and rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self.rules.remove(rule)
                    return str(rule.status)
            rates = self.config.faults
            if not rates:
                return None
            draw = self._rng.random()
            for kind in FAULT_KINDS:
                rate = rates.get(kind, 0.0)
                if draw < rate:
                    return kind
                draw -= rate
            return None
