"""Contract: Pipedrive's official Node.js client (npm ``pipedrive``, pinned in node/package.json)
against the sandbox over loopback.

Nobody on the team wrote that client: it is generated from Pipedrive's OpenAPI descriptions,
so its paths, auth headers (``x-api-token``, Bearer), OAuth calls (Basic auth, ``api_domain``)
and response handling check the sandbox's. No PyPI package ships Pipedrive's client or its
OpenAPI file (docs/PIPEDRIVE_API.md). ``node/scenarios.js`` drives the client and prints what
it saw; these tests assert on the fields. ``make test`` installs it (``npm ci`` in node/).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from crm.sandbox.pipedrive.admin import PipedriveAdmin
from crm.sandbox.pipedrive.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS

NODE_DIR = Path(__file__).parent / "node"


def run_client(scenario: str, url: str, **args: Any) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "pipedrive").is_dir():
        pytest.fail(
            "Pipedrive's Node client is not installed: run `make node-deps` (npm ci in tests/sandbox_pipedrive/node)"
        )
    done = subprocess.run([node, "scenarios.js", scenario, url, json.dumps(args)], cwd=NODE_DIR, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_official_client_with_an_api_token(pipedrive: PipedriveAdmin) -> None:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = run_client("token", pipedrive.url, apiToken=pipedrive.api_token(), since=since)
    assert out["walked"] == list(range(1, 41))
    assert re.fullmatch(r"[0-9a-f]{40}", out["field"]["key"]) and out["field"]["field_type"] == "enum"
    key, they = out["field"]["key"], out["field"]["options"][1]["id"]
    assert out["created"]["name"] == "Grace Hopper" and out["created"]["custom_fields"][key] == they
    assert (
        out["updated"]["job_title"] == "Admiral"
        and out["fetched"]["emails"][0]["value"] == "grace@example.com"
    )
    assert [i["item"]["name"] for i in out["search"]["items"]] == ["Grace Hopper"]
    assert out["since"] == [out["created"]["id"]]
    assert len(out["deals"]["data"]) == 3 and out["deals"]["additional_data"]["next_cursor"]
    assert out["organizations"] == 10
    assert [p["name"] for p in out["pipelines"]] == ["Sales pipeline", "Renewals"]
    assert {s["pipeline_id"] for s in out["stages"]} == {1}
    assert out["me"]["company_domain"] == "sandbox-company"
    assert out["note"]["person_id"] == out["created"]["id"]
    assert out["deleted"] == {"id": out["created"]["id"]}
    assert out["gone"]["ok"] is False and out["gone"]["body"]["success"] is False


def test_official_client_oauth_round_trip_and_refresh(pipedrive: PipedriveAdmin) -> None:
    redirect_uri = DEFAULT_REDIRECT_URIS[0]
    code = pipedrive.oauth_code(redirect_uri)["code"]
    out = run_client("oauth", pipedrive.url, code=code, clientId=DEFAULT_CLIENT_ID, clientSecret=DEFAULT_CLIENT_SECRET,
                     redirectUri=redirect_uri)  # fmt: skip
    assert out["authorizationUrl"].startswith(pipedrive.url + "/oauth/authorize?client_id=")
    assert out["token"] == {"api_domain": pipedrive.url, "token_type": "Bearer", "expires_in": 3600}
    assert out["basePath"] == pipedrive.url + "/api/v2"
    assert out["first"] == [1, 2]
    assert out["afterRefresh"] == 1 and out["refreshed"] is True
    # The client runs its token callback twice per refresh; the sandbox saw one code and one refresh.
    assert out["updates"] and all("api_domain" in keys for keys in out["updates"])
    assert pipedrive.stats()["requests"]["POST /oauth/token"] == 2


def test_official_client_sees_pipedrive_error_bodies(pipedrive: PipedriveAdmin) -> None:
    pipedrive.configure(search_burst=2, burst_window_s=30.0)
    out = run_client("errors", pipedrive.url, apiToken=pipedrive.api_token())
    assert out["unauthorized"]["body"]["errorCode"] == 401
    assert out["missingName"]["body"]["error"] == "name is a required field"
    assert out["badField"]["body"]["success"] is False
    assert out["limited"]["body"] == {"success": False, "error": "Request over limit",
                                      "error_info": out["limited"]["body"]["error_info"], "data": None,
                                      "additional_data": None}  # fmt: skip


def test_official_client_reads_edits_and_deletes_notes_and_activities(pipedrive: PipedriveAdmin) -> None:
    since = "2000-01-01T00:00:00Z"
    out = run_client("timeline", pipedrive.url, apiToken=pipedrive.api_token(), since=since)
    assert len(out["notePage"]["ids"]) == 3 and out["notePage"]["pagination"]["next_start"] == 3
    assert (
        out["noteUpdated"]["content"] == "<p>Edited</p>" and out["noteFetched"]["content"] == "<p>Edited</p>"
    )
    assert out["noteDeleted"] is True
    assert out["activityPage"]["ids"] == [1, 2] and out["activityNext"] == [3, 4]
    fetched = out["activityFetched"]
    assert {"owner_id", "due_date", "due_time", "duration", "participants", "note", "is_deleted"} <= set(
        fetched
    )
    assert out["activityUpdated"]["done"] is True and out["activityUpdated"]["subject"] == "Done now"
    assert out["activityDeleted"] == {"id": 2}
    assert out["since"][-1] == 1 and 2 not in out["since"]
    assert out["gone"]["ok"] is False and out["gone"]["body"]["success"] is False
    assert [n for n in pipedrive.truth("notes") if n["id"] == 2][0]["is_deleted"] is True
