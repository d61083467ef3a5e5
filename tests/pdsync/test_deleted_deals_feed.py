"""Pipedrive's deleted-deal list (v2 ``status=deleted``) as the sandbox models it, and the
``DeletionFeed`` PipedriveApi builds on it (docs/PIPEDRIVE_API.md §3)."""

from __future__ import annotations

import time

import httpx2

from crm.interface import DeletionFeed
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive.admin import PipedriveAdmin


def _deals(admin: PipedriveAdmin, token: str, **params: str) -> httpx2.Response:
    with httpx2.Client(base_url=admin.url, headers={"x-api-token": token}, trust_env=False) as http:
        return http.get("/api/v2/deals", params=params)


def test_a_deleted_deal_is_listed_by_status_deleted_and_nowhere_else(company: PipedriveAdmin) -> None:
    token = company.api_token()
    gone = company.truth("deals")[2]["id"]
    company.delete_object("deals", gone)

    deleted = _deals(company, token, status="deleted").json()["data"]
    live = _deals(company, token, limit="500").json()["data"]
    both = _deals(company, token, status="open,won,lost,deleted", limit="500").json()["data"]

    assert [(d["id"], d["is_deleted"]) for d in deleted] == [(gone, True)]
    assert gone not in {d["id"] for d in live}
    assert {d["id"] for d in both} == {d["id"] for d in live} | {gone}


def test_status_deleted_combines_with_updated_since_and_refuses_unknown_statuses(
    company: PipedriveAdmin,
) -> None:
    token = company.api_token()
    company.delete_object("deals", company.truth("deals")[0]["id"])
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))

    assert _deals(company, token, status="deleted", updated_since=later).json()["data"] == []
    refused = _deals(company, token, status="deleted,archived")
    assert refused.status_code == 400 and refused.json()["success"] is False


def test_pipedrive_reports_deleted_deals_and_no_list_for_persons(
    company: PipedriveAdmin, pd_api: PipedriveApi
) -> None:
    since_ms = int(time.time() * 1000)
    deal, person = company.truth("deals")[1]["id"], company.truth("persons")[1]["id"]
    company.delete_object("deals", deal)
    company.delete_object("persons", person)

    assert isinstance(pd_api, DeletionFeed)
    assert pd_api.deleted_since("deals", since_ms) == [str(deal)]
    assert pd_api.deleted_since("deals", since_ms + 3_600_000) == []
    assert pd_api.deleted_since("contacts", since_ms) is None
    assert pd_api.deleted_since("companies", since_ms) is None
