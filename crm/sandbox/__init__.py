"""The embedded HubSpot sandbox: HubSpot's API, HubSpot's paths and dialects, on loopback.

    python -m crm.sandbox --host 127.0.0.1 --port 0     # prints its base URL when ready

or in-process: ``serve(SandboxConfig(...))`` runs uvicorn in a daemon thread on a pre-bound
socket and returns a ``SandboxServer`` (``.url``, ``.state``, ``.stop()``);
``create_app(config)`` gives the ASGI app and ``asgi_client(app)`` an in-process
``httpx2.AsyncClient`` for it. ``crm.sandbox.admin.SandboxAdmin`` drives ``/_sandbox/``.

What it models: OAuth (authorize page, codes, tokens, introspection, revocation, private-app
tokens); contacts, companies, deals, tickets, notes, calls, emails, meetings and tasks
(list, read, create, update, archive, batch read/create/update/upsert/archive with
HubSpot's 207 rules, search with filters, one sort, offset paging, the 10,000 cap and
optional index lag); properties and groups; deal and ticket pipelines; owners; v4
associations; account info; the conversations inbox (threads, messages, status, archive);
the call transcripts API (read); email content redacted without ``sales-email-read``; the rolling burst limit and the search
limit; latency, jitter and injected faults (429, 5xx, slow, dropped connections); webhook
delivery with v1/v2/v3 signatures; seeded, deterministic data with hostile values; the
webhooks journal with its subscriptions, snapshots, retention and client-credentials token
(journal.py); merges, GDPR delete, restore and last-modified stamping (merges.py); the
daily limit (daily.py); index lag with per-write jitter;
several portals (``config.extra_portal_ids``, ``--portal-id`` repeated), each with its own
records, tokens, limits and webhook deliveries, told apart by the token (see state.py).

What it does NOT model (answers 404 or 400, or behaves more simply than HubSpot):

- object types other than contacts, companies, deals, tickets and the five engagements
  (products, line items, quotes, communications, custom objects and their schemas);
- creating call transcripts, HubSpot-side transcription, and the rule that only OAuth
  tokens may read transcripts;
- conversation actors, channel accounts, original message content, attachments, custom
  channels, spam handling and the purge of archived threads;
- the recycle bin's 90-day expiry;
- a public restore endpoint (HubSpot has none; ``/_sandbox/objects/{t}/{id}/restore`` stands
  in for the UI), enforcement of the GDPR email blocklist, the journal's exact file format;
- property history beyond the current value (``propertiesWithHistory`` returns one entry);
- calculated properties other than a deal's ``hs_is_closed*`` flags, rollups, lifecycle
  stage only moving forward, conditionally required properties and 2026-09 validation rules;
- pipeline and stage writes, owner teams beyond one per owner;
- association labels other than HubSpot-defined ones (no ``USER_DEFINED`` labels), company
  parent/child associations, association limits per record;
- per-app limits, the daily limit's reset in the account's time zone (it turns at UTC
  midnight), 423 locks, 477 migrations;
- an account picker that remembers the user's portals, or portals with different users or
  settings: several portals share the app's and the server's settings (only ``hub_domain``
  differs) and one signed-in user;
- exact HubSpot wording for errors HUBSPOT_API.md does not record (see messages.py);
- search relevance ranking (``query`` is a token-prefix match, not HubSpot's scoring).
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from typing import Any

import httpx2
import uvicorn

from crm.sandbox.app import SandboxApp, build_app
from crm.sandbox.config import SandboxConfig
from crm.sandbox.state import SandboxState

__all__ = ["SandboxConfig", "SandboxServer", "SandboxState", "asgi_client", "create_app", "serve"]


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    """The HubSpot-compatible ASGI app; ``app.state.sandbox`` is its ``SandboxState``."""
    return build_app(SandboxState(config or SandboxConfig()))


@dataclasses.dataclass
class SandboxServer:
    """A sandbox serving on a loopback socket in a daemon thread.

    ``state`` is the default portal's; ``state.portals`` maps every portal id to its state.
    """

    url: str
    state: SandboxState
    app: SandboxApp
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to finish, wait for the thread, and stop webhook delivery."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self.state.close()


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; with port 0 the OS picks a free port, known before serving starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# How long the sandbox keeps an idle connection open. uvicorn's default (5 s) is httpx's pool
# expiry too, so a client reusing a connection idle for just under 5 s sent its request as
# the server closed it, and got "connection reset by peer" (seen in a browser test's admin
# read, under load). Longer than any client here keeps an idle connection, the server never
# closes one first.
KEEP_ALIVE_S = 75


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    # No access log: OAuth callback and authorize URLs carry codes and state in their queries.
    options.setdefault("timeout_keep_alive", KEEP_ALIVE_S)
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **options)


def serve(config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    """Start a sandbox in a daemon thread and return once its socket accepts connections.

    The socket is bound and listening before this returns, so requests made at once wait in
    the backlog until uvicorn's loop picks them up: no polling needed.
    """
    app = create_app(config)
    url, server, thread = start_in_thread(app, host=host, port=port, name="crm-sandbox")
    return SandboxServer(url=url, state=app.state.sandbox, app=app, _server=server, _thread=thread)


def start_in_thread(
    app: Any, *, host: str, port: int, name: str
) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve ``app`` with uvicorn in a daemon thread on a socket bound before this returns.

    Returns the base URL, the server (set ``should_exit`` to stop it) and its thread.
    """
    sock = bind_socket(host, port)
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    return base_url(sock), server, thread


def asgi_client(app: SandboxApp, **options: Any) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` calling ``app`` in-process (no socket), for async tests."""
    transport = httpx2.ASGITransport(app=app)
    return httpx2.AsyncClient(transport=transport, base_url="http://sandbox.invalid", **options)
