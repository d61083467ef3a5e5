"""Pipedrive webhooks end to end: the sandbox delivers over loopback to the real route under
uvicorn, the worker reads the records back through the CRM interface (issue #15).

Each test runs on both backends (``cache_target``). The Pipedrive connection's API is the
interface's ``Pipedrive().open`` over a sandbox API token (stored Pipedrive credentials are
the connect flow's business); the worker gets it through ``Pipedrive.connect``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from crm import oauth, store, subscriptions, webhooks
from crm.config import Settings
from crm.connections import remove, resolve
from crm.errors import CrmError
from crm.pipedrive.client import ApiToken
from crm.pipedrive.provider import Pipedrive, PipedriveApi
from crm.sandbox.pipedrive import PipedriveConfig, PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.store.connections import Connection
from tests.pgcluster import sqlite_only
from tests.pipedrive_fixtures import reset_company, serve_company
from tests.webhooks.deliveries import PORTAL_ID, SECRET, body_of, event, make_settings, sign, wait_until
from ui.webhook_route import hubspot_webhook, pipedrive_webhook

SMALL_COMPANY = {"seed": 7, "persons": 40, "organizations": 10, "deals": 15, "users": 4}
COMPANY_ID = PipedriveConfig().company_id
DEFS = {
    "contacts": [{"name": "name", "type": "string"}, {"name": "email", "type": "string"}],
    "deals": [{"name": "title", "type": "string"}],
}


@pytest.fixture(scope="module")
def pipedrive_sandbox() -> Iterator[PipedriveServer]:
    yield from serve_company(SMALL_COMPANY, webhook_retry_delays=(0.2,))


@pytest.fixture
def company(pipedrive_sandbox: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(pipedrive_sandbox, SMALL_COMPANY, config=False)


@dataclass
class App:
    """The app's webhook routes under uvicorn, the home settings, the Pipedrive connection."""

    home: Settings
    url: str
    pipedrive: Settings
    api: PipedriveApi


def _serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    routes = [
        Route("/hubspot/webhook", hubspot_webhook, methods=["POST"]),
        Route("/pipedrive/webhook", pipedrive_webhook, methods=["POST"]),
    ]
    asgi = Starlette(routes=routes)
    asgi.state.settings = settings
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return server, thread, sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _connect(home: Settings, **fields: Any) -> Connection:
    with store.open(home) as db:
        return db.connections.add(**fields)


@pytest.fixture
def app(
    company: PipedriveAdmin, tmp_path: Path, cache_target: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """A HubSpot connection (the home) and a Pipedrive one (a partition), webhooks registered."""
    home = make_settings(tmp_path, CRM_DB=cache_target)
    server, thread, sock, base = _serve(home)
    _connect(home, crm="hubspot", account_id=PORTAL_ID, name="HubSpot")
    conn = _connect(home, crm="pipedrive", account_id=COMPANY_ID, name="Pipedrive", base_url=company.url)
    pd_settings = home.for_connection(conn)
    with store.open(pd_settings) as db:
        for object_type, defs in DEFS.items():
            db.records.save_property_defs(object_type, defs)
    token = company.api_token()
    # The worker opens the connection's API as the connect flow will (Pipedrive.connect).
    monkeypatch.setattr(
        Pipedrive, "connect", lambda self, s: self.open(s, ApiToken(token), base_url=company.url)
    )
    api = Pipedrive().open(pd_settings, ApiToken(token), base_url=company.url)
    subscriptions.register(pd_settings, api, base + "/pipedrive/webhook", account_id=str(COMPANY_ID))
    try:
        yield App(home, base, pd_settings, api)
    finally:
        api.close()
        server.should_exit = True
        thread.join(10)
        sock.close()
        for target in (home, pd_settings):
            webhooks.stop_worker(target)


def cached(settings: Settings, object_type: str, record_id: str) -> dict[str, Any]:
    with store.open(settings) as db:
        return db.queries.get_record(object_type, record_id) or {}


def inbox_events(settings: Settings) -> list[dict[str, Any]]:
    with store.open(settings) as db:
        return [e.payload for e in db.inbox.pending_events(max_attempts=1000, limit=1000)]


def received(settings: Settings) -> int:
    return int(webhooks.live_status(settings)["received"])


def _pipedrive_body(entity_id: int, *, company_id: int = COMPANY_ID, event_id: str = "evt-1") -> bytes:
    meta = {
        "action": "change", "entity": "person", "entity_id": str(entity_id), "id": event_id,
        "company_id": str(company_id), "webhook_id": "1", "timestamp": 1_700_000_000, "version": "2.0",
    }  # fmt: skip
    return json.dumps({"meta": meta, "data": {"id": entity_id, "name": "Forged"}, "previous": None}).encode()


def _basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": "Basic " + pair, "Content-Type": "application/json"}


def test_registering_subscribes_the_kept_entities_with_credentials_only_the_partition_holds(
    company: PipedriveAdmin, app: App
) -> None:
    hooks = company.webhooks()["webhooks"]
    assert sorted(h["event_object"] for h in hooks) == ["activity", "deal", "note", "organization", "person"]
    assert {h["subscription_url"] for h in hooks} == {app.url + "/pipedrive/webhook"}
    sub = subscriptions.stored(app.pipedrive)
    assert sub is not None and len(sub.ids) == 5
    password = subscriptions.secret(app.pipedrive, str(COMPANY_ID)).split(":", 1)[1]
    assert len(password) >= 40 and password not in sub.ciphertext
    # The other connection holds none, and the password is stored only encrypted.
    assert subscriptions.stored(app.home) is None
    with store.open(app.pipedrive) as db:
        assert password not in (db.meta.get(subscriptions.SUBSCRIPTION_KEY) or "")


def test_an_edit_in_pipedrive_reaches_the_cached_row_through_a_webhook(
    company: PipedriveAdmin, app: App
) -> None:
    company.patch_object("persons", 4, {"name": "Wilhelmina Webhook"})
    wait_until(lambda: cached(app.pipedrive, "contacts", "4").get("name") == "Wilhelmina Webhook", within=15)
    truth = next(p for p in company.truth("persons") if p["id"] == 4)
    assert cached(app.pipedrive, "contacts", "4")["updated_at"] == truth["update_time"]
    company.patch_object("deals", 3, {"title": "Renamed by hook"})
    wait_until(lambda: cached(app.pipedrive, "deals", "3").get("title") == "Renamed by hook", within=15)
    deliveries = company.webhooks()["deliveries"]
    assert deliveries and all(d["status"] == 204 for d in deliveries)
    assert webhooks.refusals(app.home).counts() == {}


def test_a_delete_in_pipedrive_archives_the_cached_row(company: PipedriveAdmin, app: App) -> None:
    company.patch_object("persons", 6, {"name": "Soon Gone"})
    wait_until(lambda: cached(app.pipedrive, "contacts", "6").get("name") == "Soon Gone", within=15)
    assert cached(app.pipedrive, "contacts", "6")["archived"] == 0
    company.delete_object("persons", 6)
    wait_until(lambda: cached(app.pipedrive, "contacts", "6").get("archived") == 1, within=15)


def test_a_note_and_an_activity_edited_or_deleted_in_pipedrive_follow_on_the_timeline_through_webhooks(
    company: PipedriveAdmin, app: App
) -> None:
    """Notes and activities are read back through the CRM interface (``read_interactions``),
    never taken from the delivery: the cached text is Pipedrive's, made plain."""
    company.patch_object("notes", 1, {"content": "<p>Changed <b>by hook</b></p>"})
    company.patch_object("activities", 1, {"subject": "Hooked", "type": "call"})

    def body() -> str | None:
        with store.open(app.pipedrive) as db:
            return db.interactions.body("notes", "1")

    def activity() -> dict[str, Any] | None:
        with store.open(app.pipedrive) as db:
            return db.interactions.get("calls", "1")

    wait_until(lambda: body() == "Changed by hook", within=15)
    wait_until(lambda: (activity() or {}).get("subject") == "Hooked", within=15)
    with store.open(app.pipedrive) as db:
        assert ("contacts", "1") in db.interactions.links_of("notes", "1")
    company.delete_object("activities", 1)
    wait_until(lambda: (activity() or {}).get("archived") == 1, within=15)


def test_forged_credentials_are_refused_with_nothing_stored(app: App) -> None:
    sub = subscriptions.stored(app.pipedrive)
    assert sub is not None
    before = received(app.pipedrive)
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        wrong = http.post(
            "/pipedrive/webhook", content=_pipedrive_body(7), headers=_basic(sub.user, "guessed")
        )
        bare = http.post("/pipedrive/webhook", content=_pipedrive_body(7, event_id="evt-2"))
    assert (wrong.status_code, bare.status_code) == (401, 401)
    assert wrong.text == bare.text == "Unauthorized"
    assert received(app.pipedrive) == before and inbox_events(app.pipedrive) == []
    assert cached(app.pipedrive, "contacts", "7") == {}
    # Counted under the connection the delivery names: its pages show them, with its advice.
    assert webhooks.refusals(app.pipedrive).counts() == {"bad_signature": 1, "missing_headers": 1}
    assert webhooks.refusals(app.home).counts() == {}


def test_a_delivery_for_an_unknown_company_is_refused_and_counted(app: App) -> None:
    user, password = subscriptions.secret(app.pipedrive, str(COMPANY_ID)).split(":", 1)
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        # Even with the right credentials: the company is not a connection here.
        answer = http.post(
            "/pipedrive/webhook", content=_pipedrive_body(7, company_id=999), headers=_basic(user, password)
        )
    assert answer.status_code == 400
    assert webhooks.refusals(app.home).counts() == {"unknown_account": 1}
    assert inbox_events(app.pipedrive) == [] and inbox_events(app.home) == []


def test_hubspot_and_pipedrive_deliveries_each_reach_only_their_own_connection(
    company: PipedriveAdmin, app: App
) -> None:
    company.patch_object("persons", 9, {"name": "Only Pipedrive"})
    wait_until(lambda: cached(app.pipedrive, "contacts", "9").get("name") == "Only Pipedrive", within=15)
    hubspot_body = body_of(event(501, 9, "contact.propertyChange"))
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        answer = http.post("/hubspot/webhook", content=hubspot_body, headers=sign(app.home, hubspot_body))
    assert answer.status_code == 204
    # HubSpot's event waits in the home's inbox (its worker has no HubSpot to read from);
    # the Pipedrive partition's inbox holds only Pipedrive's, and the home has no row 9.
    wait_until(lambda: received(app.home) == 1, within=5)
    assert [e["eventId"] for e in inbox_events(app.home)] == [501]
    with store.open(app.pipedrive) as db:
        assert db.inbox.status(max_attempts=webhooks.MAX_ATTEMPTS)["received"] >= 1
        assert all("change" in e for e in inbox_events(app.pipedrive))
    assert cached(app.home, "contacts", "9").get("name") is None


def test_unregistering_removes_the_webhooks_at_pipedrive_and_later_deliveries_are_refused(
    company: PipedriveAdmin, app: App
) -> None:
    sub = subscriptions.stored(app.pipedrive)
    assert sub is not None
    old_user, old_password = subscriptions.secret(app.pipedrive, str(COMPANY_ID)).split(":", 1)
    assert subscriptions.unregister(app.pipedrive, app.api) == 5
    assert company.webhooks()["webhooks"] == [] and subscriptions.stored(app.pipedrive) is None
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        answer = http.post(
            "/pipedrive/webhook", content=_pipedrive_body(7), headers=_basic(old_user, old_password)
        )
    assert answer.status_code == 401


def test_a_redelivered_event_is_stored_once_and_the_connection_reports_live_updates(
    company: PipedriveAdmin, app: App
) -> None:
    user, password = subscriptions.secret(app.pipedrive, str(COMPANY_ID)).split(":", 1)
    body = _pipedrive_body(12, event_id="same-event")
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        answers = [
            http.post("/pipedrive/webhook", content=body, headers=_basic(user, password)) for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [204, 204]
    wait_until(lambda: webhooks.live_status(app.pipedrive)["processed"] == 1, within=15)
    status = webhooks.live_status(app.pipedrive)
    assert (status["received"], status["duplicates"]) == (1, 1)
    assert status["enabled"] and status["reason"] == f"Pipedrive delivers to {app.url}/pipedrive/webhook"
    # The worker read the person back: Pipedrive's name, not the one in the delivery.
    truth = next(p for p in company.truth("persons") if p["id"] == 12)
    assert cached(app.pipedrive, "contacts", "12")["name"] == truth["name"] != "Forged"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"meta": {"company_id": "9" * 30}}).encode(),
        b'{"meta": {"company_id": true}}',
    ],
)
def test_a_delivery_that_names_no_readable_company_is_refused_as_malformed(app: App, body: bytes) -> None:
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        answer = http.post("/pipedrive/webhook", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert webhooks.refusals(app.home).counts() == {"malformed": 1}


def test_registering_again_at_the_same_url_changes_nothing_and_a_new_url_replaces_the_webhooks(
    company: PipedriveAdmin, app: App
) -> None:
    first = subscriptions.stored(app.pipedrive)
    assert (
        subscriptions.ensure_registered(app.pipedrive, app.api, url=app.url + "/pipedrive/webhook") == first
    )
    moved = subscriptions.ensure_registered(app.pipedrive, app.api, url=app.url + "/elsewhere")
    assert moved is not None and first is not None and set(moved.ids).isdisjoint(first.ids)
    assert {h["subscription_url"] for h in company.webhooks()["webhooks"]} == {app.url + "/elsewhere"}
    assert len(company.webhooks()["webhooks"]) == 5


def test_removing_the_connection_removes_its_webhooks_at_pipedrive(company: PipedriveAdmin, app: App) -> None:
    conn = resolve(app.home, f"pipedrive-{COMPANY_ID}")
    remove(app.home, conn)
    assert company.webhooks()["webhooks"] == []
    with httpx2.Client(base_url=app.url, trust_env=False, timeout=10) as http:
        answer = http.post("/pipedrive/webhook", content=_pipedrive_body(7))
    assert answer.status_code == 400
    assert webhooks.refusals(app.home).counts() == {"unknown_account": 1}


@sqlite_only  # the disconnect is the subject, not the store
def test_disconnecting_removes_the_webhooks_at_pipedrive_and_reconnecting_registers_them_again(
    company: PipedriveAdmin, app: App
) -> None:
    url = app.url + "/pipedrive/webhook"
    configured = dataclasses.replace(app.home, pipedrive_webhook_url=url)
    assert subscriptions.ensure_all(configured) == 0  # registered already (the fixture)

    result = oauth.disconnect(app.pipedrive)

    assert result.webhooks == "" and result.message == result.detail
    assert company.webhooks()["webhooks"] == [] and subscriptions.stored(app.pipedrive) is None
    # A reconnect asks for the webhooks again (the connect flows call ensure_all): registered.
    assert subscriptions.ensure_all(configured) == 1
    hooks = company.webhooks()["webhooks"]
    assert len(hooks) == 5 and {h["subscription_url"] for h in hooks} == {url}


@sqlite_only
def test_a_disconnect_whose_webhooks_pipedrive_refuses_to_remove_still_disconnects_and_says_so(
    company: PipedriveAdmin, app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    password = subscriptions.secret(app.pipedrive, str(COMPANY_ID)).split(":", 1)[1]
    # The stored token no longer works at Pipedrive (regenerated there).
    monkeypatch.setattr(
        Pipedrive, "connect", lambda self, s: self.open(s, ApiToken("regenerated"), base_url=company.url)
    )

    result = oauth.disconnect(app.pipedrive)

    assert "5 webhook(s) could not be removed at Pipedrive" in result.webhooks
    assert result.webhooks in result.message
    assert len(company.webhooks()["webhooks"]) == 5  # still there: the person is told to remove them
    with store.open(app.pipedrive) as db:
        assert db.auth.read_tokens() == {} and subscriptions.stored(app.pipedrive) is None
    assert "could not be removed at Pipedrive" in caplog.text
    assert password not in caplog.text and "regenerated" not in caplog.text


def test_at_start_a_pipedrive_connection_without_webhooks_registers_them_once(
    company: PipedriveAdmin, app: App
) -> None:
    subscriptions.unregister(app.pipedrive, app.api)
    url = app.url + "/pipedrive/webhook"
    configured = dataclasses.replace(app.home, pipedrive_webhook_url=url)
    assert subscriptions.ensure_all(configured) == 1
    assert subscriptions.ensure_all(configured) == 0
    assert {h["subscription_url"] for h in company.webhooks()["webhooks"]} == {url}
    assert len(company.webhooks()["webhooks"]) == 5
    # The HubSpot connection registers nothing: HubSpot's webhooks live in its app settings.
    assert subscriptions.stored(app.home) is None
    company.patch_object("persons", 14, {"name": "After Restart"})
    wait_until(lambda: cached(app.pipedrive, "contacts", "14").get("name") == "After Restart", within=15)


def test_demo_mode_registers_the_apps_loopback_route_only_for_a_sandbox_on_loopback(
    company: PipedriveAdmin, app: App, tmp_path: Path
) -> None:
    subscriptions.unregister(app.pipedrive, app.api)
    loopback = app.url + "/pipedrive/webhook"
    assert subscriptions.ensure_all(app.home, loopback_url=loopback) == 1
    assert {h["subscription_url"] for h in company.webhooks()["webhooks"]} == {loopback}
    # Without a URL configured and without a loopback one, nothing is registered anywhere.
    other = make_settings(tmp_path / "other", CRM_DB=str(tmp_path / "other.db"))
    _connect(other, crm="pipedrive", account_id=77, name="Real one", base_url="https://acme.pipedrive.com")
    assert subscriptions.ensure_all(other, loopback_url=loopback) == 0


def test_the_command_line_shows_and_registers_a_connections_webhooks(
    company: PipedriveAdmin, app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "HUBSPOT_CLIENT_ID": "webhook-test-app",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "CRM_SECRET_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "CRM_DB": app.home.db,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PIPEDRIVE_WEBHOOK_URL", raising=False)
    name = f"pipedrive-{COMPANY_ID}"
    assert subscriptions._main(["show", name]) == 0
    assert capsys.readouterr().out.strip() == f"5 webhook(s) deliver to {app.url}/pipedrive/webhook"
    assert subscriptions._main(["register", name]) == 2
    assert "PIPEDRIVE_WEBHOOK_URL" in capsys.readouterr().err
    monkeypatch.setenv("PIPEDRIVE_WEBHOOK_URL", app.url + "/moved")
    assert subscriptions._main(["register", name]) == 0
    assert {h["subscription_url"] for h in company.webhooks()["webhooks"]} == {app.url + "/moved"}
    assert subscriptions._main(["unregister", name]) == 0
    assert company.webhooks()["webhooks"] == [] and subscriptions.stored(app.pipedrive) is None


def test_a_registration_pipedrive_refuses_part_way_leaves_no_webhook_and_no_credentials(
    company: PipedriveAdmin, app: App
) -> None:
    subscriptions.unregister(app.pipedrive, app.api)
    # Pipedrive allows 40 webhooks per user: with 38 taken, the third of ours is refused.
    for n in range(38):
        app.api.client.add_webhook(f"{app.url}/other/{n}", user="u", password="p")
    with pytest.raises(CrmError):
        subscriptions.register(app.pipedrive, app.api, app.url + "/pipedrive/webhook")
    urls = {h["subscription_url"] for h in company.webhooks()["webhooks"]}
    assert len(urls) == 38 and app.url + "/pipedrive/webhook" not in urls
    assert subscriptions.stored(app.pipedrive) is None


def test_registering_after_the_stored_registration_was_lost_replaces_the_webhooks_left_at_pipedrive(
    company: PipedriveAdmin, app: App
) -> None:
    with store.open(app.pipedrive) as db:
        db.meta.put(subscriptions.SUBSCRIPTION_KEY, None)
    subscriptions.register(app.pipedrive, app.api, app.url + "/pipedrive/webhook")
    assert len(company.webhooks()["webhooks"]) == 5
    company.patch_object("persons", 15, {"name": "Still Delivered"})
    wait_until(lambda: cached(app.pipedrive, "contacts", "15").get("name") == "Still Delivered", within=15)
    assert all(d["status"] == 204 for d in company.webhooks()["deliveries"])
