"""HubSpot's webhook deliveries, read without side effects: the v3 signature and the event body.

Pure functions shared by ``crm.webhooks`` (the inbox and its worker) and the HubSpot
provider (``crm.hubspot.provider``, the CRM interface's webhook verification), so the
signature rule and HubSpot's event names live in one place, at the client edge.

Signature (HUBSPOT_API.md §9.1): base64 HMAC-SHA256 with the app's client secret over
method + URI + raw body + timestamp, where the URI is the *public* URL HubSpot called,
with the escapes HubSpot decodes before signing turned back into characters.

Numbers are checked before anything parses or stores them: the timestamp header must be
1-16 ASCII digits (``int()`` of a 5,000-digit string raises), and event keys must be
positive and fit a signed 64-bit INTEGER. A body that breaks these is ``malformed``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from crm.errors import WebhookRejected

TIMESTAMP_TOLERANCE_MS = 300_000
SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
# HubSpot ids are positive and fit SQLite's INTEGER (signed 64-bit); 19 digits at most.
MAX_ID = 2**63 - 1

# Epoch milliseconds have 13 digits until the year 2286; anything longer is not a timestamp.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,16}")
_ID_TEXT_RE = re.compile(r"[0-9]{1,19}")
_URI_ESCAPES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_URI_ESCAPE_RE = re.compile("|".join(_URI_ESCAPES), re.IGNORECASE)

# conversation.* events are about inbox threads; their objectId is the thread id (§7).
SINGULAR_TYPES = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "ticket": "tickets",
    "conversation": "threads",
}
# Engagements have no classic subscription; the generic object.* events name them by type id
# (docs/INTERACTIONS_API.md §7).
TYPE_IDS = {
    "0-1": "contacts",
    "0-2": "companies",
    "0-3": "deals",
    "0-5": "tickets",
    "0-46": "notes",
    "0-48": "calls",
    "0-49": "emails",
    "0-47": "meetings",
    "0-27": "tasks",
}


def public_uri(uri: str) -> str:
    """``uri`` with the escapes HubSpot decodes before signing turned back into characters."""
    return _URI_ESCAPE_RE.sub(lambda m: _URI_ESCAPES[m.group(0).upper()], uri)


def signature_v3(*, client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature of a request (base64 HMAC-SHA256)."""
    # Concatenate bytes: the body is hashed exactly as received, never re-encoded.
    message = method.upper().encode() + public_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_v3(
    *,
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now_ms: int | None = None,
) -> None:
    """Check a v3-signed request.

    Args:
        uri: the public URL HubSpot was configured to call (settings.webhook_url).
        body: the raw request body, byte for byte.
        timestamp: X-HubSpot-Request-Timestamp, epoch milliseconds.

    Raises:
        WebhookRejected: reason ``missing_headers``, ``bad_timestamp`` (not 1-16 ASCII
            digits), ``stale_timestamp`` (more than five minutes away from now, either
            way) or ``bad_signature``.
    """
    if not signature or not timestamp:
        raise WebhookRejected("The signature or timestamp header is missing.", reason="missing_headers")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        # Checked before int(): a 5,000-digit header must not reach the parser.
        raise WebhookRejected("The request timestamp is not a short integer.", reason="bad_timestamp")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now_ms - int(timestamp)) > TIMESTAMP_TOLERANCE_MS:
        raise WebhookRejected(
            "The request timestamp is outside the five-minute window.", reason="stale_timestamp"
        )
    expected = signature_v3(
        client_secret=client_secret, method=method, uri=uri, body=body, timestamp=timestamp
    )
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
        raise WebhookRejected("The request signature does not match.", reason="bad_signature")


def verify_headers(
    *,
    client_secret: str,
    method: str,
    uri: str,
    headers: Mapping[str, str],
    body: bytes,
    now_ms: int | None = None,
) -> None:
    """``verify_v3`` with the signature and timestamp taken from the request's headers (any case)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    verify_v3(
        client_secret=client_secret,
        method=method,
        uri=uri,
        body=body,
        timestamp=lowered.get(TIMESTAMP_HEADER, "").strip(),
        signature=lowered.get(SIGNATURE_HEADER, ""),
        now_ms=now_ms,
    )


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a delivery body (a JSON array, or one object), their ids checked.

    Raises:
        WebhookRejected: reason ``malformed``: not JSON, not events, or an id that is not
            a HubSpot id (``valid_id``).
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError also covers a number over Python's 4,300-digit limit; RecursionError
        # a body of a million nested brackets.
        raise WebhookRejected("The request body is not JSON.", reason="malformed") from None
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        raise WebhookRejected("The request body is not an array of events.", reason="malformed")
    for event in payload:
        for name in ("portalId", "subscriptionId", "eventId", "objectId"):
            if event.get(name) is not None and valid_id(event[name]) is None:
                raise WebhookRejected(f"An event's {name} is not a HubSpot id.", reason="malformed")
    return payload


def valid_id(value: Any) -> int | None:
    """``value`` as a HubSpot id (a positive integer that fits SQLite's INTEGER), else None.

    Accepts an int or a string of ASCII digits; never a bool, a float or a longer number.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _ID_TEXT_RE.fullmatch(value):
            return None
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_ID:
        return value
    return None


def event_object_type(event: Mapping[str, Any]) -> str | None:
    """The cache's object type an event is about (``contacts``...), or None for others."""
    prefix = str(event.get("subscriptionType") or "").split(".", 1)[0]
    if prefix == "object":
        return TYPE_IDS.get(str(event.get("objectTypeId") or ""))
    return SINGULAR_TYPES.get(prefix)
