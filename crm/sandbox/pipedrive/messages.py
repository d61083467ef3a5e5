"""Every text the Pipedrive sandbox answers with, and the body shapes they go in.

Pipedrive's error body is ``{"success": false, "error": …, "error_info": …, "data": null,
"additional_data": null}``; 401s add ``errorCode`` (docs/PIPEDRIVE_API.md §8). Where the
docs record no wording, the text here is the sandbox's own (UNCERTAIN there).
"""

from __future__ import annotations

from typing import Any

ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."

UNAUTHORIZED = "unauthorized access"
RATE_LIMITED = "Request over limit"
DAILY_BUDGET = "Daily API token budget exhausted"
NOT_FOUND = "{entity} not found"
UNKNOWN_PATH = "Unknown method ."
WRONG_METHOD = "Method {method} is not allowed here"
INTERNAL = "Internal server error"
BAD_JSON = "Request body is not valid JSON"
NOT_AN_OBJECT = "Request body must be a JSON object"
BAD_LIMIT = "limit must be an integer from 1 to 500"
BAD_CURSOR = "Invalid cursor"
BAD_TIME = "{name} must be an RFC 3339 date-time, e.g. 2025-01-01T10:20:00Z"
BAD_CHOICE = "{name} must be one of: {choices}"
BAD_ID = "{name} must be a positive integer"
TERM_TOO_SHORT = "Search term must be at least 2 characters long (1 with exact_match)"
REQUIRED = "{name} is a required field"
UNKNOWN_FIELD = "Unknown field: {name}"
WRONG_TYPE = "{name}: {detail}"
NO_SUCH_REF = "{name}: {entity} with id {id} does not exist"
STAGE_PIPELINE = "stage_id {stage} does not belong to pipeline_id {pipeline}"
FIELD_NAME = "name is required and must be a non-empty string of at most 255 characters"
FIELD_TYPE = "field_type must be one of: {choices}"
FIELD_OPTIONS = "options are required for enum and set fields: a list of labels or of {{label}} objects"
WEBHOOK_URL = "subscription_url must be an absolute http(s) URL"
WEBHOOK_LIMIT = "Webhooks limit reached"
WEBHOOK_VERSION = "This sandbox delivers webhooks version 2.0 only"

# OAuth (docs/PIPEDRIVE_API.md §1, [oauth-codes]).
OAUTH_NO_GRANT = "Missing parameter: grant_type"
OAUTH_BAD_GRANT = "Unsupported grant type: grant_type is invalid"
OAUTH_BAD_CODE = "Invalid grant: authorization_code is invalid"
OAUTH_CODE_EXPIRED = "Invalid grant: authorization_code has expired"
OAUTH_BAD_REFRESH = "Invalid grant: refresh_token is invalid"
OAUTH_NO_CLIENT = "Invalid client: cannot retrieve client credentials"
OAUTH_BAD_CLIENT = "Invalid client: client is invalid"
OAUTH_BAD_REDIRECT = "Invalid request: redirect_uri is invalid"
OAUTH_CONSENT_EXPIRED = (
    "This authorization request has expired or was already answered. Start again from the app."
)


def error(message: str, **extra: Any) -> dict[str, Any]:
    """Pipedrive's error body."""
    return {
        "success": False,
        "error": message,
        "error_info": ERROR_INFO,
        "data": None,
        "additional_data": None,
        **extra,
    }


def unauthorized() -> dict[str, Any]:
    return error(UNAUTHORIZED, errorCode=401)


def oauth_error(kind: str, description: str) -> dict[str, Any]:
    return {"error": kind, "error_description": description}
