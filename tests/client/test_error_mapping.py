"""HubSpot error bodies become crm.errors types a page can explain (pure)."""

from __future__ import annotations

import json

from crm.errors import AlreadyExists, HubSpotError, MissingScopes, NotFound, RateLimited, ValidationFailed
from crm.hubspot.errors import error_from_batch_item, error_from_response, field_errors


def test_validation_error_names_each_rejected_property_from_context():
    body = {
        "status": "error",
        "message": "Property values were not valid",
        "correlationId": "a4368",
        "category": "VALIDATION_ERROR",
        "errors": [
            {
                "message": 'Property "favcolor" does not exist',
                "code": "PROPERTY_DOESNT_EXIST",
                "context": {"propertyName": ["favcolor"]},
            },
            {
                "message": "abc is not a valid number",
                "code": "INVALID_INTEGER",
                "context": {"propertyName": ["amount"]},
            },
        ],
    }
    error = error_from_response(400, body)
    assert isinstance(error, ValidationFailed)
    assert error.field_errors == {
        "favcolor": 'Property "favcolor" does not exist',
        "amount": "abc is not a valid number",
    }
    assert (
        error.status_code == 400 and error.category == "VALIDATION_ERROR" and error.correlation_id == "a4368"
    )


def test_validation_error_reads_the_json_list_embedded_in_the_message():
    inner = [
        {
            "isValid": False,
            "message": "Email address bob@ is invalid",
            "error": "INVALID_EMAIL",
            "name": "email",
        },
        {"isValid": False, "message": 'Property "favcolor" does not exist', "error": "PROPERTY_DOESNT_EXIST"},
    ]
    body = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "correlationId": "c1",
        "message": "Property values were not valid: " + json.dumps(inner),
    }
    error = error_from_response(400, body)
    assert error.field_errors == {
        "email": "Email address bob@ is invalid",
        "favcolor": 'Property "favcolor" does not exist',
    }
    assert "email: Email address bob@ is invalid" in str(error) and "c1" in str(error)


def test_status_and_category_pick_the_error_type():
    assert isinstance(
        error_from_response(404, {"category": "OBJECT_NOT_FOUND", "message": "resource not found"}), NotFound
    )
    assert isinstance(
        error_from_response(
            409, {"category": "CONFLICT", "message": "Contact already exists. Existing ID: 7"}
        ),
        AlreadyExists,
    )
    assert isinstance(error_from_response(409, {"category": "OBJECT_ALREADY_EXISTS"}), AlreadyExists)
    assert isinstance(error_from_response(403, {"category": "MISSING_SCOPES"}), MissingScopes)
    plain = error_from_response(502, None)
    assert type(plain) is HubSpotError and plain.status_code == 502 and "502" in plain.message


def test_rate_limit_carries_retry_after_and_the_policy():
    error = error_from_response(
        429,
        {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
        {"Retry-After": "3", "X-HubSpot-Correlation-Id": "corr-9"},
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0 and error.category == "RATE_LIMIT" and error.correlation_id == "corr-9"


def test_batch_item_error_keeps_the_trace_id_context_and_gets_a_status():
    item = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: "
        + json.dumps(
            [
                {
                    "isValid": False,
                    "message": 'Property "favcolor" does not exist',
                    "error": "PROPERTY_DOESNT_EXIST",
                }
            ]
        ),
        "context": {"objectWriteTraceId": ["row-2"]},
    }
    error = error_from_batch_item(item)
    assert isinstance(error, ValidationFailed) and error.status_code == 400
    assert error.body["context"]["objectWriteTraceId"] == ["row-2"]
    assert error.field_errors == {"favcolor": 'Property "favcolor" does not exist'}


def test_field_errors_survive_odd_shapes():
    assert field_errors({"message": "Property values were not valid: not json"}) == {}
    assert field_errors({"errors": ["text", {"message": "bad"}]}) == {}
    assert field_errors({"errors": [{"message": 'Property "x" is read only'}]}) == {
        "x": 'Property "x" is read only'
    }
