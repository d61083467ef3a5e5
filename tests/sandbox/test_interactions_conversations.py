"""The sandbox's conversations inbox over loopback: threads, messages, paging, filters,
scopes and conversation webhooks (docs/INTERACTIONS_API.md §6-7)."""

from __future__ import annotations

import httpx2
from sandbox_checks import WebhookInbox, assert_crm_error, walk_pages

from crm.sandbox.admin import SandboxAdmin

BASE = "/conversations/v3/conversations"


def test_threads_page_with_an_opaque_cursor_to_the_end(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.reset(threads=23)
    threads = walk_pages(api, f"{BASE}/threads", limit="5")
    assert len(threads) == 23 and [t["id"] for t in threads] == sorted((t["id"] for t in threads), key=int)
    first = api.get(f"{BASE}/threads", params={"limit": 5}).json()
    assert not first["paging"]["next"]["after"].isdigit(), "the cursor is opaque, not an id"
    newest_first = walk_pages(api, f"{BASE}/threads", limit="4", sort="-id")
    assert [t["id"] for t in newest_first] == [t["id"] for t in reversed(threads)]
    dated = walk_pages(api, "/conversations/conversations/2026-09-beta/threads", limit="100")
    assert [t["id"] for t in dated] == [t["id"] for t in threads]
    sample = threads[0]
    assert sample["status"] in ("OPEN", "CLOSED") and sample["inboxId"] and sample["originalChannelId"]
    assert sample["associatedContactId"] and sample["latestMessageTimestamp"] >= sample["createdAt"]


def test_threads_filter_by_contact_and_status(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    sandbox.reset(threads=30)
    truth = sandbox.threads()
    contact = truth[0]["associatedContactId"]
    mine = walk_pages(api, f"{BASE}/threads", associatedContactId=contact)
    assert {t["id"] for t in mine} == {t["id"] for t in truth if t["associatedContactId"] == contact}
    open_ = walk_pages(api, f"{BASE}/threads", threadStatus="OPEN")
    assert {t["id"] for t in open_} == {t["id"] for t in truth if t["status"] == "OPEN"}
    both = api.get(f"{BASE}/threads", params={"associatedContactId": contact, "inboxId": truth[0]["inboxId"]})
    assert_crm_error(both, 400, "VALIDATION_ERROR")


def test_threads_sorted_by_latest_message_need_a_lower_bound(
    api: httpx2.Client, sandbox: SandboxAdmin
) -> None:
    truth = sandbox.threads()
    assert_crm_error(api.get(f"{BASE}/threads", params={"sort": "latestMessageTimestamp"}), 400)
    middle = sorted(t["latestMessageTimestamp"] for t in truth)[len(truth) // 2]
    newer = walk_pages(
        api, f"{BASE}/threads", sort="latestMessageTimestamp", latestMessageTimestampAfter=middle, limit="2"
    )
    stamps = [t["latestMessageTimestamp"] for t in newer]
    assert stamps == sorted(stamps) and all(s > middle for s in stamps)
    assert len(newer) == sum(1 for t in truth if t["latestMessageTimestamp"] > middle)


def test_messages_carry_senders_text_and_direction(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    thread = next(t for t in sandbox.threads() if len(t["messages"]) >= 3)
    messages = walk_pages(api, f"{BASE}/threads/{thread['id']}/messages", limit="2")
    assert [m["id"] for m in messages] == [m["id"] for m in thread["messages"]]
    first = messages[0]
    assert first["direction"] == "INCOMING" and first["senders"][0]["actorId"].startswith("V-")
    assert first["conversationsThreadId"] == thread["id"] and first["text"] and first["richText"]
    assert messages[1]["direction"] == "OUTGOING" and messages[1]["senders"][0]["actorId"].startswith("A-")
    one = api.get(f"{BASE}/threads/{thread['id']}/messages/{first['id']}").json()
    assert one == first
    assert_crm_error(api.get(f"{BASE}/threads/1/messages"), 404, "OBJECT_NOT_FOUND")


def test_conversations_need_their_scopes(sandbox: SandboxAdmin) -> None:
    token = sandbox.private_app_token(scopes=["crm.objects.contacts.read", "conversations.read"])
    thread = sandbox.threads()[0]["id"]
    with httpx2.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get(f"{BASE}/threads").status_code == 200
        refused = client.patch(f"{BASE}/threads/{thread}", json={"status": "CLOSED"})
        assert assert_crm_error(refused, 403, "MISSING_SCOPES")["errors"][0]["context"] == {
            "requiredGranularScopes": ["conversations.write"]
        }
    token = sandbox.private_app_token(scopes=["crm.objects.contacts.read"])
    with httpx2.Client(base_url=sandbox.url, headers={"Authorization": f"Bearer {token}"}) as client:
        assert_crm_error(client.get(f"{BASE}/threads"), 403, "MISSING_SCOPES")


def test_thread_lifecycle_fires_conversation_webhooks(
    api: httpx2.Client, sandbox: SandboxAdmin, webhook_inbox: WebhookInbox
) -> None:
    contact = sandbox.truth("contacts")[2]["id"]
    thread = sandbox.start_thread(contact, "Hola, ¿me ayudan? 🙂")
    tid = thread["id"]
    assert thread["associatedContactId"] == contact and thread["status"] == "OPEN"
    reply = api.post(
        f"{BASE}/threads/{tid}/messages",
        json={"type": "MESSAGE", "text": "Claro que sí", "senderActorId": "A-9000001"},
    )
    assert reply.status_code == 201, reply.text
    closed = api.patch(f"{BASE}/threads/{tid}", json={"status": "CLOSED"}).json()
    assert closed["status"] == "CLOSED" and closed["closedAt"]
    assert api.delete(f"{BASE}/threads/{tid}").status_code == 204
    assert tid not in {t["id"] for t in walk_pages(api, f"{BASE}/threads")}
    assert tid in {t["id"] for t in walk_pages(api, f"{BASE}/threads", archived="true")}
    assert api.patch(f"{BASE}/threads/{tid}", json={"archived": False}).status_code == 200
    sandbox.flush_webhooks()
    events = [e for e in webhook_inbox.events if e["objectId"] == int(tid)]
    assert [
        (e["subscriptionType"], e.get("propertyName"), e.get("propertyValue"), e.get("messageType"))
        for e in events
    ] == [
        ("conversation.creation", None, None, None),
        ("conversation.newMessage", None, None, "MESSAGE"),
        ("conversation.newMessage", None, None, "MESSAGE"),
        ("conversation.propertyChange", "status", "CLOSED", None),
        ("conversation.deletion", None, None, None),
        ("conversation.propertyChange", "isArchived", "false", None),
    ]
    assert events[2]["messageId"] == reply.json()["id"]
    assert all(isinstance(e["portalId"], int) and isinstance(e["eventId"], int) for e in events)


def test_bad_messages_are_refused(api: httpx2.Client, sandbox: SandboxAdmin) -> None:
    tid = sandbox.threads()[0]["id"]
    path = f"{BASE}/threads/{tid}/messages"
    assert_crm_error(api.post(path, json={"type": "MESSAGE", "text": "", "senderActorId": "A-1"}), 400)
    assert_crm_error(api.post(path, json={"type": "MESSAGE", "text": "hi", "senderActorId": "V-1"}), 400)
    assert_crm_error(api.post(path, json={"type": "SHOUT", "text": "hi", "senderActorId": "A-1"}), 400)
    assert_crm_error(api.patch(f"{BASE}/threads/{tid}", json={"status": "PENDING"}), 400)
