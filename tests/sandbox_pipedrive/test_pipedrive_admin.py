"""The admin API and the command line: deterministic seeds, settings, truth."""

from __future__ import annotations

import subprocess
import sys

import httpx2
import pytest

from crm.sandbox.pipedrive.admin import PipedriveAdmin


def test_the_same_seed_gives_the_same_company(pipedrive: PipedriveAdmin) -> None:
    pipedrive.reset(seed=11, persons=20, anchor_date="2026-01-31")
    first = pipedrive.truth("persons")
    pipedrive.reset(seed=11, persons=20, anchor_date="2026-01-31")
    assert pipedrive.truth("persons") == first
    pipedrive.reset(seed=12, persons=20, anchor_date="2026-01-31")
    assert pipedrive.truth("persons") != first


def test_seeded_data_holds_hostile_and_non_latin_values(pipedrive: PipedriveAdmin) -> None:
    names = {p["name"] for p in pipedrive.truth("persons")}
    assert {"<script>alert(1)</script>", "さくら 山田", "Анна Иванова"} <= names


def test_unknown_settings_and_reset_options_are_refused(pipedrive: PipedriveAdmin) -> None:
    with pytest.raises(httpx2.HTTPStatusError):
        pipedrive.configure(burst=5)
    with pytest.raises(httpx2.HTTPStatusError):
        pipedrive.configure(api_token_burst="many")
    with pytest.raises(httpx2.HTTPStatusError):
        pipedrive.reset(contacts=5)
    assert "client_secret" not in pipedrive.config()


def test_admin_delete_shows_in_truth_and_hides_from_the_api(
    pipedrive: PipedriveAdmin, api: httpx2.Client
) -> None:
    pipedrive.delete_object("organizations", 2)
    assert api.get("/api/v2/organizations/2").status_code == 404
    assert [o["id"] for o in pipedrive.truth("organizations") if o["is_deleted"]] == [2]


def test_command_line_prints_its_url_and_serves(tmp_path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "crm.sandbox.pipedrive", "--port", "0", "--persons", "5", "--organizations", "1",
         "--deals", "2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        with PipedriveAdmin(url) as admin:
            assert admin.reset(persons=5, organizations=1, deals=2)["persons"] == 5
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_bad_anchor_date_is_refused_and_leaves_the_company_as_it_was(pipedrive: PipedriveAdmin) -> None:
    before = pipedrive.truth("organizations")
    with pytest.raises(httpx2.HTTPStatusError):
        pipedrive.reset(anchor_date="31/01/2026")
    assert pipedrive.truth("organizations") == before
    assert pipedrive.reset(persons=3)["persons"] == 3
