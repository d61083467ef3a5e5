"""A CRM names the interactions its sync keeps (``Words.interactions``: the Sync page's count
and run-history column) exactly when its sync reads them: HubSpot's tuned pull does, and so
does the generic pull of an API that lists interactions (Pipedrive's notes and activities)."""

from __future__ import annotations

import typing

import pytest

from crm import crms
from crm.interface import ListsInteractions
from crm.sync.runner import TunedPull


@pytest.mark.parametrize("name", crms.names())
def test_a_crm_names_its_interactions_exactly_when_its_sync_reads_them(name: str) -> None:
    provider = crms.provider_for(name)
    api = typing.get_type_hints(type(provider).open)["return"]
    reads = isinstance(provider, TunedPull) or issubclass(api, ListsInteractions)
    assert (provider.words.interactions is not None) == reads
    assert bool(provider.words.interactions_detail) == reads
