"""Client-side rate limiting, backoff and the circuit breaker, shared per portal.

HubSpot limits each installing portal, not each client object, so every ``HubSpotClient``
in the process that talks to one portal draws from the same ``PortalLimits``:

- ``burst``: a rolling window (110 requests per 10 s unless the ``X-HubSpot-RateLimit-*``
  headers say otherwise). It is a budget, not a mutex: any number of threads send at once
  while the window has room, and only wait once it is spent.
- ``search``: HubSpot's separate search limit, 5 per second. Search answers carry no
  rate-limit headers, so this budget is only ever our own count.
- ``daily``: the portal's daily request limit (``X-HubSpot-RateLimit-Daily`` and
  ``-Daily-Remaining``, sent to private apps, never to OAuth apps) and the share of it this
  app may spend (``CRM_DAILY_BUDGET``). It counts, it does not block: the sync asks
  ``DailyBudget.spent`` at each checkpoint and pauses there (crm.sync.pull).
- ``breaker``: after repeated 5xx answers, timeouts or dropped connections it opens and
  calls fail fast with ``CircuitOpen`` until a cool-down passes; one trial request then
  decides whether it closes again.
"""

from __future__ import annotations

import bisect
import datetime
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm.errors import CircuitOpen

DEFAULT_BURST = 110
DEFAULT_BURST_WINDOW_S = 10.0
DEFAULT_SEARCH = 5
DEFAULT_SEARCH_WINDOW_S = 1.0
# HubSpot's clock and ours tick at slightly different rates; a little slack absorbs that.
_WINDOW_SLACK = 0.02

Clock = Callable[[], float]


class RollingWindow:
    """At most ``limit`` requests within any ``window_s`` seconds, across threads.

    A request holds a slot from ``acquire`` (before sending) to ``release`` (its answer
    arrived, or it failed), and the slot stays counted for about one window after that.
    HubSpot counts a request somewhere between those two moments. Counted from the
    release, the window can never let a request land in HubSpot's previous window, but
    it spends a round trip of every slot: with a 1 s search window and 300 ms answers,
    nearly a third of the search budget. So a caller that says when it sent
    (``release(sent_at=...)``) frees the slot one window after the send plus a margin:
    how much the moment HubSpot counts can move between two requests, estimated as the
    spread of the last 64 round trips (95th percentile less the fastest: a rare stall
    should not tax every later request), never less than MIN_MARGIN_S and never later
    than one window after the release. Until _KNOWN round trips are in, the slot frees
    one window after the release. Every 429 (``pause``) adds a twentieth of the window
    to the margin for the rest of the process: HubSpot has said it was not enough.
    """

    MIN_MARGIN_S = 0.05
    _ROUND_TRIPS = 64
    _KNOWN = 8  # round trips seen before the spread is trusted

    def __init__(self, limit: int, window_s: float, *, clock: Clock = time.monotonic) -> None:
        self.limit = max(1, int(limit))
        self.window_s = float(window_s)
        self.clock = clock
        self._frees: list[float] = []  # when released slots stop counting, soonest first
        self._in_flight = 0
        self._paused_until = 0.0
        self._round_trips: deque[float] = deque(maxlen=self._ROUND_TRIPS)
        self._penalty = 0.0
        self._cond = threading.Condition()

    def acquire(self) -> float:
        """Take a slot, waiting while the window is full or paused; returns seconds waited."""
        started = time.monotonic()
        with self._cond:
            while True:
                now = self.clock()
                self._prune(now)
                if now < self._paused_until:
                    wait: float | None = self._paused_until - now
                elif self._in_flight + len(self._frees) < self.limit:
                    self._in_flight += 1
                    return time.monotonic() - started
                elif self._frees:
                    wait = self._frees[0] - now
                else:
                    wait = None  # every slot is in flight: the next release wakes us
                self._cond.wait(timeout=None if wait is None else max(wait, 0.001))

    def release(self, *, sent_at: float | None = None) -> None:
        """The request of an acquired slot is over (``sent_at`` on this window's clock)."""
        with self._cond:
            now = self.clock()
            self._in_flight = max(0, self._in_flight - 1)
            free = now + self._span()
            if sent_at is not None and sent_at <= now:
                self._round_trips.append(now - sent_at)
                if len(self._round_trips) >= self._KNOWN:
                    ordered = sorted(self._round_trips)
                    spread = ordered[int(len(ordered) * 0.95) - 1] - ordered[0]
                    margin = max(self.MIN_MARGIN_S, spread) + self._penalty
                    free = max(now, min(free, sent_at + self._span() + margin))
            bisect.insort(self._frees, free)
            self._cond.notify_all()

    def learn(
        self, *, limit: int | None = None, window_s: float | None = None, remaining: int | None = None
    ) -> None:
        """Adopt what HubSpot's rate-limit headers say about this budget.

        ``remaining`` lower than our own count means someone else (another process or app
        on the same portal) spends the budget too: the difference is booked as used now.
        """
        with self._cond:
            if limit and limit > 0:
                self.limit = int(limit)
            if window_s and window_s > 0:
                self.window_s = float(window_s)
            if remaining is not None and remaining >= 0:
                now = self.clock()
                self._prune(now)
                ours = self.limit - self._in_flight - len(self._frees)
                for _ in range(max(0, ours - int(remaining))):
                    bisect.insort(self._frees, now + self._span())
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (HubSpot said 429)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self.clock() + max(0.0, seconds))
            self._penalty = min(self.window_s, self._penalty + self.window_s / 20)

    def in_window(self) -> int:
        """Slots counted right now: in flight plus released within the window."""
        with self._cond:
            self._prune(self.clock())
            return self._in_flight + len(self._frees)

    def _span(self) -> float:
        return self.window_s * (1 + _WINDOW_SLACK)

    def _prune(self, now: float) -> None:
        frees = self._frees
        stale = bisect.bisect_right(frees, now)
        if stale:
            del frees[:stale]


class CircuitBreaker:
    """Stops calls to a failing HubSpot for a while instead of hammering it.

    The circuit opens when, among the last ``window`` outcomes, at least ``threshold``
    were failures and failures were the majority: a storm trips it, a few scattered
    errors in a busy parallel sync do not. Open, it refuses calls for ``cooldown_s``
    (doubling after each failed trial, up to ``max_cooldown_s``); then one trial request
    is let through, and its success closes the circuit.
    """

    def __init__(
        self,
        *,
        threshold: int = 5,
        window: int = 20,
        cooldown_s: float = 15.0,
        max_cooldown_s: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._outcomes: deque[bool] = deque(maxlen=max(window, threshold))
        self._opened_at: float | None = None
        self._current_cooldown = cooldown_s
        self._trial_started: float | None = None

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial_started is not None:
                return "half_open"
            return "open"

    def before_request(self) -> None:
        """Raise ``CircuitOpen`` unless a request may go out now."""
        with self._lock:
            if self._opened_at is None:
                return
            now = self._clock()
            reopen_at = self._opened_at + self._current_cooldown
            if now < reopen_at:
                failed = sum(1 for ok in self._outcomes if not ok)
                raise CircuitOpen(
                    f"HubSpot failed {failed} of the last {len(self._outcomes)} requests; not calling it "
                    f"for another {reopen_at - now:.0f} s",
                    retry_in=reopen_at - now,
                )
            # One trial at a time; a trial that never reported back expires after a cool-down.
            if self._trial_started is not None and now < self._trial_started + self._current_cooldown:
                raise CircuitOpen(
                    "HubSpot has been failing; waiting for a trial request to succeed",
                    retry_in=self._trial_started + self._current_cooldown - now,
                )
            self._trial_started = now

    def record_success(self) -> None:
        with self._lock:
            self._outcomes.append(True)
            if self._opened_at is None:
                return
            if self._trial_started is None:
                return  # a request sent before the circuit opened; only the trial decides
            self._outcomes.clear()
            self._opened_at = None
            self._trial_started = None
            self._current_cooldown = self.cooldown_s

    def record_failure(self) -> None:
        with self._lock:
            self._outcomes.append(False)
            now = self._clock()
            if self._trial_started is not None:
                self._current_cooldown = min(self._current_cooldown * 2, self.max_cooldown_s)
                self._opened_at = now
                self._trial_started = None
                return
            failed = sum(1 for ok in self._outcomes if not ok)
            if self._opened_at is None and failed >= self.threshold and failed * 2 > len(self._outcomes):
                self._opened_at = now


DEFAULT_DAILY_SHARE = 0.5


class DailyBudget:
    """The portal's daily request limit and what this app spent of it today; thread-safe.

    HubSpot counts every request of a portal (all its apps) against one daily limit that
    resets at midnight in the account's time zone (docs/JOURNAL_AND_LIMITS_API.md §6). This
    app may spend ``share`` of it, since other integrations draw from the same day. The
    limit comes from HubSpot's headers (``learn``); OAuth calls carry none, so then the
    configured limit (``CRM_DAILY_LIMIT``) stands in, and without one the budget is
    unknown and nothing is ever held back.

    ``used`` is this app's own count for ``day``: every request sent (search too, which
    reports no headers but counts), seeded from the cache at the start of a run
    (``seed``) so that runs of one day add up across processes. A new day starts it at
    zero: when the date in the account's time zone changes, or when HubSpot's remaining
    count jumps up by more than requests in flight could reorder (HubSpot's day turned).
    """

    def __init__(
        self,
        *,
        share: float = DEFAULT_DAILY_SHARE,
        configured_limit: int = 0,
        time_zone: str = "UTC",
        clock: Clock = time.time,
    ) -> None:
        self.share = share
        self.configured_limit = max(0, int(configured_limit))
        self.clock = clock
        self._tz: datetime.tzinfo = datetime.UTC
        self.time_zone = "UTC"
        self._lock = threading.Lock()
        self.day: str | None = None
        self.set_time_zone(time_zone)
        self.day = self._today()
        self.used = 0
        self.header_limit: int | None = None
        self.remaining: int | None = None
        self.refused_until: float | None = None

    def configure(self, *, share: float, configured_limit: int) -> None:
        with self._lock:
            self.share = share
            self.configured_limit = max(0, int(configured_limit))

    def set_time_zone(self, name: str | None) -> None:
        """Count days in the account's time zone (``account_info()["time_zone"]``); unknown names keep UTC."""
        if not name:
            return
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return
        with self._lock:
            # Requests counted today (under the zone used so far) were sent today in the
            # account's zone too: the moment is the same, only its date's name changes.
            # Between UTC's midnight and the account's the two dates differ, and rolling
            # would drop them from the count. A count of an earlier day still rolls over.
            current = self.day is not None and self.day == self._today()
            self._tz, self.time_zone = zone, name
            if current:
                self.day = self._today()

    def count(self) -> None:
        """One request went out."""
        with self._lock:
            self._roll()
            self._count()

    def take(self) -> bool:
        """Count one request if the budget has room (False, and nothing counted, if not):
        checking and counting at once, so threads sending together never overshoot."""
        with self._lock:
            if self._spent():
                return False
            self._count()
            return True

    def _count(self) -> None:
        self.used += 1
        if self.remaining is not None:
            self.remaining = max(0, self.remaining - 1)

    def learn(self, *, limit: int | None, remaining: int | None) -> None:
        """Adopt HubSpot's daily headers (either may be missing)."""
        with self._lock:
            self._roll()
            if limit is not None and limit > 0:
                self.header_limit = int(limit)
            if remaining is None or remaining < 0:
                return
            if self.remaining is not None and remaining > self.remaining + self._reorder_slack():
                self.used = 0  # HubSpot's day turned before ours did
                self.refused_until = None
            self.remaining = int(remaining)

    def refused(self) -> float:
        """HubSpot answered 429 DAILY: nothing is left until its midnight. Returns that moment."""
        with self._lock:
            self.remaining = 0
            self.refused_until = self.next_reset()
            return self.refused_until

    def seed(self, saved: dict[str, Any]) -> None:
        """Today's spend as an earlier run saved it (``snapshot()``); another day's is ignored.

        The limit and remaining count HubSpot reported come along, so a new process knows
        the budget is spent before its first request, not after.
        """
        with self._lock:
            self._roll()
            if saved.get("day") != self.day:
                return
            self.used = max(self.used, int(saved.get("used") or 0))
            if saved.get("source") == "headers" and not self.header_limit and saved.get("limit"):
                self.header_limit = int(saved["limit"])
            if self.remaining is None and saved.get("remaining") is not None:
                self.remaining = int(saved["remaining"])

    @property
    def limit(self) -> int | None:
        """The portal's daily limit: HubSpot's header, else the configured one, else None."""
        return self.header_limit or self.configured_limit or None

    @property
    def allowance(self) -> int | None:
        """Requests this app may send today (``share`` of the limit), None when unknown."""
        limit = self.limit
        return None if limit is None else math.floor(limit * self.share)

    def spent(self) -> bool:
        """Whether this app should send no more today: its share is used up, HubSpot has
        nothing left, or HubSpot refused with DAILY and its day has not turned."""
        with self._lock:
            return self._spent()

    def _spent(self) -> bool:
        self._roll()
        if self.refused_until is not None:
            if self.clock() < self.refused_until:
                return True
            self.refused_until = None
        allowance = self.allowance
        if allowance is not None and self.used >= allowance:
            return True
        return self.remaining is not None and self.remaining <= 0 and self.header_limit is not None

    def left(self) -> int | None:
        """Requests this app may still send today; None when the limit is unknown."""
        with self._lock:
            if self._spent():
                return 0
            allowance = self.allowance
            mine = None if allowance is None else allowance - self.used
            theirs = self.remaining if self.header_limit is not None else None
            known = [n for n in (mine, theirs) if n is not None]
            return max(0, min(known)) if known else None

    def next_reset(self) -> float:
        """The epoch second of the next midnight in the account's time zone."""
        now = datetime.datetime.fromtimestamp(self.clock(), self._tz)
        midnight = datetime.datetime.combine(
            now.date() + datetime.timedelta(days=1), datetime.time(), self._tz
        )
        return midnight.timestamp()

    def snapshot(self) -> dict[str, Any]:
        """What the Sync page and the run row show: limit, where it came from, spend, allowance."""
        with self._lock:
            self._roll()
            source = "headers" if self.header_limit else "configured" if self.configured_limit else "unknown"
            return {
                "day": self.day,
                "time_zone": self.time_zone,
                "limit": self.limit,
                "source": source,
                "share": self.share,
                "allowance": self.allowance,
                "used": self.used,
                "remaining": self.remaining,
                "resets_at": self.next_reset(),
            }

    def _today(self) -> str:
        return datetime.datetime.fromtimestamp(self.clock(), self._tz).strftime("%Y-%m-%d")

    def _roll(self) -> None:
        day = self._today()
        if day != self.day:
            self.day, self.used, self.remaining, self.refused_until = day, 0, None, None

    def _reorder_slack(self) -> int:
        # Answers to concurrent requests arrive out of order, so a remaining count may go up
        # by what was in flight (the client holds at most 32 connections) without a new day.
        limit = self.limit or 0
        return max(1, min(32, limit // 4))


@dataclass
class PortalLimits:
    """Everything requests to one portal share."""

    burst: RollingWindow = field(default_factory=lambda: RollingWindow(DEFAULT_BURST, DEFAULT_BURST_WINDOW_S))
    search: RollingWindow = field(
        default_factory=lambda: RollingWindow(DEFAULT_SEARCH, DEFAULT_SEARCH_WINDOW_S)
    )
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    daily: DailyBudget = field(default_factory=DailyBudget)

    def gauges(self) -> dict[str, Any]:
        """The three budgets right now, for the Sync page's gauges (plain numbers)."""
        return {
            "burst": {
                "used": self.burst.in_window(),
                "limit": self.burst.limit,
                "window_s": self.burst.window_s,
            },
            "search": {
                "used": self.search.in_window(),
                "limit": self.search.limit,
                "window_s": self.search.window_s,
            },
            "daily": self.daily.snapshot(),
        }


_registry: dict[str, PortalLimits] = {}
_registry_lock = threading.Lock()


def limits_for(portal_key: str) -> PortalLimits:
    """The process-wide limits of one portal (created on first use)."""
    with _registry_lock:
        limits = _registry.get(portal_key)
        if limits is None:
            limits = _registry[portal_key] = PortalLimits()
        return limits


def reset_limits() -> None:
    """Forget every portal's limits (tests start each case from a clean budget)."""
    with _registry_lock:
        _registry.clear()


def full_jitter(attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt)))
    return (rng or random).uniform(0.0, ceiling)
