"""The ways the sandbox runs: the CLI, in-process ASGI, and at size."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest

from crm.sandbox import asgi_client, create_app
from crm.sandbox.config import SandboxConfig

ROOT = Path(__file__).resolve().parents[2]


def test_cli_prints_its_url_and_serves_until_stopped() -> None:
    command = [
        sys.executable,
        "-m",
        "crm.sandbox",
        "--port",
        "0",
        "--contacts",
        "3",
        "--companies",
        "1",
        "--deals",
        "1",
        "--owners",
        "1",
        "--seed",
        "5",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        token = httpx2.post(f"{url}/_sandbox/private-app-token", json={}).json()["token"]
        page = httpx2.get(
            f"{url}/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert len(page["results"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_refuses_negative_sizes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crm.sandbox", "--contacts", "-1"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--contacts" in result.stderr


@pytest.mark.anyio
async def test_asgi_client_serves_in_process() -> None:
    app = create_app(SandboxConfig(contacts=5, companies=1, deals=1, owners=1))
    async with asgi_client(app) as client:
        token = (await client.post("/_sandbox/private-app-token", json={})).json()["token"]
        response = await client.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and len(response.json()["results"]) == 5
    assert response.headers["X-HubSpot-RateLimit-Max"] == "110"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


SCALE_PROBE = textwrap.dedent(
    """
    import json, time
    from crm.sandbox.state import SandboxState
    from crm.sandbox.config import SandboxConfig

    def rss_kb():
        with open("/proc/self/status") as status:
            return int(status.read().split("VmRSS:")[1].split()[0])

    state = SandboxState(SandboxConfig(contacts=0, companies=0, deals=0))
    before, started = rss_kb(), time.monotonic()
    state.reset({"contacts": 50000, "companies": 10000, "deals": 15000, "tickets": 0, "engagements": 0, "threads": 0})
    print(json.dumps({"seconds": time.monotonic() - started, "kb": rss_kb() - before,
                      "records": sum(len(t.records) for t in state.objects.types.values())}))
    """
)


@pytest.mark.slow
def test_seeding_stays_compact_enough_for_200000_contacts() -> None:
    # 75,000 records here; the per-record cost bounds a 200,000-contact portal (300,000 records
    # with companies and deals) to well under 600 MB.
    result = subprocess.run(
        [sys.executable, "-c", SCALE_PROBE],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["records"] == 75_000
    per_record = probe["kb"] * 1024 / probe["records"]
    assert per_record < 1800, f"{per_record:.0f} bytes per record"
    assert probe["seconds"] < 120


def test_the_sandbox_never_closes_an_idle_connection_before_a_client_drops_it() -> None:
    """uvicorn's default keep-alive (5 s) is httpx's pool expiry too: a request on a connection
    idle for just under 5 s met the server closing it (connection reset). The sandbox keeps
    idle connections longer than the clients here pool them."""
    from crm.sandbox import uvicorn_config

    config = uvicorn_config(create_app(SandboxConfig(contacts=1, companies=1, deals=1)))
    assert config.timeout_keep_alive > httpx2.Limits().keepalive_expiry * 10
