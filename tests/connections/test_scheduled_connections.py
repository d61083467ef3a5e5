"""The scheduled sync serves every connection: a HubSpot portal and a Pipedrive company, each
on its own partition and lease, a failure of one leaving the other's slot untouched."""

from __future__ import annotations

import socket

import pytest
from cryptography.fernet import Fernet

from crm import connections, oauth, store
from crm.config import Settings, load_settings
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import PipedriveApi
from crm.pipedrive_auth import connect_api_token
from crm.sandbox.admin import SandboxAdmin
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.store import syncstate
from crm.sync import Scheduler, queue_edits

INTERVAL = 900


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _live(records: list[dict]) -> set[str]:
    return {str(r["id"]) for r in records if not r.get("archived") and not r.get("is_deleted")}


@pytest.fixture
def two_crms(sandbox: SandboxAdmin, pipedrive: PipedriveAdmin, cache_target: str) -> tuple[Settings, dict]:
    """A HubSpot portal ("Marketing") and a Pipedrive company ("Sales") connected side by side."""
    settings = load_settings({"CRM_DB": cache_target, "CRM_SECRET_KEY": Fernet.generate_key().decode()}, {})
    marketing, _ = oauth.connect_private_app(
        settings, sandbox.private_app_token(), name="Marketing", base_url=sandbox.url
    )
    sales, _ = connect_api_token(settings, pipedrive.api_token(), base_url=pipedrive.url, name="Sales")
    return settings, {"Marketing": marketing, "Sales": sales}


def _cached_ids(settings: Settings, conn: connections.Connection, object_type: str) -> set[str]:
    with store.open(settings.for_connection(conn)) as db:
        cached, _ = db.queries.query_records(object_type, limit=1000)
    return {str(i) for i in cached.index}


def test_a_scheduled_slot_syncs_and_pushes_a_hubspot_portal_and_a_pipedrive_company(
    two_crms: tuple[Settings, dict], sandbox: SandboxAdmin, pipedrive: PipedriveAdmin
) -> None:
    settings, conns = two_crms
    clock = FakeClock(5_000 * INTERVAL + 3)
    scheduler = Scheduler(settings, interval_s=INTERVAL, clock=clock)

    first = scheduler.tick()

    assert first is not None
    slots = {one.connection.name: one for one in first["connections"].values()}
    assert sorted(slots) == ["Marketing", "Sales"]
    for one in slots.values():
        assert one.error is None and one.skipped is None
        assert one.sync["state"] == "succeeded" and one.sync["trigger"] == "schedule"
    assert _cached_ids(settings, conns["Marketing"], "contacts") == _live(sandbox.truth("contacts"))
    assert _cached_ids(settings, conns["Sales"], "contacts") == _live(pipedrive.truth("persons"))
    assert _cached_ids(settings, conns["Sales"], "deals") == _live(pipedrive.truth("deals"))

    # An edit queued on the Pipedrive company goes out with the next slot's push.
    person = sorted(_cached_ids(settings, conns["Sales"], "contacts"), key=int)[0]
    queue_edits(
        settings.for_connection(conns["Sales"]), "contacts", {person: {"name": "Ada Scheduled"}}, by="kim"
    )
    assert scheduler.tick() is None  # the same slot runs once
    clock.now += INTERVAL
    second = scheduler.tick()

    assert second is not None
    pushed = {one.connection.name: one.push for one in second["connections"].values()}
    assert pushed["Sales"]["pushed"] == 1 and pushed["Marketing"]["pushed"] == 0
    truth = next(p for p in pipedrive.truth("persons") if str(p["id"]) == person)
    assert truth["name"] == "Ada Scheduled"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_or_unconnected_connection_leaves_the_others_slot_untouched(
    two_crms: tuple[Settings, dict], sandbox: SandboxAdmin, pipedrive: PipedriveAdmin
) -> None:
    settings, conns = two_crms
    # A third connection registered without credentials.
    connections.add(settings, account_id=4242, crm="pipedrive", base_url=pipedrive.url, name="Idle")
    down = f"http://127.0.0.1:{_closed_port()}"

    def clients(chosen: Settings) -> PipedriveApi | None:
        """Sales's Pipedrive is unreachable (nothing listens at its port); the rest open their own."""
        if chosen.connection == conns["Sales"].id:
            return PipedriveApi(PipedriveClient(down, ApiToken("any"), max_retries=1))
        return None

    result = Scheduler(
        settings, interval_s=INTERVAL, clock=FakeClock(6_000 * INTERVAL), client_factory=clients
    ).tick()

    assert result is not None
    slots = {one.connection.name: one for one in result["connections"].values()}
    assert slots["Marketing"].sync["state"] == "succeeded" and slots["Marketing"].error is None
    assert _cached_ids(settings, conns["Marketing"], "contacts") == _live(sandbox.truth("contacts"))
    assert slots["Sales"].sync is None and slots["Sales"].error.startswith("Unreachable")
    with store.open(settings.for_connection(conns["Sales"])) as db:
        assert db.syncstate.latest_run()["state"] == "failed"
    assert slots["Idle"].skipped == "disconnected" and slots["Idle"].sync is None


def test_a_connection_syncing_by_hand_is_skipped_while_the_other_runs_its_slot(
    two_crms: tuple[Settings, dict], pipedrive: PipedriveAdmin
) -> None:
    settings, conns = two_crms
    with store.open(settings.for_connection(conns["Marketing"])) as db:
        held = db.syncstate.start_run(
            kind="full", trigger="cli", started_by="kim", owner=syncstate.new_owner()
        )
    assert held is not None

    result = Scheduler(settings, interval_s=INTERVAL, clock=FakeClock(7_000 * INTERVAL)).tick()

    assert result is not None
    slots = {one.connection.name: one for one in result["connections"].values()}
    assert slots["Marketing"].skipped == "a sync is already running" and slots["Marketing"].sync is None
    assert slots["Sales"].sync["state"] == "succeeded"
    assert _cached_ids(settings, conns["Sales"], "contacts") == _live(pipedrive.truth("persons"))
