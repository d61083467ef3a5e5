"""POST /hubspot/webhook and /pipedrive/webhook: take a delivery, answer at once, process later.

Answers: 204 accepted (new or duplicate events), 413 body over 1 MiB (refused before it
is read in full), 401 failed the timestamp or signature check, 400 a signed body that is
not an event array or has no event for a connected portal, 503 anything on our side
(settings, cache), because HubSpot retries 5xx but drops most 4xx for good. One route
serves every connection: events go to the connection of their ``portalId``.

The 401 body is the same for every failed check: it must not tell a stranger whether a
secret or a public URL is configured, or which check failed. The reason goes to the
in-memory refusal counts and their once-a-minute log line.

Pipedrive's route answers the same way; its deliveries name their company, and the
credentials checked are those of that company's connection (``pipedrive_webhook``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from crm import webhooks
from crm.config import Settings
from crm.errors import WebhookRejected

log = logging.getLogger(__name__)

_STATUS = {"too_large": 413, "malformed": 400, "unknown_portal": 400, "unknown_account": 400}
_BODIES = {
    "too_large": "Request body too large",
    "malformed": "Bad request: not a valid event batch",
    "unknown_portal": "Bad request: no event is for a connected portal",
    "unknown_account": "Bad request: not for a connected account",
}
# A declared length is compared as a number only when it is a short one.
_LENGTH_RE = re.compile(r"[0-9]{1,16}")


async def hubspot_webhook(request: Request) -> Response:
    """Verify a HubSpot webhook delivery and put its events in the inbox."""

    def receive(settings: Settings, body: bytes, delivered: list[Settings]) -> int:
        return webhooks.receive(
            settings, method=request.method, headers=request.headers, body=body, delivered=delivered
        )

    # With nothing new (duplicates), the home's worker is still woken, as it always was.
    return await _take(request, receive, wake_home=True)


async def pipedrive_webhook(request: Request) -> Response:
    """POST /pipedrive/webhook: a Pipedrive (webhooks v2) delivery for one of the connections.

    The delivery's ``meta.company_id`` picks the connection; its Basic credentials are
    checked against that connection's (``crm.webhooks.receive_from``). Answers as the
    HubSpot route does: 204, 413, 401 (any credential failure, one body), 400 (unreadable,
    or a company no connection has), 503 (our side; Pipedrive retries a non-2xx).
    """

    def receive(settings: Settings, body: bytes, delivered: list[Settings]) -> int:
        return webhooks.receive_from(
            settings,
            "pipedrive",
            method=request.method,
            uri=str(request.url),
            headers=request.headers,
            body=body,
            delivered=delivered,
        )

    return await _take(request, receive, wake_home=False)


async def _take(
    request: Request, receive: Callable[[Settings, bytes, list[Settings]], int], *, wake_home: bool
) -> Response:
    """Settings, the capped body, ``receive`` in a worker thread, the answer, the workers woken."""
    try:
        settings = await run_in_threadpool(_settings, request)
    except Exception:
        log.exception("webhook: settings unavailable")
        return PlainTextResponse("Service unavailable", status_code=503)
    body = await _read_capped(request)
    if body is None:
        return await _refuse(settings, "too_large")
    delivered: list[Settings] = []
    try:
        await run_in_threadpool(receive, settings, body, delivered)
    except WebhookRejected as exc:
        return _answer(exc.reason)
    except Exception:
        log.exception("webhook: could not store the delivery")
        return PlainTextResponse("Service unavailable", status_code=503)
    for target in delivered or ([settings] if wake_home else []):
        # Each connection that got events has its own worker (one per partition).
        webhooks.notify(target)
    return Response(status_code=204)


async def _read_capped(request: Request) -> bytes | None:
    """The raw body, or None when it is over the cap (declared or streamed)."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and (not _LENGTH_RE.fullmatch(declared) or int(declared) > webhooks.MAX_BODY_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > webhooks.MAX_BODY_BYTES:
            # A missing or lying Content-Length: stop reading here, never buffer the rest.
            return None
    return bytes(body)


async def _refuse(settings: Settings, reason: str) -> Response:
    webhooks.record_rejection(settings, reason, detail="body over 1 MiB")
    return _answer(reason)


def _answer(reason: str) -> Response:
    return PlainTextResponse(_BODIES.get(reason, "Unauthorized"), status_code=_STATUS.get(reason, 401))


def _settings(request: Request) -> Settings:
    # Tests (and anyone embedding the handler) put settings on the app; the real app
    # resolves them like every page does.
    configured = getattr(request.app.state, "settings", None)
    if configured is not None:
        return configured  # type: ignore[no-any-return]
    from ui.runtime import settings

    return settings()
