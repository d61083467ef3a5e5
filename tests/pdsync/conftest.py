"""Fixtures of the generic pull's tests: the Pipedrive sandbox over loopback, a cache per backend.

- ``pd_server`` (session): one Pipedrive sandbox on a loopback port.
- ``company`` (per test): a ``PipedriveAdmin`` on a freshly reset small company.
- ``pd_settings``: settings of a Pipedrive connection whose cache is ``cache_target`` (each
  test runs on SQLite, then on PostgreSQL).
- ``pd_api``: a ``PipedriveApi`` opened with a fresh API token, as pdconnect's
  ``Pipedrive.connect`` will build it (closed after the test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from crm.config import Settings, load_settings
from crm.crms import provider_for
from crm.pipedrive.client import ApiToken
from crm.pipedrive.provider import PipedriveApi
from crm.sandbox.pipedrive import PipedriveServer
from crm.sandbox.pipedrive.admin import PipedriveAdmin
from tests.pipedrive_fixtures import reset_company, serve_company

SMALL_COMPANY = {"seed": 11, "persons": 40, "organizations": 10, "deals": 15, "users": 4}


@pytest.fixture(scope="session")
def pd_server() -> Iterator[PipedriveServer]:
    yield from serve_company(SMALL_COMPANY)


@pytest.fixture
def company(pd_server: PipedriveServer) -> Iterator[PipedriveAdmin]:
    yield from reset_company(pd_server, SMALL_COMPANY)


@pytest.fixture
def pd_settings(company: PipedriveAdmin, cache_target: str) -> Settings:
    base = load_settings({"HUBSPOT_ACCESS_TOKEN": "unused", "CRM_DB": cache_target}, {})
    return dataclasses.replace(base, crm="pipedrive", base_url=company.url)


def open_api(settings: Settings, admin: PipedriveAdmin, token: str | None = None) -> PipedriveApi:
    """A Pipedrive API over an API token (a fresh one unless ``token`` is given)."""
    api = provider_for("pipedrive").open(settings, ApiToken(token or admin.api_token()), base_url=admin.url)
    assert isinstance(api, PipedriveApi)
    return api


@pytest.fixture
def pd_api(pd_settings: Settings, company: PipedriveAdmin) -> Iterator[PipedriveApi]:
    api = open_api(pd_settings, company)
    try:
        yield api
    finally:
        api.close()
