"""What a Pipedrive pull costs in requests: links come with the list pages, types walk at once."""

from __future__ import annotations

import threading
from collections import Counter

import httpx2

from crm.config import Settings
from crm.pipedrive.client import ApiToken, PipedriveClient
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sync.runner import run_sync
from tests.pdsync.pdtruth import differences

TYPES = ("contacts", "companies", "deals")
RECORD_LISTS = {"/api/v2/persons", "/api/v2/organizations", "/api/v2/deals"}
# Bound on how long a list request waits for the other types' first pages to be in flight.
TOGETHER_S = 10.0


class CountingNetwork(httpx2.HTTPTransport):
    """Real loopback HTTP that counts requests by kind and the most list requests in flight.

    With ``together`` set, each type's first list request waits (at most TOGETHER_S) until
    that many list requests are in flight, so a pull that walked the types one after another
    would show 1 in flight and take TOGETHER_S per type.
    """

    def __init__(self, *, together: int = 0) -> None:
        super().__init__()
        self.kinds: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self.together = together
        self._first_seen: set[str] = set()
        self._lock = threading.Condition()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        params = set(request.url.params.keys())
        listing = request.url.path in RECORD_LISTS
        kind = "by-ids" if "ids" in params else "list" if listing and "updated_since" not in params else "other"
        with self._lock:
            self.kinds[kind] += 1
            if kind == "list":
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self._lock.notify_all()
                if self.together and request.url.path not in self._first_seen:
                    self._first_seen.add(request.url.path)
                    self._lock.wait_for(lambda: self.in_flight >= self.together, timeout=TOGETHER_S)
        try:
            return super().handle_request(request)
        finally:
            if kind == "list":
                with self._lock:
                    self.in_flight -= 1


def _api(company: PipedriveAdmin, network: CountingNetwork) -> PipedriveApi:
    return PipedriveApi(PipedriveClient(company.url, ApiToken(company.api_token()), transport=network))


def test_a_full_pull_of_pipedrive_reads_no_associations_and_still_caches_every_link(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    network = CountingNetwork()
    api = _api(company, network)
    try:
        run = run_sync(pd_settings, kind="full", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    # The persons' organizations and the deals' persons and organizations came with the pages.
    assert network.kinds["by-ids"] == 0
    assert network.kinds["list"] == len(TYPES)  # one page per type in this small company
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


def test_an_incremental_pull_of_pipedrive_writes_a_changed_link_without_reading_associations(
    pd_settings: Settings, company: PipedriveAdmin
) -> None:
    network = CountingNetwork()
    api = _api(company, network)
    try:
        run_sync(pd_settings, kind="full", api=api)
        person = next(p for p in company.truth("persons") if p.get("org_id"))
        other = next(o["id"] for o in company.truth("organizations") if o["id"] != person["org_id"])
        company.patch_object("persons", person["id"], {"org_id": other})
        deal = company.truth("deals")[0]
        company.patch_object("deals", deal["id"], {"person_id": None})

        run = run_sync(pd_settings, kind="incremental", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    assert network.kinds["by-ids"] == 0
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []


def test_a_full_pull_walks_the_object_types_at_once(pd_settings: Settings, company: PipedriveAdmin) -> None:
    network = CountingNetwork(together=len(TYPES))
    api = _api(company, network)
    try:
        run = run_sync(pd_settings, kind="full", api=api)
    finally:
        api.close()

    assert run["state"] == "succeeded", run.get("error")
    assert network.most_in_flight == len(TYPES)
    for object_type in TYPES:
        assert differences(pd_settings, company, object_type) == []
