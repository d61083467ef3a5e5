"""The transport under every HubSpot call: one shared httpx2 client, limits, token, retries.

One request goes through the same steps whatever it is:

    circuit breaker -> rate budget (burst, or search) -> bearer token -> send (timeout)
      -> 2xx/207: learn rate-limit headers, return
      -> 401: one refresh (single-flight, in the TokenSource), one retry
      -> 429: honour Retry-After (else backoff with full jitter), pause the shared budget, retry
              (429 DAILY: the portal's day is spent; raise DailyLimitReached, never retry)
      -> 5xx, 423, 477, timeout, dropped connection: backoff with full jitter, retry if safe
      -> other 4xx: raise the crm.errors type (ValidationFailed names the fields)

"If safe" means: reads, search, batch update, upsert and archive are retried; batch create
is only retried when HubSpot cannot have acted on it (a 429, or a connection that never
opened), because a create that timed out may have happened and would be duplicated.

Cut from the client because it changes for reasons of its own (HubSpot's rate-limit
headers and policies, retry rules, httpx2), never because one API area changed; the area
modules (``paging``, ``batches``, ``search``, ``associations``, ``metadata``,
``conversations``) only build requests and read answers through ``Transport.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import quote

import httpx2

from crm import tls
from crm.config import Settings
from crm.errors import (
    DailyBudgetSpent,
    DailyLimitReached,
    HubSpotError,
    NeedsReconnect,
    RateLimited,
    Unreachable,
)
from crm.hubspot.errors import error_from_response, retry_after_seconds
from crm.hubspot.limits import PortalLimits, full_jitter, limits_for
from crm.hubspot.models import ClientStats, TokenSource
from crm.hubspot.paths import PATHS

log = logging.getLogger("crm.hubspot")

MAX_URL_LENGTH = 8_000
RETRY_AFTER_CAP_S = 60.0
BACKOFF_CAP_S = 30.0
LOCKED_WAIT_S = 2.0  # HubSpot's record locks (423) last 2 s
RETRYABLE_STATUS = frozenset({423, 477, 500, 502, 503, 504, 521, 522, 523, 524})
DAILY_POLICY = "DAILY"

Retry = Literal["safe", "create"]


class TransportOptions(TypedDict, total=False):
    """How requests are sent: the keyword arguments of ``Transport`` and of ``HubSpotClient``,
    which hands them on (written once, so the facade and the transport cannot drift)."""

    base_url: str | None  # overrides settings.base_url
    transport: httpx2.BaseTransport | None  # an httpx2 transport (tests)
    timeout: float | None  # seconds per request (connect, read, write, pool); default settings.http_timeout
    max_retries: int  # retries per call after the first attempt; default 6
    backoff_base: float  # first backoff step in seconds for 5xx and timeouts; default 0.5
    limits: PortalLimits | None  # the shared budgets and breaker; default the portal's process-wide ones


class Transport:
    """Sends HubSpot requests within the portal's limits; thread-safe, one per client.

    Args: ``settings`` (where HubSpot is, the default timeout), ``tokens`` (the bearer tokens;
    its ``portal_key`` picks the shared rate limiter), and ``TransportOptions``.
    """

    def __init__(self, settings: Settings, tokens: TokenSource, **options: Unpack[TransportOptions]) -> None:
        self.settings = settings
        self.tokens = tokens
        self.base_url = (options.get("base_url") or settings.base_url).rstrip("/")
        self.timeout = float(options.get("timeout") or settings.http_timeout)
        self.max_retries = max(0, int(options.get("max_retries", 6)))
        self.backoff_base = options.get("backoff_base", 0.5)
        self.limits = options.get("limits") or limits_for(tokens.portal_key)
        self.limits.daily.configure(share=settings.daily_budget, configured_limit=settings.daily_limit)
        # Set (by a sync) to hold every request within the daily budget: the one that would
        # exceed it raises DailyBudgetSpent instead of going out. Off, requests only count.
        self.within_daily_budget = False
        self.stats = ClientStats()
        self.http = httpx2.Client(
            base_url=self.base_url,
            transport=options.get("transport"),
            timeout=httpx2.Timeout(self.timeout),
            limits=httpx2.Limits(max_connections=32, max_keepalive_connections=16),
            headers={"Accept": "application/json", "User-Agent": "crm-dashboard/1"},
            follow_redirects=False,
            verify=tls.context(),
        )

    def close(self) -> None:
        self.http.close()

    def fit_properties(
        self, path: str, params: dict[str, str], properties: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """Split properties into those that fit in the URL and the rest.

        Long ``properties`` lists (hundreds of custom properties) would overflow the URL of
        list and get calls (HubSpot answers 414); the caller fetches the rest by POST body.
        """
        names = list(dict.fromkeys(p for p in properties if p))
        if not names:
            return [], []
        url = self.http.build_request("GET", path, params=params).url
        length = len(str(url)) + len("&properties=")
        fitted: list[str] = []
        for index, name in enumerate(names):
            cost = len(quote(name, safe="")) + (3 if fitted else 0)  # "," travels as %2C
            if length + cost > MAX_URL_LENGTH:
                return fitted, names[index:]
            fitted.append(name)
            length += cost
        return fitted, []

    def json(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        kind: str,
        retry: Retry = "safe",
    ) -> dict[str, Any]:
        response = self.send(method, template, path, params=params, json=json, kind=kind, retry=retry)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise HubSpotError(
                f"HubSpot answered {PATHS[template]} with something that is not JSON",
                status_code=response.status_code,
                correlation_id=response.headers.get("x-hubspot-correlation-id"),
            ) from None
        return data if isinstance(data, dict) else {"results": data}

    def send(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        kind: str,
        retry: Retry = "safe",
    ) -> httpx2.Response:
        """Send with limits, token, retries and error mapping; returns a 2xx response."""
        label = PATHS[template]
        budget = self.limits.search if kind == "search" else self.limits.burst
        breaker = self.limits.breaker
        refreshed: str | None = None
        attempt = 0
        while True:
            # Asked per attempt: a call that waited out a long backoff may need a fresh token.
            token = refreshed or self.tokens.access_token()
            breaker.before_request()
            budget.acquire()
            if not self._take_daily():
                budget.release()
                daily = self.limits.daily.snapshot()
                raise DailyBudgetSpent(
                    f"This app's share of the daily request limit is spent ({daily['used']:,} requests "
                    f"today); it renews at {_clock_time(daily['resets_at'])} (midnight, {daily['time_zone']})",
                    resume_at=float(daily["resets_at"]),
                )
            self.stats.count_request(kind)
            started = time.monotonic()
            sent_at = budget.clock()
            failure: httpx2.TransportError | None = None
            try:
                response = self.http.request(
                    method, path, params=params, json=json, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx2.TransportError as exc:
                failure = exc
            finally:
                budget.release(sent_at=sent_at)
            if failure is not None:
                breaker.record_failure()
                elapsed = (time.monotonic() - started) * 1000
                unreachable = _unreachable(failure, method, label, self.timeout)
                never_sent = isinstance(
                    failure, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
                )
                may_retry = retry == "safe" or never_sent
                log.debug(
                    "%s %s -> %s after %.0f ms (attempt %d)",
                    method,
                    label,
                    type(failure).__name__,
                    elapsed,
                    attempt + 1,
                )
                if not may_retry or attempt >= self.max_retries:
                    raise unreachable from failure
                self._wait(
                    full_jitter(attempt, base_s=self.backoff_base, cap_s=BACKOFF_CAP_S),
                    attempt,
                    rate_limited=False,
                )
                attempt += 1
                continue

            elapsed = (time.monotonic() - started) * 1000
            status = response.status_code
            log.debug("%s %s -> %d in %.0f ms (attempt %d)", method, label, status, elapsed, attempt + 1)
            if kind != "search":
                # A 429's "Remaining: 0" says nothing about when room returns; Retry-After does.
                self._learn(response.headers, remaining=status != 429)
            self._learn_daily(response.headers)

            if status < 300:
                breaker.record_success()
                return response
            body = _body(response)
            if status == 401:
                breaker.record_success()
                if refreshed:
                    raise NeedsReconnect("HubSpot refused the access token even after refreshing it")
                refreshed = self.tokens.refresh_after_401(token)
                continue
            if status == 429:
                breaker.record_success()
                error = error_from_response(status, body, response.headers)
                if isinstance(body, dict) and body.get("policyName") == DAILY_POLICY:
                    self.stats.count_rate_limited()
                    resume_at = self.limits.daily.refused()
                    raise DailyLimitReached(
                        f"HubSpot's daily request limit for this portal is spent; it resets at "
                        f"{_clock_time(resume_at)} (midnight, {self.limits.daily.time_zone})",
                        resume_at=resume_at,
                        retry_after=max(0.0, resume_at - time.time()),
                        status_code=429,
                        category=error.category,
                        correlation_id=error.correlation_id,
                        body=error.body,
                    )
                wait = self._rate_limit_wait(response, kind, attempt)
                budget.pause(wait)
                if attempt >= self.max_retries:
                    self.stats.count_rate_limited()
                    assert isinstance(error, RateLimited)
                    raise error
                self._wait(wait, attempt, rate_limited=True)
                attempt += 1
                continue
            if status in RETRYABLE_STATUS or status >= 500:
                breaker.record_failure()
                error = error_from_response(status, body, response.headers)
                if retry != "safe" or attempt >= self.max_retries:
                    raise error
                wait = full_jitter(attempt, base_s=self.backoff_base, cap_s=BACKOFF_CAP_S)
                hinted = retry_after_seconds(response.headers)
                if hinted is not None:
                    wait = min(hinted, RETRY_AFTER_CAP_S)
                if status == 423:
                    wait = max(wait, LOCKED_WAIT_S)
                self._wait(wait, attempt, rate_limited=False)
                attempt += 1
                continue
            breaker.record_success()
            raise error_from_response(status, body, response.headers)

    def _rate_limit_wait(self, response: httpx2.Response, kind: str, attempt: int) -> float:
        hinted = retry_after_seconds(response.headers)
        if hinted is not None:
            return min(hinted, RETRY_AFTER_CAP_S)
        budget = self.limits.search if kind == "search" else self.limits.burst
        # Without Retry-After, step in tenths of the window HubSpot counts in.
        return full_jitter(attempt, base_s=budget.window_s / 10, cap_s=budget.window_s)

    def _wait(self, seconds: float, attempt: int, *, rate_limited: bool) -> None:
        self.stats.count_retry(rate_limited=rate_limited)
        log.debug("retry %d in %.2f s%s", attempt + 1, seconds, " (rate limited)" if rate_limited else "")
        if seconds > 0:
            time.sleep(seconds)

    def _learn(self, headers: httpx2.Headers, *, remaining: bool = True) -> None:
        limit = _int_header(headers, "x-hubspot-ratelimit-max")
        left = _int_header(headers, "x-hubspot-ratelimit-remaining") if remaining else None
        interval = _int_header(headers, "x-hubspot-ratelimit-interval-milliseconds")
        if limit is None and left is None:
            return
        self.limits.burst.learn(limit=limit, window_s=interval / 1000 if interval else None, remaining=left)

    def _take_daily(self) -> bool:
        if self.within_daily_budget:
            return self.limits.daily.take()
        self.limits.daily.count()
        return True

    def _learn_daily(self, headers: httpx2.Headers) -> None:
        limit = _int_header(headers, "x-hubspot-ratelimit-daily")
        left = _int_header(headers, "x-hubspot-ratelimit-daily-remaining")
        if limit is not None or left is not None:
            self.limits.daily.learn(limit=limit, remaining=left)


def _clock_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int_header(headers: httpx2.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _unreachable(exc: httpx2.TransportError, method: str, label: str, timeout: float) -> Unreachable:
    if isinstance(exc, httpx2.TimeoutException):
        return Unreachable(f"HubSpot did not answer {method} {label} within {timeout:g} s")
    if isinstance(exc, httpx2.ConnectError):
        return Unreachable(f"Could not connect to HubSpot for {method} {label}")
    return Unreachable(f"HubSpot dropped the connection during {method} {label} ({type(exc).__name__})")
