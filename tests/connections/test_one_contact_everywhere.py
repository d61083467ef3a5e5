"""The demo story of issue 15, end to end without a browser: one contact in HubSpot and Pipedrive.

Both sandboxes over loopback, on each backend (``cache_target``): HubSpot and Pipedrive
connected from the command line, pronouns set up in both, a contact created once that lands
in both with its pronouns (each sandbox's truth), an edit made in Pipedrive that reaches the
cache through a webhook delivered to the app's route, then Pipedrive disconnected: a new
contact is partial (HubSpot has it, Pipedrive's reason is shown) until Pipedrive is
reconnected and pushed, and the link turns synced.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from crm import connections, crms, oauth, store, subscriptions, webhooks
from crm.config import Settings, load_settings
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.links import create_contact_everywhere, edit_everywhere, link_status, push_links, statuses
from crm.sync.pronouns import pronouns_property
from tests.connections.conftest import run_cli
from tests.webhooks.deliveries import wait_until
from ui.webhook_route import pipedrive_webhook


@pytest.fixture
def webhook_url(cli_env: str) -> Iterator[str]:
    """The app's Pipedrive webhook route under uvicorn on loopback, for the home settings."""
    settings = load_settings(os.environ, {})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    asgi = Starlette(routes=[Route("/pipedrive/webhook", pipedrive_webhook, methods=["POST"])])
    asgi.state.settings = settings
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/pipedrive/webhook"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        for conn in connections.list_connections(settings, learn=False):
            webhooks.stop_worker(connections.settings_for(settings, conn))


def _ok(*args: str) -> str:
    code, out, err = run_cli(*args)
    assert code == 0, (args, out, err)
    return out


def _hubspot_contact(sandbox: SandboxAdmin, email: str) -> dict[str, Any] | None:
    return next(
        (r["properties"] for r in sandbox.truth("contacts") if (r["properties"].get("email") or "") == email),
        None,
    )


def _pipedrive_person(pipedrive: PipedriveAdmin, email: str) -> dict[str, Any] | None:
    return next(
        (
            p
            for p in pipedrive.truth("persons")
            if not p.get("is_deleted") and email in [e.get("value") for e in p.get("emails") or []]
        ),
        None,
    )


def _option(settings: Settings, label: str) -> tuple[str, str]:
    """Pipedrive's pronouns field key and the option id it gave ``label``."""
    with store.open(settings) as db:
        key = pronouns_property(db)
        assert key is not None
        options = db.queries.property_defs("contacts")[key]["options"]
    return key, next(str(o["value"]) for o in options if o["label"] == label)


def _part(settings: Settings, name: str) -> Settings:
    return connections.settings_for(settings, connections.resolve(settings, name))


def test_one_contact_lands_in_hubspot_and_pipedrive_and_follows_a_disconnect_and_reconnect(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cli_env: str, webhook_url: str
) -> None:
    hubspot_token, pipedrive_token = sandbox.private_app_token(), pipedrive.api_token()
    _ok("connect", "hubspot", "--token", hubspot_token, "--base-url", sandbox.url, "--name", "HubSpot")
    _ok(
        "connect", "pipedrive", "--token", pipedrive_token, "--base-url", pipedrive.url, "--name", "Pipedrive"
    )
    _ok("sync", "--all")
    _ok("pronouns")
    settings = load_settings(os.environ, {})
    pd_settings = connections.settings_for(settings, connections.resolve(settings, "Pipedrive"))

    # Created once, it lands in both, with its pronouns in each CRM's own terms.
    out = _ok("new-contact", "--email", "ada@links.example", "--first-name", "Ada", "--last-name", "Lovelace",
              "--pronouns", "she_her")  # fmt: skip
    assert out.splitlines()[0] == "ada@links.example\tsynced", out
    in_hubspot = _hubspot_contact(sandbox, "ada@links.example")
    assert in_hubspot is not None
    assert (in_hubspot["firstname"], in_hubspot["lastname"], in_hubspot["pronouns"]) == (
        "Ada",
        "Lovelace",
        "she_her",
    )
    person = _pipedrive_person(pipedrive, "ada@links.example")
    assert person is not None and person["name"] == "Ada Lovelace"
    key, she_her = _option(pd_settings, "She/her")
    assert str((person.get("custom_fields") or {}).get(key, person.get(key))) == she_her
    [ada] = statuses(settings, "ada@links.example")
    assert {name: link.record_id for name, link in ada.links} == {
        "HubSpot": str(next(r["id"] for r in sandbox.truth("contacts")
                            if r["properties"].get("email") == "ada@links.example")),
        "Pipedrive": str(person["id"]),
    }  # fmt: skip

    # An edit made in Pipedrive reaches the cache through a webhook to the app's route.
    with crms.provider_of(pd_settings).connect(pd_settings) as api:
        subscriptions.register(
            pd_settings, api, webhook_url, account_id=str(pipedrive.config()["company_id"])
        )
    pipedrive.patch_object("persons", int(person["id"]), {"name": "Ada King"})

    def cached_name() -> Any:
        with store.open(pd_settings) as db:
            return (db.queries.get_record("contacts", str(person["id"])) or {}).get("name")

    wait_until(lambda: cached_name() == "Ada King", within=20)

    # Pipedrive disconnected: a new contact reaches HubSpot; Pipedrive's reason is shown.
    _ok("disconnect", "Pipedrive")
    code, out, err = run_cli("new-contact", "--email", "grace@links.example", "--first-name", "Grace",
                             "--last-name", "Hopper")  # fmt: skip
    assert code == 1, out + err
    head = out.splitlines()[0]
    assert head.startswith("grace@links.example\tpartial: Pipedrive: Pipedrive is not connected"), out
    assert _hubspot_contact(sandbox, "grace@links.example") is not None
    assert _pipedrive_person(pipedrive, "grace@links.example") is None
    [grace] = statuses(settings, "grace@links.example")
    assert dict((n, link.status) for n, link in grace.links) == {"HubSpot": "synced", "Pipedrive": "error"}
    # Ada is in Pipedrive already; unreachable, her link says so too (and recovers below).
    assert link_status(settings, ada.person_id).state == "partial"

    # Asked again while Pipedrive is away: nothing is queued twice.
    again = create_contact_everywhere(settings, {"email": "grace@links.example", "first_name": "Grace",
                                                 "last_name": "Hopper"})  # fmt: skip
    assert again.person_id == grace.person_id and again.status.state == "partial"
    with store.open(pd_settings) as db:
        assert (
            len([r for r in db.outbox.rows("contacts") if r["op"] == "create" and r["status"] == "pending"])
            == 1
        )

    # Reconnected and pushed: the create that waited in Pipedrive's outbox goes, the link turns synced.
    _ok("connect", "pipedrive", "--token", pipedrive_token, "--base-url", pipedrive.url)
    code, out, err = run_cli("links", "--push")
    assert code == 0, out + err
    assert "grace@links.example\tsynced" in out.splitlines(), out
    assert "ada@links.example\tsynced" in out.splitlines(), out
    landed = _pipedrive_person(pipedrive, "grace@links.example")
    assert landed is not None and landed["name"] == "Grace Hopper"
    assert [p["name"] for p in pipedrive.truth("persons") if p["name"] == "Grace Hopper"] == ["Grace Hopper"]


def test_a_contact_either_crm_already_has_is_linked_to_not_created_twice(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, connected: Settings
) -> None:
    known = next(r for r in sandbox.truth("contacts") if r["properties"].get("email"))
    email = known["properties"]["email"]
    # Someone creates the same person in Pipedrive after the last sync (not in the cache).
    with crms.provider_of(_part(connected, "Pipedrive")).connect(_part(connected, "Pipedrive")) as api:
        api.batch_upsert("contacts", [{"email": email, "name": "Made Elsewhere"}], key="email")

    result = create_contact_everywhere(connected, {"email": email, "first_name": "Mine", "last_name": "Too"})

    assert result.status.state == "synced", result.status.text
    in_pipedrive = [
        p for p in pipedrive.truth("persons") if email in [e["value"] for e in p.get("emails") or []]
    ]
    assert len(in_pipedrive) == 1
    assert [r for r in sandbox.truth("contacts") if r["properties"].get("email") == email] == [known]
    links = {name: link.record_id for name, link in result.status.links}
    assert links == {"HubSpot": str(known["id"]), "Pipedrive": str(in_pipedrive[0]["id"])}
    # Pipedrive's name was someone else's: mine waits as a conflict for a person to decide.
    with store.open(_part(connected, "Pipedrive")) as db:
        assert [(r["property"], r["status"]) for r in db.outbox.rows("contacts") if r["op"] == "update"] == [
            ("name", "conflict")
        ]


def test_an_edit_of_a_linked_contact_goes_to_each_crm_and_a_conflict_in_one_blocks_not_the_other(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, connected: Settings
) -> None:
    created = create_contact_everywhere(
        connected,
        {"email": "ed@links.example", "first_name": "Ed", "last_name": "Wood", "phone": "+1 555 0100"},
    )
    assert created.status.state == "synced", created.status.text
    pd_id = dict((n, link.record_id) for n, link in created.status.links)["Pipedrive"]
    assert pd_id is not None
    pipedrive.patch_object("persons", int(pd_id), {"name": "Edward D. Wood"})  # unseen by the cache

    queued = edit_everywhere(connected, created.person_id, {"first_name": "Eddie", "last_name": "Wood"})
    pushed = push_links(connected)

    assert set(queued.values()) == {"queued"} and set(pushed.values()) == {"pushed"}
    assert _hubspot_contact(sandbox, "ed@links.example")["firstname"] == "Eddie"  # type: ignore[index]
    assert _hubspot_contact(sandbox, "ed@links.example")["phone"] == "+1 555 0100"  # type: ignore[index]
    person = _pipedrive_person(pipedrive, "ed@links.example")
    assert person is not None and person["name"] == "Edward D. Wood"
    with store.open(_part(connected, "Pipedrive")) as db:
        conflicts = [r for r in db.outbox.rows("contacts") if r["status"] == "conflict"]
    assert [(r["property"], r["new_value"], r["remote_value"]) for r in conflicts] == [
        ("name", "Eddie Wood", "Edward D. Wood")
    ]


def test_values_the_crms_refuse_leave_error_links_with_the_reason_and_fixed_ones_create_it_once(
    sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, connected: Settings
) -> None:
    result = create_contact_everywhere(
        connected, {"email": "zoe@links.example", "first_name": "Zoe", "pronouns": "no such pronouns"}
    )

    assert result.status.state == "local only"
    assert result.status.text == (
        "local only: HubSpot: pronouns: No pronouns option 'no such pronouns' here; "
        "Pipedrive: pronouns: No pronouns option 'no such pronouns' here"
    )
    assert _hubspot_contact(sandbox, "zoe@links.example") is None

    fixed = create_contact_everywhere(connected, {"email": "zoe@links.example", "first_name": "Zoe",
                                                  "pronouns": "They/them"})  # fmt: skip
    assert fixed.person_id == result.person_id and fixed.status.state == "synced", fixed.status.text
    assert _hubspot_contact(sandbox, "zoe@links.example")["pronouns"] == "they_them"  # type: ignore[index]
    assert _pipedrive_person(pipedrive, "zoe@links.example") is not None


def test_removing_a_connection_forgets_its_links_and_the_person_stays_linked_to_the_other(
    connected: Settings,
) -> None:
    created = create_contact_everywhere(connected, {"email": "rem@links.example", "first_name": "Rem"})
    assert created.status.state == "synced", created.status.text

    connections.remove(connected, connections.resolve(connected, "Pipedrive"))

    status = link_status(connected, created.person_id)
    assert status.state == "synced" and [name for name, _ in status.links] == ["HubSpot"]


def test_the_links_command_says_so_when_nothing_was_created_everywhere_and_names_a_missing_crm(
    cli_env: str,
) -> None:
    assert run_cli("links") == (0, "No contacts created in several CRMs yet.\n", "")
    code, _, err = run_cli("new-contact", "--email", "x@links.example", "--connection", "Nowhere")
    assert code == 2 and "No connection is called 'Nowhere'" in err


def test_a_contact_refused_before_reaching_a_crm_keeps_its_reason_when_that_crm_is_disconnected(
    connected: Settings,
) -> None:
    refused = create_contact_everywhere(connected, {"email": "kai@links.example", "pronouns": "nope"})
    oauth.disconnect(_part(connected, "Pipedrive"))

    pushed = push_links(connected)

    assert pushed[connections.resolve(connected, "Pipedrive").id].startswith("Pipedrive is not connected")
    status = link_status(connected, refused.person_id)
    assert dict(status.problems)["Pipedrive"] == "pronouns: No pronouns option 'nope' here"
