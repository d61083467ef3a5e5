"""The v3 signature check, against HUBSPOT_API.md §9.1's vector and tampered copies."""

from __future__ import annotations

import pytest

from crm import webhooks
from crm.errors import WebhookRejected

# HUBSPOT_API.md §9.1: secret, URI, body B, timestamp and the v3 signature they give.
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
VECTOR_URI = "https://www.example.com/webhook_uri"
VECTOR_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
VECTOR_TIMESTAMP = "1700000000000"
VECTOR_SIGNATURE = "/pXDSgWeGksQpwCsgqd43P0eY6gBIse9UX0tfkudUrE="
VECTOR_NOW = int(VECTOR_TIMESTAMP) + 1_000


def check(**changes: object) -> None:
    request: dict[str, object] = {
        "client_secret": VECTOR_SECRET,
        "method": "POST",
        "uri": VECTOR_URI,
        "body": VECTOR_BODY,
        "timestamp": VECTOR_TIMESTAMP,
        "signature": VECTOR_SIGNATURE,
        "now_ms": VECTOR_NOW,
    }
    request.update(changes)
    webhooks.verify_v3(**request)  # type: ignore[arg-type]


def test_known_good_v3_vector_is_accepted() -> None:
    check()


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"uri": VECTOR_URI + "/"},
        {"uri": "http://www.example.com/webhook_uri"},
        {"body": VECTOR_BODY.replace(b'"objectId":123', b'"objectId":124')},
        {"body": VECTOR_BODY + b" "},
        {"timestamp": str(int(VECTOR_TIMESTAMP) + 1)},
        {"signature": VECTOR_SIGNATURE.replace("/p", "/q")},
        {"signature": VECTOR_SIGNATURE[:-2]},
        {"client_secret": VECTOR_SECRET.replace("y", "z", 1)},
    ],
    ids=[
        "method",
        "uri-path",
        "uri-scheme",
        "body-value",
        "body-whitespace",
        "timestamp",
        "signature",
        "signature-truncated",
        "secret",
    ],
)
def test_any_change_to_the_signed_request_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(WebhookRejected) as caught:
        check(**change)
    assert caught.value.reason == "bad_signature"


def sign_at(offset_s: int) -> dict[str, object]:
    timestamp = str(VECTOR_NOW + offset_s * 1000)
    signature = webhooks.signature_v3(
        client_secret=VECTOR_SECRET, method="POST", uri=VECTOR_URI, body=VECTOR_BODY, timestamp=timestamp
    )
    return {"timestamp": timestamp, "signature": signature}


@pytest.mark.parametrize("offset_s", [-299, 299])
def test_timestamp_within_five_minutes_either_way_is_accepted(offset_s: int) -> None:
    check(**sign_at(offset_s))


@pytest.mark.parametrize("offset_s", [-301, 301])
def test_timestamp_more_than_five_minutes_either_way_is_refused(offset_s: int) -> None:
    with pytest.raises(WebhookRejected) as caught:
        check(**sign_at(offset_s))
    assert caught.value.reason == "stale_timestamp"


@pytest.mark.parametrize("missing", ["signature", "timestamp"])
def test_missing_header_is_refused(missing: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        check(**{missing: ""})
    assert caught.value.reason == "missing_headers"


def test_timestamp_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(WebhookRejected):
        check(timestamp="1700000000000.0")


def test_escaped_characters_in_the_uri_are_decoded_before_hashing() -> None:
    encoded = "https://crm.example.com/hook%3Fportal%3D1?x=a%3Ab%2Cc%40d%21%24%27%28%29%2A%3B%2f"
    decoded = "https://crm.example.com/hook?portal%3D1?x=a:b,c@d!$'()*;/"
    signature = webhooks.signature_v3(
        client_secret=VECTOR_SECRET, method="POST", uri=decoded, body=b"[]", timestamp=VECTOR_TIMESTAMP
    )
    check(uri=encoded, body=b"[]", signature=signature)
    # %3D (=) is not on HubSpot's list, so it must stay encoded.
    assert webhooks.public_uri(encoded) == decoded
