"""HubSpot's error texts and categories, as the sandbox answers them, and nothing else.

Texts marked (doc) are HubSpot's own, recorded in HUBSPOT_API.md. Texts marked (sandbox)
are cases HUBSPOT_API.md gives no wording for: the category and status follow HubSpot's
dialect, the message is ours. Clients must branch on status, ``category`` and
``errors[].code``, never on a message.
"""

from __future__ import annotations

import json
from typing import Any

# Categories (doc, §8).
VALIDATION_ERROR = "VALIDATION_ERROR"
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
CONFLICT = "CONFLICT"
OBJECT_ALREADY_EXISTS = "OBJECT_ALREADY_EXISTS"
RATE_LIMITS = "RATE_LIMITS"
# (sandbox) categories for answers HUBSPOT_API.md does not record a body for.
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
URI_TOO_LONG = "URI_TOO_LONG"
INTERNAL_ERROR = "INTERNAL_ERROR"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"

# Property value error codes: PROPERTY_DOESNT_EXIST, INVALID_OPTION, INVALID_INTEGER and
# INVALID_EMAIL are (doc); the rest are (sandbox).
PROPERTY_DOESNT_EXIST = "PROPERTY_DOESNT_EXIST"
INVALID_OPTION = "INVALID_OPTION"
INVALID_INTEGER = "INVALID_INTEGER"
INVALID_EMAIL = "INVALID_EMAIL"
READ_ONLY_VALUE = "READ_ONLY_VALUE"
INVALID_DATE = "INVALID_DATE"
INVALID_DATETIME = "INVALID_DATETIME"
INVALID_BOOLEAN = "INVALID_BOOLEAN"
INVALID_LONG_STRING = "INVALID_LONG_STRING"

# Rate limits (doc, §7).
TEN_SECONDLY_ROLLING = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
RATE_LIMIT_TEN_SECONDLY = "You have reached your ten_secondly_rolling limit."
RATE_LIMIT_SECONDLY = "You have reached your secondly limit."

# Objects (doc unless marked).
NOT_FOUND = "resource not found"
CONTACT_EXISTS = "Contact already exists. Existing ID: {id}"
BATCH_READ_MISSING = (
    "Could not get some {kind} objects, they may be deleted or not exist. Check that ids are valid."
)
PROPERTY_VALUES_INVALID = "Property values were not valid: {details}"
PROPERTY_MISSING = 'Property "{name}" does not exist'
# (sandbox)
PROPERTY_READ_ONLY = '"{name}" is a read only property; its value cannot be set.'
OPTION_INVALID = "{value!r} was not one of the allowed options: {allowed}"
NUMBER_INVALID = '{value!r} is not a valid number for "{name}"'
EMAIL_INVALID = "Email address {value} is invalid"
DATE_INVALID = (
    '{value!r} is not a valid date for "{name}": use YYYY-MM-DD or epoch milliseconds at midnight UTC'
)
DATETIME_INVALID = '{value!r} is not a valid datetime for "{name}": use ISO-8601 or epoch milliseconds'
BOOLEAN_INVALID = '{value!r} is not a valid boolean for "{name}": use "true" or "false"'
STRING_TOO_LONG = 'The value of "{name}" is longer than 65536 characters'
TOO_MANY_INPUTS = "Too many inputs: at most {limit} are allowed in one request, got {count}."
NO_INPUTS = "inputs must contain at least one entry."
DUPLICATE_IDS = "Duplicate IDs found in batch input: {ids}"
MISSING_REQUIRED = "Missing required properties: one of {names} must be set"
MISSING_ALL_REQUIRED = "Missing required properties: {names}"
PROPERTIES_NOT_OBJECT = "properties must be an object of property names to values"
INVALID_PROPERTIES = "INVALID_PROPERTIES"
ASSOCIATION_TARGET_MISSING = "Cannot associate with {to} {id}: it does not exist or is archived."
UNKNOWN_OBJECT_TYPE = "Unable to infer object type from: {name}"
UNKNOWN_ID_PROPERTY = "{name} is not a unique property and cannot be used as idProperty"
INVALID_ID_PROPERTY_VALUE = "No {kind} with {name}={value}"
INVALID_LIMIT = "limit must be a positive integer"
INVALID_AFTER = "after must be a record id or offset"

# Search (doc rules, sandbox wording).
SEARCH_TOO_MANY_GROUPS = "Too many filter groups: at most 5 are allowed, got {count}."
SEARCH_TOO_MANY_FILTERS = "Too many filters in a group: at most 6 are allowed, got {count}."
SEARCH_TOO_MANY_FILTERS_TOTAL = "Too many filters: at most 18 are allowed in all, got {count}."
SEARCH_TOO_MANY_SORTS = "Only one sort is allowed, got {count}."
SEARCH_RESULT_CAP = "Search results are limited to 10,000: 'after' must be below 10000, got {after}."
SEARCH_QUERY_TOO_LONG = "query must be at most 3000 characters long, got {length}."
SEARCH_BAD_OPERATOR = "Unknown filter operator: {operator}"
SEARCH_MISSING_VALUE = "Filter on {name} with operator {operator} needs {field}."
SEARCH_UNKNOWN_PROPERTY = "Filter or sort on property that does not exist: {name}"

# Properties, pipelines, owners, associations.
PROPERTY_EXISTS = "A property named '{name}' already exists."  # (sandbox) 409 rule is doc §3
GROUP_EXISTS = "A property group named '{name}' already exists."  # (sandbox)
PROPERTY_REQUIRED_FIELDS = "Missing required fields: {names}"  # (sandbox)
PROPERTY_BAD_FIELD_TYPE = "fieldType {field_type} is not valid for type {type}"  # (sandbox)
PROPERTY_BAD_TYPE = "Unknown property type {type}"  # (sandbox)
PROPERTY_BAD_NAME = "Property name {name!r} is invalid: use lowercase letters, digits and underscores, starting with a letter"  # (sandbox)
PROPERTY_NEEDS_OPTIONS = "Enumeration properties need options"  # (sandbox)
PROPERTY_UNKNOWN_GROUP = "Property group {name} does not exist"  # (sandbox)
PROPERTY_HUBSPOT_DEFINED = "HubSpot-defined property {name} cannot be archived"  # (sandbox)
NO_ASSOCIATIONS = "No {to} is associated with {from_} {id}."  # (doc)
NO_ASSOCIATIONS_SUBCATEGORY = "crm.associations.NO_ASSOCIATIONS_FOUND"  # (doc)
ASSOCIATION_BAD_TYPE = "associationTypeId {type_id} is not valid from {from_} to {to}"  # (sandbox)

# Conversations inbox and call transcripts (sandbox wording; docs/INTERACTIONS_API.md §6).
CONVERSATIONS_CONTACT_AND_INBOX = "associatedContactId and inboxId cannot be used together."
CONVERSATIONS_BAD_SORT = "sort must be id or latestMessageTimestamp, got {sort!r}."
CONVERSATIONS_SORT_NEEDS_AFTER = "Sorting by latestMessageTimestamp needs latestMessageTimestampAfter."
CONVERSATIONS_BAD_STATUS = "status must be OPEN or CLOSED, got {status!r}."
CONVERSATIONS_BAD_MESSAGE_TYPE = "type must be MESSAGE or COMMENT, got {type!r}."
CONVERSATIONS_MESSAGE_NEEDS_TEXT = "A message needs a non-empty text."
CONVERSATIONS_MESSAGE_TOO_LONG = "A message's text is limited to {limit} characters."
CONVERSATIONS_BAD_SENDER = "senderActorId must be an agent actor (A-<userId>), got {actor!r}."
CONVERSATIONS_BAD_CHANNEL = "Unknown channel {channel!r}."

# Transport-level answers (sandbox).
UNKNOWN_PATH = "resource not found"
WRONG_METHOD = "Method {method} is not allowed on this resource."
WRONG_CONTENT_TYPE = "Content type {content_type!r} is not supported: send application/json."
MALFORMED_JSON = "Invalid input JSON: {detail}"
BODY_NOT_OBJECT = "Invalid input JSON: expected an object."
URL_TOO_LONG = "Request URI too long: {length} characters, at most {limit}."
INTERNAL = "internal error"
BAD_GATEWAY = "Bad gateway: the upstream service did not answer."
UNAVAILABLE = "Service temporarily unavailable."
ADMIN_UNKNOWN_SETTING = "{detail}"
UNKNOWN_PORTAL = "This sandbox serves no portal {portal_id}; it serves {served}."


def crm_error(
    message: str,
    category: str,
    *,
    sub_category: str | None = None,
    context: dict[str, list[str]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A body in HubSpot's CRM dialect; the app adds ``correlationId`` when it answers."""
    body: dict[str, Any] = {"status": "error", "message": message, "category": category}
    if sub_category:
        body["subCategory"] = sub_category
    if context is not None:
        body["context"] = context
    if errors is not None:
        body["errors"] = errors
    return body


def rate_limit_error(policy: str) -> dict[str, Any]:
    """A 429 body (doc §7); ``category`` is the observed addition the doc tells us to send."""
    message = RATE_LIMIT_SECONDLY if policy == SECONDLY else RATE_LIMIT_TEN_SECONDLY
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "policyName": policy,
        "category": RATE_LIMITS,
    }


def property_errors(problems: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The 400 body for invalid property values; ``problems`` holds (name, code, message)."""
    details = [
        {"isValid": False, "message": msg, "error": code, "name": name} for name, code, msg in problems
    ]
    return crm_error(
        PROPERTY_VALUES_INVALID.format(details=json.dumps(details)),
        VALIDATION_ERROR,
        errors=[
            {"message": msg, "code": code, "context": {"propertyName": [name]}}
            for name, code, msg in problems
        ],
    )


# OAuth: the OAuth side keeps its texts in crm/sandbox/oauth/messages.py; anything it needs
# here goes below this line.
