"""Webhooks v2: registered through ``/api/v1/webhooks``, delivered with HTTP Basic auth.

Each event goes to every active webhook whose ``event_action``/``event_object`` match
(``*`` matches all) as one POST with ``{"meta": …, "data": …, "previous": …}``
(docs/PIPEDRIVE_API.md §7). Credentials set on the webhook travel as
``Authorization: Basic …``; there is no signature. A daemon thread delivers; a non-2xx
answer, a timeout or a refused connection is retried after each of
``config.webhook_retry_delays`` seconds, with ``meta.attempt`` counting up from 1.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import itertools
import json
import time
import uuid
from typing import Any

import httpx2

from crm.sandbox.delivery import DeliveryLoop
from crm.sandbox.pipedrive.config import PipedriveConfig
from crm.sandbox.pipedrive.models import v1_time

ACTIONS = ("create", "change", "delete", "*")
OBJECTS = ("activity", "deal", "note", "organization", "person", "pipeline", "product", "stage", "user", "*")
MAX_WEBHOOKS_PER_USER = 40
USER_AGENT = "Pipedrive Webhooks (crm-sandbox)"
MAX_DELIVERY_LOG = 2_000


@dataclasses.dataclass
class Webhook:
    id: int
    user_id: int
    subscription_url: str
    event_action: str
    event_object: str
    http_auth_user: str | None
    http_auth_password: str | None
    version: str
    add_ts: int
    is_active: bool = True
    last_http_status: int | None = None
    last_delivery_ts: int | None = None

    def matches(self, action: str, entity: str) -> bool:
        return self.is_active and self.event_action in ("*", action) and self.event_object in ("*", entity)

    def describe(self, company_id: int) -> dict[str, Any]:
        return {
            "id": self.id, "company_id": company_id, "owner_id": self.user_id, "user_id": self.user_id,
            "event_action": self.event_action, "event_object": self.event_object,
            "subscription_url": self.subscription_url, "version": self.version, "is_active": int(self.is_active),
            "add_time": v1_time(self.add_ts), "remove_time": None, "type": "general",
            # The password is never echoed back (UNCERTAIN whether Pipedrive does); deliveries still send it.
            "http_auth_user": self.http_auth_user, "http_auth_password": "********" if self.http_auth_password else None,
            "remove_reason": None, "last_delivery_time": v1_time(self.last_delivery_ts) if self.last_delivery_ts else None,
            "last_http_status": self.last_http_status, "admin_id": self.user_id,
        }  # fmt: skip


@dataclasses.dataclass
class _Delivery:
    webhook: Webhook
    body: dict[str, Any]
    generation: int
    attempt: int = 1


class WebhookHub(DeliveryLoop[_Delivery]):
    """The registered webhooks and the delivery thread."""

    def __init__(self, config: PipedriveConfig) -> None:
        super().__init__(
            thread_name="pipedrive-sandbox-webhooks",
            join_timeout_s=lambda: float(config.webhook_timeout_s),
            log_size=MAX_DELIVERY_LOG,
        )
        self.config = config
        self.webhooks: dict[int, Webhook] = {}
        self._ids = itertools.count(1)
        self._queue: collections.deque[_Delivery] = collections.deque()

    # --- registration ------------------------------------------------------------------

    def register(self, user_id: int, url: str, action: str, entity: str, auth_user: str | None,
                 auth_password: str | None, version: str, now: int) -> Webhook | None:  # fmt: skip
        """A new webhook, or None when the user already has the maximum."""
        with self._cond:
            if sum(1 for w in self.webhooks.values() if w.user_id == user_id) >= MAX_WEBHOOKS_PER_USER:
                return None
            hook = Webhook(
                next(self._ids), user_id, url, action, entity, auth_user, auth_password, version, now
            )
            self.webhooks[hook.id] = hook
            return hook

    def remove(self, webhook_id: int) -> bool:
        with self._cond:
            return self.webhooks.pop(webhook_id, None) is not None

    def listed(self) -> list[Webhook]:
        with self._cond:
            return list(self.webhooks.values())

    # --- delivery ----------------------------------------------------------------------

    def emit(self, action: str, entity: str, entity_id: int, data: dict[str, Any] | None,
             previous: dict[str, Any] | None, *, user_id: int, change_source: str) -> None:  # fmt: skip
        """Queue one event for every matching webhook; never blocks on the network."""
        with self._cond:
            if self._closed:
                return
            targets = [w for w in self.webhooks.values() if w.matches(action, entity)]
            for hook in targets:
                meta = {
                    "action": action, "entity": entity, "entity_id": str(entity_id), "id": str(uuid.uuid4()),
                    "company_id": str(self.config.company_id), "user_id": str(user_id),
                    "webhook_id": str(hook.id), "webhook_owner_id": str(hook.user_id),
                    "permitted_user_ids": [str(hook.user_id)], "attempt": 1,
                    "host": f"{self.config.company_domain}.pipedrive.com", "timestamp": int(time.time()),
                    "change_source": change_source, "is_bulk_edit": False, "type": "general",
                    "correlation_id": str(uuid.uuid4()), "version": "2.0",
                }  # fmt: skip
                body = {"meta": meta, "data": data, "previous": previous}
                self._queue.append(_Delivery(hook, body, self._generation))
            if targets:
                self._ensure_thread()
                self._cond.notify_all()

    def status(self) -> dict[str, int]:
        with self._cond:
            return {
                "queued": len(self._queue),
                "scheduled_retries": len(self._retries),
                "in_flight": self._in_flight,
            }

    def reset(self) -> None:
        """Forget webhooks, queued and scheduled deliveries and the log."""
        with self._cond:
            self.webhooks.clear()
            self._ids = itertools.count(1)
            self._queue.clear()
            self._reset_locked()

    def _has_work(self) -> bool:
        return bool(self._queue) or super()._has_work()

    def _take_due(self, now: float) -> list[_Delivery]:
        """One delivery at a time: queued ones first, then retries whose time has come."""
        if self._queue:
            return [self._queue.popleft()]
        retry = self._pop_due_retry(now)
        return [retry] if retry is not None else []

    def _next_wake(self, now: float) -> float | None:
        first_retry = self._first_retry_at()
        return max(0.0, first_retry - now) if first_retry is not None else None

    def _deliver(self, client: httpx2.Client, delivery: _Delivery) -> None:
        hook = delivery.webhook
        body = {**delivery.body, "meta": {**delivery.body["meta"], "attempt": delivery.attempt}}
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if hook.http_auth_user is not None or hook.http_auth_password is not None:
            pair = f"{hook.http_auth_user or ''}:{hook.http_auth_password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        status: int | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            response = client.post(
                hook.subscription_url, content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers=headers, timeout=float(self.config.webhook_timeout_s),
            )  # fmt: skip
            status = response.status_code
        except httpx2.TimeoutException:
            error = "timeout"
        except Exception as exc:  # noqa: BLE001 - a bad URL must not kill the delivery thread
            # The type is enough; the exception text may repeat the URL and its credentials.
            error = type(exc).__name__
        ok = status is not None and 200 <= status < 300
        delays = self.config.webhook_retry_delays
        retry_in = None if ok or delivery.attempt > len(delays) else float(delays[delivery.attempt - 1])
        hook.last_http_status = status
        hook.last_delivery_ts = int(time.time())
        entry = {
            "time": time.time(), "webhook_id": hook.id, "url": hook.subscription_url, "status": status,
            "error": error, "attempt": delivery.attempt, "event": f"{body['meta']['action']}.{body['meta']['entity']}",
            "entity_id": body["meta"]["entity_id"], "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "retry_in": retry_in,
        }  # fmt: skip
        if self._finish(delivery.generation, entry, retry_in, delivery):
            delivery.attempt += 1
