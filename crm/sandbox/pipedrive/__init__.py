"""The embedded Pipedrive sandbox: Pipedrive's API paths, shapes and errors, on loopback.

    python -m crm.sandbox.pipedrive --port 0      # prints its base URL when ready

or in-process: ``serve(PipedriveConfig(...))`` runs uvicorn in a daemon thread on a pre-bound
socket and returns a ``PipedriveServer`` (``.url``, ``.state``, ``.stop()``).
``crm.sandbox.pipedrive.admin.PipedriveAdmin`` drives ``/_sandbox/``. The facts it models,
with sources and the UNCERTAIN points, are in docs/PIPEDRIVE_API.md.

What it models: OAuth 2.0 (consent page, codes, token endpoint with client credentials in
HTTP Basic auth, refresh, revocation, ``api_domain`` pointing back at the sandbox); API tokens
(``x-api-token`` header or ``api_token`` query); API v2 persons, organizations and deals
(list with cursor paging, ``updated_since``/``updated_until``, filters and sorting; get,
create, patch, delete; search); v1 person/organization/deal fields including creating custom
fields with 40-character hash keys and option ids; v1 notes (filters, ``updated_since``,
``sort``, update, delete), v1 activities, v2 activities (cursor paging, ``updated_since``,
get, patch, delete) and v1 users; pipelines
and stages (v1 and v2); v1 webhooks API and webhooks v2 delivery with Basic auth and retries;
per-token burst limits (search separate), the daily token budget and x-daily-requests-left,
with Pipedrive's headers and 429 body; Pipedrive's error bodies; latency; seeded,
deterministic data with hostile values.

What it does NOT model (answers 404, or behaves more simply than Pipedrive):

- leads, products, projects, files, filters, mail, goals, call logs and every other object;
  v2 fields, v2 activity creation, activity types, field updates and deletes, v1 persons/deals
  endpoints;
- merges, followers, participants, changelogs, permissions and visibility groups
  (``visible_to`` is stored, never enforced), OAuth scopes (every token may do everything);
- app uninstall callbacks, several companies (one per sandbox);
- exact token costs, search ranking, and Pipedrive's wording where the docs give none
  (messages.py); webhooks v1 payloads and v2 custom-field formatting beyond the API shape;
- injected faults (5xx, dropped connections) other than the rate limits.
"""

from __future__ import annotations

import dataclasses
import threading

import uvicorn

from crm.sandbox import start_in_thread
from crm.sandbox.pipedrive.app import PipedriveApp, build_app
from crm.sandbox.pipedrive.config import PipedriveConfig
from crm.sandbox.pipedrive.state import PipedriveState

__all__ = ["PipedriveConfig", "PipedriveServer", "PipedriveState", "create_app", "serve"]


def create_app(config: PipedriveConfig | None = None) -> PipedriveApp:
    """The Pipedrive-compatible ASGI app; ``app.state.pipedrive`` is its ``PipedriveState``."""
    return build_app(PipedriveState(config or PipedriveConfig()))


@dataclasses.dataclass
class PipedriveServer:
    """A Pipedrive sandbox serving on a loopback socket in a daemon thread."""

    url: str
    state: PipedriveState
    app: PipedriveApp
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self.state.close()


def serve(
    config: PipedriveConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> PipedriveServer:
    """Start a sandbox in a daemon thread; returns once its socket is listening (no polling needed)."""
    app = create_app(config)
    url, server, thread = start_in_thread(app, host=host, port=port, name="pipedrive-sandbox")
    return PipedriveServer(url=url, state=app.state.pipedrive, app=app, _server=server, _thread=thread)
