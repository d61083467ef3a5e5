"""Webhook delivery from the sandbox portal, the way HubSpot delivers (HUBSPOT_API.md §9).

CRM handlers call ``WebhookSender.emit([...])`` with bare events (subscriptionType, objectId,
changeSource, property or association fields). The sender fills eventId, subscriptionId,
portalId, appId, occurredAt and attemptNumber, and a daemon thread POSTs them to
``config.webhook_url``:

- batched: events emitted within ``config.webhook_batch_ms`` go in one JSON array, at most
  100 per request;
- signed with the app's client secret: v1 (``X-HubSpot-Signature``) and v3
  (``X-HubSpot-Signature-v3`` + ``X-HubSpot-Request-Timestamp``), both sent on every request;
- retried: connection errors, timeouts, 5xx and 429 (after ``Retry-After``) up to
  ``len(config.webhook_retry_delays)`` more times with ``attemptNumber`` counting up; 400,
  401, 403, 404 and 405 never, unless ``config.webhook_retry_all_4xx``.

Each portal of a sandbox has its own sender (queue, retries, delivery log), all posting to
the one ``webhook_url`` with their portal's ``portalId``.

Not modelled: HubSpot's per-account concurrency (10 in flight; the sandbox sends one request
at a time), subscriptions and their management API (every event type is delivered), and
duplicate deliveries of successful batches.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import email.utils
import hashlib
import hmac
import itertools
import json
import random
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import httpx2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm.sandbox.config import SandboxConfig
from crm.sandbox.delivery import DeliveryLoop
from crm.sandbox.wire import PORTAL_KEY

MAX_EVENTS_PER_REQUEST = 100
MAX_RETRY_AFTER_S = 3600.0
NEVER_RETRIED = frozenset({400, 401, 403, 404, 405})
USER_AGENT = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - crm-sandbox webhooks"
# Bounds so a dead receiver cannot make a long-running sandbox grow without limit.
MAX_QUEUED_EVENTS = 100_000
MAX_SCHEDULED_RETRIES = 2_000
MAX_DELIVERY_LOG = 2_000

_OBJECTS = ("contact", "company", "deal", "ticket", "product", "line_item", "conversation", "object")
_KINDS = (
    "creation", "deletion", "propertyChange", "associationChange", "restore", "merge", "privacyDeletion",
)  # fmt: skip
# HubSpot decodes these escapes in the URL before computing v3 (validating-requests docs).
_V3_DECODES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_V3_ESCAPE = re.compile("|".join(_V3_DECODES), re.IGNORECASE)


# --- signatures (pure) ---------------------------------------------------------------------


def decode_v3_uri(uri: str) -> str:
    """The URI as HubSpot hashes it for v3: the listed percent-escapes decoded, nothing else."""
    return _V3_ESCAPE.sub(lambda m: _V3_DECODES[m.group(0).upper()], uri)


def sign_v1(client_secret: str, body: bytes) -> str:
    """v1: hex SHA-256 of secret + body."""
    return hashlib.sha256(client_secret.encode("utf-8") + body).hexdigest()


def sign_v2(client_secret: str, method: str, uri: str, body: bytes) -> str:
    """v2: hex SHA-256 of secret + method + URI + body."""
    return hashlib.sha256((client_secret + method + uri).encode("utf-8") + body).hexdigest()


def sign_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    """v3: base64 HMAC-SHA256 keyed by the secret over method + decoded URI + body + timestamp."""
    message = (method + decode_v3_uri(uri)).encode("utf-8") + body + str(timestamp_ms).encode("ascii")
    digest = hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def compute_signatures(
    client_secret: str, *, method: str, uri: str, body: bytes, timestamp_ms: int | str
) -> dict[str, str]:
    """All three signature versions of one request, keyed ``v1``, ``v2``, ``v3``."""
    return {
        "v1": sign_v1(client_secret, body),
        "v2": sign_v2(client_secret, method, uri, body),
        "v3": sign_v3(client_secret, method, uri, body, timestamp_ms),
    }


def subscription_id(subscription_type: str) -> int:
    """A fixed subscription id per event type, the same in every sandbox run."""
    obj, _, kind = subscription_type.partition(".")
    if obj in _OBJECTS and kind in _KINDS:
        return 1000 + 100 * _OBJECTS.index(obj) + _KINDS.index(kind)
    return 100_000 + zlib.crc32(subscription_type.encode("utf-8")) % 100_000


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


# --- sender --------------------------------------------------------------------------------


@dataclasses.dataclass
class _Batch:
    url: str
    events: list[dict[str, Any]]
    generation: int
    attempt: int = 0


class WebhookSender(DeliveryLoop[_Batch]):
    """Queues events and delivers them in a background daemon thread; never blocks ``emit``."""

    def __init__(self, config: SandboxConfig):
        super().__init__(
            thread_name="sandbox-webhooks",
            join_timeout_s=lambda: float(config.webhook_timeout_s),
            log_size=MAX_DELIVERY_LOG,
            max_scheduled_retries=MAX_SCHEDULED_RETRIES,
        )
        self.config = config
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._first_pending_at = 0.0
        self._dropped = 0
        # Start from the clock in microseconds, so ids keep rising across resets and restarts
        # and a receiver that dedupes on (portalId, subscriptionId, eventId) never drops a new event.
        self._event_ids = itertools.count(time.time_ns() // 1000)
        # Called with every emitted batch of bare events, webhook URL or not (the journal).
        self.observers: list[Callable[[list[dict[str, Any]]], None]] = []

    # --- public API ---------------------------------------------------------------------

    def emit(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Queue events for delivery; a no-op when no webhook URL is configured.

        Each event needs ``subscriptionType`` and ``objectId``; the rest is filled in.

        Raises:
            ValueError: an event has no ``subscriptionType``.
        """
        batch = [dict(event) for event in events]
        for observer in self.observers:
            observer(batch)
        if not self.config.webhook_url or self._closed:
            return
        now_ms = int(time.time() * 1000)
        filled = [self._fill(event, now_ms) for event in batch]
        if not filled:
            return
        with self._cond:
            if not self._pending:
                self._first_pending_at = time.monotonic()
            for event in filled:
                if len(self._pending) >= MAX_QUEUED_EVENTS:
                    self._pending.popleft()
                    self._dropped += 1
                self._pending.append(event)
            self._ensure_thread()
            self._cond.notify_all()

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt so far, oldest first.

        Each has ``time`` (epoch s), ``url``, ``status`` (or None), ``error`` (or None),
        ``attempt``, ``event_count``, ``event_ids``, ``subscription_types``,
        ``duration_ms`` and ``retry_in`` (seconds until the next attempt, None if final).
        """
        return super().deliveries()

    def status(self) -> dict[str, Any]:
        """Queue figures: events waiting, retries scheduled, events dropped for space."""
        with self._cond:
            return {
                "queued": len(self._pending),
                "scheduled_retries": len(self._retries),
                "in_flight": self._in_flight,
                "dropped": self._dropped,
            }

    def reset(self) -> None:
        """Drop queued events, scheduled retries and the delivery log; in-flight results are ignored."""
        with self._cond:
            self._pending.clear()
            self._dropped = 0
            self._reset_locked()

    # --- internals ----------------------------------------------------------------------

    def _has_work(self) -> bool:
        return bool(self._pending) or super()._has_work()

    def _fill(self, event: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        subscription_type = event.get("subscriptionType")
        if not subscription_type:
            raise ValueError("a webhook event needs a subscriptionType")
        cfg = self.config
        filled: dict[str, Any] = {
            "eventId": next(self._event_ids),
            "subscriptionId": subscription_id(str(subscription_type)),
            "portalId": cfg.portal_id,
            "appId": cfg.app_id,
            "occurredAt": now_ms,
            "subscriptionType": subscription_type,
            "attemptNumber": 0,
        }
        filled.update(event)
        for key in ("objectId", "fromObjectId", "toObjectId"):
            if isinstance(filled.get(key), str) and filled[key].isdigit():
                filled[key] = int(filled[key])
        filled.setdefault("changeSource", "API")
        if str(subscription_type).endswith(".creation"):
            filled.setdefault("changeFlag", "NEW")
        if "propertyValue" in filled and filled["propertyValue"] is not None:
            filled["propertyValue"] = str(filled["propertyValue"])
        return filled

    def _batch_delay(self) -> float:
        return float(self.config.webhook_batch_ms) / 1000.0

    def _retry_delays(self) -> tuple[float, ...]:
        return tuple(float(d) for d in self.config.webhook_retry_delays)

    def _take_due(self, now: float) -> list[_Batch]:
        """Batches to send now: settled pending events (chunks of 100) and due retries."""
        due: list[_Batch] = []
        settled = now - self._first_pending_at >= self._batch_delay()
        if self._pending and (settled or len(self._pending) >= MAX_EVENTS_PER_REQUEST):
            url = self.config.webhook_url
            events = list(self._pending)
            self._pending.clear()
            if url:
                for start in range(0, len(events), MAX_EVENTS_PER_REQUEST):
                    chunk = events[start : start + MAX_EVENTS_PER_REQUEST]
                    due.append(_Batch(url=url, events=chunk, generation=self._generation))
        retries = self._due_retries(now)
        # Clearing the webhook URL stops retries too, as removing a target does at HubSpot.
        if self.config.webhook_url:
            due.extend(retries)
        return due

    def _next_wake(self, now: float) -> float | None:
        wakes = []
        if self._pending:
            wakes.append(self._first_pending_at + self._batch_delay())
        first_retry = self._first_retry_at()
        if first_retry is not None:
            wakes.append(first_retry)
        return max(0.0, min(wakes) - now) if wakes else None

    def _deliver(self, client: httpx2.Client, batch: _Batch) -> None:
        cfg = self.config
        events = [{**event, "attemptNumber": batch.attempt} for event in batch.events]
        body = json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        timestamp_ms = int(time.time() * 1000)
        signatures = compute_signatures(
            cfg.client_secret, method="POST", uri=batch.url, body=body, timestamp_ms=timestamp_ms
        )
        timeout = float(cfg.webhook_timeout_s)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-HubSpot-Signature-Version": "v1",
            "X-HubSpot-Signature": signatures["v1"],
            "X-HubSpot-Signature-v3": signatures["v3"],
            "X-HubSpot-Request-Timestamp": str(timestamp_ms),
            "X-HubSpot-Timeout-Millis": str(int(timeout * 1000)),
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            response = client.post(batch.url, content=body, headers=headers, timeout=timeout)
            status = response.status_code
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
        except httpx2.TimeoutException:
            error = "timeout"
        except httpx2.HTTPError as exc:
            # The exception text may repeat the URL; the type is enough to tell what went wrong.
            error = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a bad URL must not kill the delivery thread
            error = type(exc).__name__
        delay = self._retry_delay(batch.attempt, status, retry_after)
        record = {
            "time": time.time(),
            "url": batch.url,
            "status": status,
            "error": error,
            "attempt": batch.attempt,
            "event_count": len(events),
            "event_ids": [event["eventId"] for event in events],
            "subscription_types": sorted({str(event["subscriptionType"]) for event in events}),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "retry_in": delay,
        }
        if self._finish(batch.generation, record, delay, batch):
            batch.attempt += 1

    def _retry_delay(self, attempt: int, status: int | None, retry_after: float | None) -> float | None:
        """Seconds until the next attempt, or None when this attempt was final."""
        if status is not None and 200 <= status < 300:
            return None
        if status in NEVER_RETRIED and not self.config.webhook_retry_all_4xx:
            return None
        delays = self._retry_delays()
        if attempt >= len(delays):
            return None
        if status == 429 and retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        # HubSpot randomises its delays; a little jitter keeps receivers honest about order.
        return delays[attempt] * random.uniform(1.0, 1.2)


# --- admin route ---------------------------------------------------------------------------


class _Portal(Protocol):
    webhooks: WebhookSender


class _State(_Portal, Protocol):
    @property
    def portals(self) -> Mapping[int, _Portal]: ...


def routes(state: _State) -> list[Route]:
    """``GET /_sandbox/webhooks`` (deliveries and queue) and ``POST /_sandbox/webhooks/flush``.

    Each portal has its own sender: ``?portal_id=`` (the gate's pick) names it, else the default.
    """

    def sender_of(request: Request) -> WebhookSender:
        picked: _Portal = request.scope.get("state", {}).get(PORTAL_KEY) or state
        return picked.webhooks

    async def list_deliveries(request: Request) -> Response:
        sender = sender_of(request)
        return JSONResponse({"deliveries": sender.deliveries(), **sender.status()})

    async def flush_deliveries(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            timeout = float(body.get("timeout", 10.0)) if isinstance(body, dict) else 10.0
        except (ValueError, TypeError):
            body = {
                "status": "error",
                "message": 'send {"timeout": seconds}',
                "correlationId": str(uuid.uuid4()),
                "category": "VALIDATION_ERROR",
            }
            return JSONResponse(body, status_code=400)
        sender = sender_of(request)
        # flush() blocks, so it runs off the event loop.
        flushed = await run_in_threadpool(sender.flush, min(max(timeout, 0.0), 60.0))
        return JSONResponse({"flushed": flushed, **sender.status()})

    return [
        Route("/_sandbox/webhooks", list_deliveries, methods=["GET"]),
        Route("/_sandbox/webhooks/flush", flush_deliveries, methods=["POST"]),
    ]
