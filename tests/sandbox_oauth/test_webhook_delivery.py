"""Webhook delivery from the sandbox to a real receiver on loopback: signing, batching, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator

import pytest

from crm.sandbox.config import SandboxConfig
from crm.sandbox.webhooks import (
    WebhookSender,
    compute_signatures,
    decode_v3_uri,
    retry_after_seconds,
    subscription_id,
)

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
VECTOR_URI = "https://www.example.com/webhook_uri"
VECTOR_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)


# --- signatures against HUBSPOT_API.md §9.1 ------------------------------------------------


def test_v1_signature_matches_hubspots_example():
    signatures = compute_signatures(SECRET, method="POST", uri=VECTOR_URI, body=VECTOR_BODY, timestamp_ms=0)

    assert signatures["v1"] == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


def test_v2_signature_matches_hubspots_get_example():
    signatures = compute_signatures(SECRET, method="GET", uri=VECTOR_URI, body=b"", timestamp_ms=0)

    assert signatures["v2"] == "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"


def test_v2_signature_matches_hubspots_post_example():
    body = b'{"example_field":"example_value"}'

    signatures = compute_signatures(SECRET, method="POST", uri=VECTOR_URI, body=body, timestamp_ms=0)

    assert signatures["v2"] == "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"


def test_v3_signature_matches_the_reference_vector():
    signatures = compute_signatures(
        SECRET, method="POST", uri=VECTOR_URI, body=VECTOR_BODY, timestamp_ms=1700000000000
    )

    assert signatures["v3"] == "/pXDSgWeGksQpwCsgqd43P0eY6gBIse9UX0tfkudUrE="


def test_v3_uri_decodes_only_hubspots_listed_escapes():
    assert decode_v3_uri("https://h.example/a%3Ab%2fc?x=%40y%20z%2C") == "https://h.example/a:b/c?x=@y%20z,"


def test_subscription_ids_are_fixed_and_distinct_per_type():
    types = ["contact.creation", "contact.propertyChange", "deal.creation", "company.deletion", "x.custom"]

    ids = [subscription_id(t) for t in types]

    assert ids == [subscription_id(t) for t in types]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("value", "seconds"), [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("soon", None), (None, None)]
)
def test_retry_after_is_read_as_seconds(value, seconds):
    assert retry_after_seconds(value) == seconds


@pytest.fixture
def config(receiver) -> SandboxConfig:
    return SandboxConfig(
        webhook_url=receiver.url,
        webhook_retry_delays=(0.05, 0.05, 0.05),
        webhook_batch_ms=50,
        webhook_timeout_s=2.0,
        client_secret=SECRET,
    )


@pytest.fixture
def sender(config: SandboxConfig) -> Iterator[WebhookSender]:
    sender = WebhookSender(config)
    try:
        yield sender
    finally:
        sender.close()


def events_of(request: dict) -> list[dict]:
    return json.loads(request["body"])


def contact_created(object_id: int) -> dict:
    return {"subscriptionType": "contact.creation", "objectId": object_id, "changeSource": "API"}


# --- delivery ------------------------------------------------------------------------------


def test_delivery_carries_v1_and_v3_signatures_a_receiver_can_verify(sender, receiver, config):
    sender.emit([contact_created(101)])

    request = receiver.wait_for(1)[0]
    body, headers = request["body"], request["headers"]
    timestamp = headers["x-hubspot-request-timestamp"]
    expected_v1 = hashlib.sha256(SECRET.encode() + body).hexdigest()
    signed = b"POST" + config.webhook_url.encode() + body + timestamp.encode()
    expected_v3 = base64.b64encode(hmac.new(SECRET.encode(), signed, "sha256").digest()).decode()
    assert headers["x-hubspot-signature-version"] == "v1"
    assert headers["x-hubspot-signature"] == expected_v1
    assert headers["x-hubspot-signature-v3"] == expected_v3
    assert abs(int(timestamp) - time.time() * 1000) < 60_000
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("HubSpot Connect 2.0 (http://dev.hubspot.com/)")


def test_app_receiver_accepts_the_sandbox_signature(sender, receiver, config):
    from crm.webhooks import verify_v3

    sender.emit([contact_created(102)])

    request = receiver.wait_for(1)[0]
    verify_v3(
        client_secret=SECRET,
        method="POST",
        uri=config.webhook_url,
        body=request["body"],
        timestamp=request["headers"]["x-hubspot-request-timestamp"],
        signature=request["headers"]["x-hubspot-signature-v3"],
    )


def test_event_fields_follow_hubspots_payload(sender, receiver, config):
    before_ms = int(time.time() * 1000)
    sender.emit([contact_created(103)])

    event = events_of(receiver.wait_for(1)[0])[0]

    assert event["subscriptionType"] == "contact.creation"
    assert event["objectId"] == 103
    assert event["portalId"] == config.portal_id and event["appId"] == config.app_id
    assert isinstance(event["eventId"], int) and isinstance(event["subscriptionId"], int)
    assert before_ms <= event["occurredAt"] <= int(time.time() * 1000)
    assert event["attemptNumber"] == 0
    assert event["changeSource"] == "API" and event["changeFlag"] == "NEW"


def test_property_and_association_changes_keep_their_fields(sender, receiver):
    sender.emit(
        [
            {
                "subscriptionType": "deal.propertyChange",
                "objectId": "7",
                "propertyName": "amount",
                "propertyValue": 1500,
            },
            {
                "subscriptionType": "contact.associationChange",
                "objectId": 8,
                "associationType": "CONTACT_TO_COMPANY",
                "fromObjectId": 8,
                "toObjectId": 9,
                "associationRemoved": False,
                "isPrimaryAssociation": False,
                "changeSource": "CRM_UI",
            },
        ]
    )

    change, association = events_of(receiver.wait_for(1)[0])

    assert (change["objectId"], change["propertyName"], change["propertyValue"]) == (7, "amount", "1500")
    assert "changeFlag" not in change
    assert association["associationType"] == "CONTACT_TO_COMPANY"
    assert (association["fromObjectId"], association["toObjectId"]) == (8, 9)
    assert association["changeSource"] == "CRM_UI"


def test_events_emitted_close_together_arrive_in_one_request(sender, receiver, config):
    config.webhook_batch_ms = 500  # wide enough that a busy machine cannot split the three emits
    for object_id in (1, 2, 3):
        sender.emit([contact_created(object_id)])

    assert sender.flush(5)
    requests = receiver.wait_for(1)
    assert len(requests) == 1
    events = events_of(requests[0])
    assert [e["objectId"] for e in events] == [1, 2, 3]
    assert [e["eventId"] for e in events] == sorted(e["eventId"] for e in events)


def test_more_than_100_events_are_split_into_requests_of_100(sender, receiver):
    sender.emit([contact_created(i) for i in range(250)])

    assert sender.flush(5)
    sizes = [len(events_of(r)) for r in receiver.wait_for(3)]
    assert sorted(sizes) == [50, 100, 100]


def test_event_ids_keep_rising_across_emits(sender, receiver):
    sender.emit([contact_created(1)])
    first = events_of(receiver.wait_for(1)[0])[0]["eventId"]
    sender.emit([contact_created(2)])

    second = events_of(receiver.wait_for(2)[1])[0]["eventId"]

    assert second > first


def test_server_errors_are_retried_with_attempt_number_counting_up(sender, receiver):
    receiver.answer(500, 503, 200)
    sender.emit([contact_created(5)])

    assert sender.flush(5)
    requests = receiver.wait_for(3)
    attempts = [[e["attemptNumber"] for e in events_of(r)] for r in requests]
    assert attempts == [[0], [1], [2]]
    assert len({events_of(r)[0]["eventId"] for r in requests}) == 1
    assert [d["status"] for d in sender.deliveries()] == [500, 503, 200]
    assert sender.deliveries()[-1]["retry_in"] is None


def test_each_retry_is_signed_over_its_own_body(sender, receiver):
    receiver.answer(500, 200)
    sender.emit([contact_created(6)])

    assert sender.flush(5)
    first, second = receiver.wait_for(2)
    assert first["body"] != second["body"]
    for request in (first, second):
        expected = hashlib.sha256(SECRET.encode() + request["body"]).hexdigest()
        assert request["headers"]["x-hubspot-signature"] == expected


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405])
def test_these_client_errors_are_never_retried(sender, receiver, status):
    receiver.answer(status)
    sender.emit([contact_created(7)])

    assert sender.flush(5)
    assert len(receiver.requests) == 1
    assert [(d["status"], d["retry_in"]) for d in sender.deliveries()] == [(status, None)]


def test_retry_all_4xx_option_retries_a_404(sender, receiver, config):
    config.webhook_retry_all_4xx = True
    receiver.answer(404, 200)
    sender.emit([contact_created(8)])

    assert sender.flush(5)
    assert [d["status"] for d in sender.deliveries()] == [404, 200]


def test_other_client_errors_are_retried(sender, receiver):
    receiver.answer(409, 200)
    sender.emit([contact_created(9)])

    assert sender.flush(5)
    assert [d["status"] for d in sender.deliveries()] == [409, 200]


def test_too_many_requests_waits_for_retry_after(sender, receiver):
    receiver.answer((429, {"Retry-After": "1"}), 200)
    sender.emit([contact_created(10)])

    first, second = receiver.wait_for(2)

    assert second["at"] - first["at"] >= 0.9
    assert sender.deliveries()[0]["retry_in"] == 1.0


def test_retries_stop_after_the_configured_count(sender, receiver, config):
    receiver.answer(*[500] * 10)
    sender.emit([contact_created(11)])

    assert sender.flush(5)
    assert len(receiver.requests) == 1 + len(config.webhook_retry_delays)
    assert sender.deliveries()[-1]["retry_in"] is None


def test_a_receiver_that_times_out_is_retried(sender, receiver, config):
    config.webhook_timeout_s = 1.0
    receiver.answer((200, {}, 2.5), 200)
    sender.emit([contact_created(12)])

    assert sender.flush(10)
    deliveries = sender.deliveries()
    assert deliveries[0]["error"] == "timeout" and deliveries[0]["status"] is None
    assert deliveries[1]["status"] == 200 and deliveries[1]["attempt"] == 1


def test_an_unreachable_receiver_is_retried_then_given_up(config):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    config.webhook_url = f"http://127.0.0.1:{port}/hooks"
    sender = WebhookSender(config)
    try:
        sender.emit([contact_created(13)])
        assert sender.flush(10)
        deliveries = sender.deliveries()
    finally:
        sender.close()

    assert [d["attempt"] for d in deliveries] == [0, 1, 2, 3]
    assert all(d["status"] is None and d["error"] == "ConnectError" for d in deliveries)


def test_emit_returns_at_once_while_the_receiver_is_slow(sender, receiver):
    receiver.answer((200, {}, 1.5))
    sender.emit([contact_created(14)])
    receiver.wait_for(1)

    started = time.monotonic()
    sender.emit([contact_created(15)])
    elapsed = time.monotonic() - started

    assert elapsed < 0.5
    assert sender.flush(10)
    assert len(receiver.requests) == 2


def test_nothing_is_sent_without_a_webhook_url(config, receiver):
    config.webhook_url = ""
    sender = WebhookSender(config)
    try:
        sender.emit([contact_created(16)])
        assert sender.flush(1)
    finally:
        sender.close()

    assert sender.deliveries() == []
    assert receiver.requests == []


def test_reset_drops_scheduled_retries_and_the_log(sender, receiver, config):
    config.webhook_retry_delays = (30.0,)
    receiver.answer(500)
    sender.emit([contact_created(17)])
    receiver.wait_for(1)
    deadline = time.monotonic() + 5
    while not sender.deliveries():
        assert time.monotonic() < deadline
        sender.flush(0.05)

    sender.reset()

    assert sender.flush(1)
    assert sender.deliveries() == []
    assert sender.status()["scheduled_retries"] == 0


def test_escaped_url_is_signed_over_its_decoded_form(config, receiver):
    config.webhook_url = receiver.url + "?next=a%3Ab"
    sender = WebhookSender(config)
    try:
        sender.emit([contact_created(18)])
        request = receiver.wait_for(1)[0]
    finally:
        sender.close()

    signed_uri = (receiver.url + "?next=a:b").encode()
    timestamp = request["headers"]["x-hubspot-request-timestamp"].encode()
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"POST" + signed_uri + request["body"] + timestamp, "sha256").digest()
    ).decode()
    assert request["headers"]["x-hubspot-signature-v3"] == expected
