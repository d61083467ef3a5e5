"""HubSpot's error bodies translated into ``crm.errors``, in one place.

HubSpot speaks two dialects (HUBSPOT_API.md §8): CRM calls answer
``{status, message, correlationId, category, errors[], context}`` and the OAuth endpoints
``{error, error_description, status, message}``. A 429 adds ``errorType``/``policyName``.
Every field is treated as optional.

Which property failed is read from ``errors[].context.propertyName`` or, when HubSpot packs
it into the message (``Property values were not valid: [{...}]``), from that JSON list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from crm.errors import (
    AlreadyExists,
    HubSpotError,
    MissingScopes,
    NotFound,
    RateLimited,
    ValidationFailed,
)

CORRELATION_HEADER = "x-hubspot-correlation-id"
_INVALID_VALUES_PREFIX = "Property values were not valid:"
_PROPERTY_IN_MESSAGE = re.compile(r'[Pp]roperty \\?"([^"\\]+)\\?"')
# Per-input errors of a 207 carry no HTTP status of their own; this is the status HubSpot
# would have answered had that input been sent alone.
_CATEGORY_STATUS = {
    "VALIDATION_ERROR": 400,
    "OBJECT_NOT_FOUND": 404,
    "CONFLICT": 409,
    "OBJECT_ALREADY_EXISTS": 409,
    "MISSING_SCOPES": 403,
}


def error_from_response(
    status_code: int, body: Any, headers: Mapping[str, str] | None = None
) -> HubSpotError:
    """The ``crm.errors`` exception for an error answer from HubSpot.

    Args:
        status_code: the HTTP status.
        body: the decoded JSON body (anything; a non-dict is treated as no body).
        headers: response headers, for the correlation id and ``Retry-After``.
    """
    headers = headers or {}
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    correlation_id = data.get("correlationId") or _header(headers, CORRELATION_HEADER)
    category = data.get("category") or data.get("errorType")
    if not category and isinstance(data.get("status"), str) and data.get("status") != "error":
        category = data["status"]  # OAuth dialect: status holds e.g. BAD_REFRESH_TOKEN
    message = (
        data.get("message")
        or data.get("error_description")
        or data.get("error")
        or f"HubSpot answered HTTP {status_code}"
    )
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "category": category,
        "correlation_id": correlation_id,
        "body": data,
    }
    if status_code == 429:
        return RateLimited(str(message), retry_after=retry_after_seconds(headers), **kwargs)
    return _typed(status_code, category, str(message), kwargs, data)


def error_from_batch_item(item: Any, *, status_code: int = 207) -> HubSpotError:
    """One per-input error of a 207 batch answer, as an exception object (not raised)."""
    data: dict[str, Any] = item if isinstance(item, dict) else {"message": str(item)}
    category = data.get("category")
    status = _CATEGORY_STATUS.get(str(category), status_code)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "category": category,
        "correlation_id": data.get("correlationId"),
        "body": data,
    }
    return _typed(status, category, str(data.get("message") or "HubSpot rejected this input"), kwargs, data)


def _typed(
    status_code: int, category: Any, message: str, kwargs: dict[str, Any], data: dict[str, Any]
) -> HubSpotError:
    if status_code == 404 or category == "OBJECT_NOT_FOUND":
        return NotFound(message, **kwargs)
    if status_code == 409 or category in ("CONFLICT", "OBJECT_ALREADY_EXISTS"):
        return AlreadyExists(message, **kwargs)
    if status_code == 403 and category == "MISSING_SCOPES":
        return MissingScopes(message, **kwargs)
    if category == "VALIDATION_ERROR" or (status_code == 400 and data.get("errors")):
        return ValidationFailed(message, field_errors=field_errors(data), **kwargs)
    return HubSpotError(message, **kwargs)


def field_errors(body: Mapping[str, Any]) -> dict[str, str]:
    """``{property: reason}`` from a HubSpot validation error body.

    Reads, in order: ``errors[].context.propertyName`` with the error's message, the
    JSON list HubSpot embeds after "Property values were not valid:", and as a last resort
    a quoted property name inside an error message.
    """
    found: dict[str, str] = {}
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        reason = str(error.get("message") or error.get("code") or "invalid value")
        names = _context_names(error.get("context"))
        if not names:
            match = _PROPERTY_IN_MESSAGE.search(reason)
            names = [match.group(1)] if match else []
        for name in names:
            found.setdefault(name, reason)
    for name in _context_names(body.get("context")):
        found.setdefault(name, str(body.get("message") or "invalid value"))
    message = body.get("message")
    if isinstance(message, str) and _INVALID_VALUES_PREFIX in message:
        for name, reason in _embedded_property_errors(message):
            found.setdefault(name, reason)
    return found


def _context_names(context: Any) -> list[str]:
    if not isinstance(context, dict):
        return []
    value = context.get("propertyName")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return []


def _embedded_property_errors(message: str) -> list[tuple[str, str]]:
    raw = message.split(_INVALID_VALUES_PREFIX, 1)[1].strip()
    try:
        items = json.loads(raw)
    except ValueError:
        # HubSpot sometimes appends prose after the list; take the bracketed part only.
        end = raw.rfind("]")
        try:
            items = json.loads(raw[: end + 1]) if end >= 0 else []
        except ValueError:
            return []
    pairs: list[tuple[str, str]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("isValid") is True:
            continue
        reason = str(
            item.get("message") or item.get("localizedErrorMessage") or item.get("error") or "invalid"
        )
        name = item.get("name") or item.get("propertyName")
        if not name:
            match = _PROPERTY_IN_MESSAGE.search(reason)
            name = match.group(1) if match else None
        if name:
            pairs.append((str(name), reason))
    return pairs


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds, or None when absent or not a number of seconds."""
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and not hasattr(headers, "multi_items"):
        # A plain dict is case-sensitive; httpx2.Headers is not.
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return None if value is None else str(value)


def required_scopes(error: HubSpotError) -> list[str]:
    """The scopes a MISSING_SCOPES answer names (``errors[].context.requiredGranularScopes``).

    Empty when HubSpot did not say; the body shape is in docs/INTERACTIONS_API.md §5.
    """
    found: list[str] = []
    for item in error.body.get("errors") or []:
        context = item.get("context") if isinstance(item, dict) else None
        if isinstance(context, dict):
            for key in ("requiredGranularScopes", "requiredScopes"):
                for scope in context.get(key) or []:
                    if isinstance(scope, str) and scope not in found:
                        found.append(scope)
    return found
