"""The one error tree of the product.

Pages catch ``CrmError`` (and nothing broader) and render it; ``crm`` raises these
and nothing else across its public surface.

    CrmError                  base class; pages catch this and nothing broader
    ├── ConfigError           a setting is missing or malformed; names the setting
    ├── HubSpotError          HubSpot answered with an error: status_code, category, correlation_id
    │   ├── RateLimited       429 still failing after our bounded retries; retry_after
    │   │   └── DailyLimitReached  429 DAILY: the portal's day is spent; resume_at (never retried)
    │   ├── NotFound          category OBJECT_NOT_FOUND (or a 404)
    │   ├── ValidationFailed  400 VALIDATION_ERROR; field_errors says which property and why
    │   ├── AlreadyExists     409 CONFLICT / OBJECT_ALREADY_EXISTS
    │   └── MissingScopes     403 MISSING_SCOPES
    ├── Unreachable           no response at all: connect error, dropped connection or timeout
    │   └── CircuitOpen       we stopped calling a failing HubSpot for a while
    ├── NotConnected          no usable token: never connected, or disconnected
    │   └── NeedsReconnect    HubSpot refused the refresh token, or the stored key cannot decrypt it
    ├── OAuthFlowError        the connect round trip failed (bad state, declined, code refused)
    ├── InvalidEdit           a local edit failed validation; field_errors per property
    ├── WebhookRejected       bad signature, stale timestamp or oversized body
    ├── SyncBusy              another sync run holds the portal's lease
    ├── DailyBudgetSpent      this app's share of the portal's daily limit is used up; resume_at
    ├── StoreUnavailable      the cache database cannot be opened, read or written
    ├── CacheEmpty            nothing synced yet
    ├── UnknownConnection     no connection (or more than one) answers to a name; names lists them
    └── DuplicateConnection   another connection already has that name (or that account)
"""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Base of every error the product raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(CrmError):
    """A setting is missing or malformed."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


class HubSpotError(CrmError):
    """HubSpot answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        category: str | None = None,
        correlation_id: str | None = None,
        field_errors: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.category = category
        self.correlation_id = correlation_id
        self.field_errors: dict[str, str] = dict(field_errors or {})
        self.body = body or {}

    def __str__(self) -> str:
        parts = [self.message]
        if self.field_errors:
            parts.append("; ".join(f"{k}: {v}" for k, v in self.field_errors.items()))
        if self.correlation_id:
            parts.append(f"(HubSpot correlation id {self.correlation_id})")
        return " ".join(parts)


class RateLimited(HubSpotError):
    """429 still failing after our bounded retries."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        kw.setdefault("status_code", 429)
        super().__init__(message, **kw)
        self.retry_after = retry_after


class DailyLimitReached(RateLimited):
    """HubSpot refused with its daily limit (429, ``policyName`` DAILY); retrying before the
    portal's midnight only fails again, so nothing retries it. ``resume_at`` is that
    midnight as an epoch second."""

    def __init__(self, message: str, *, resume_at: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.resume_at = resume_at


class NotFound(HubSpotError):
    """The object does not exist (or is archived) in HubSpot."""


class ValidationFailed(HubSpotError):
    """HubSpot refused the values; ``field_errors`` maps property name to reason."""


class AlreadyExists(HubSpotError):
    """HubSpot says the object already exists (409)."""


class MissingScopes(HubSpotError):
    """The token lacks a scope the call needs."""


class Unreachable(CrmError):
    """No response from HubSpot: connection refused or dropped, or a timeout."""


class CircuitOpen(Unreachable):
    """Recent calls failed so often that we pause calling HubSpot."""

    def __init__(self, message: str, *, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class NotConnected(CrmError):
    """No usable HubSpot credentials: never connected, or disconnected."""


class NeedsReconnect(NotConnected):
    """The connection is dead until a person connects again."""


class OAuthFlowError(CrmError):
    """The OAuth connect round trip failed; ``reason`` is a short code safe for URLs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidEdit(CrmError):
    """A local edit or new record failed validation; nothing was queued."""

    def __init__(self, field_errors: dict[str, str], *, record_id: str | None = None) -> None:
        detail = "; ".join(f"{k}: {v}" for k, v in field_errors.items())
        super().__init__(f"Invalid value — {detail}" if detail else "Invalid edit")
        self.field_errors = dict(field_errors)
        self.record_id = record_id


class WebhookRejected(CrmError):
    """A webhook request failed the size, timestamp or signature check.

    ``reason`` is a short code (``bad_signature``, ``stale_timestamp``, ``too_large``...)
    that the receiver counts, so a misconfigured URL shows up as a number, not silence.
    """

    def __init__(self, message: str, *, reason: str = "rejected") -> None:
        super().__init__(message)
        self.reason = reason


class SyncBusy(CrmError):
    """Another sync run holds the portal's lease."""


class DailyBudgetSpent(CrmError):
    """This app's share of the portal's daily request limit (``CRM_DAILY_BUDGET``) is used
    up, or HubSpot has nothing left today. A sync pauses on it and resumes after
    ``resume_at`` (an epoch second: the portal's next midnight), or at the next run."""

    def __init__(self, message: str, *, resume_at: float) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class StoreUnavailable(CrmError):
    """The cache database cannot be opened, read or written (locked, missing, disk full...).

    ``crm.store`` raises it in place of the database driver's own errors, so no caller
    imports the driver to catch them.
    """


class CacheEmpty(CrmError):
    """Nothing has been synced yet."""


class UnknownConnection(CrmError):
    """No connection answers to the name given, or none was given and there are several.

    ``names`` lists the connections there are, so the message (and a CLI) can offer them.
    """

    def __init__(self, message: str, *, names: list[str] | None = None) -> None:
        super().__init__(message)
        self.names = list(names or [])


class DuplicateConnection(CrmError):
    """Another connection already has that name, or already connects that account."""
