"""``python -m crm.sandbox``: serve the HubSpot sandbox until interrupted.

Prints the base URL (alone on the first line of stdout) once the socket is listening.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from crm.sandbox import base_url, bind_socket, create_app, uvicorn_config
from crm.sandbox.config import SandboxConfig


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SandboxConfig]:
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(
        prog="python -m crm.sandbox", description="Serve the embedded HubSpot sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--portal-id",
        type=int,
        action="append",
        dest="portal_ids",
        default=None,
        help=f"a portal to serve, repeatable; the first is the default [{defaults.portal_id}]",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--contacts", type=int, default=defaults.contacts)
    parser.add_argument("--companies", type=int, default=defaults.companies)
    parser.add_argument("--deals", type=int, default=defaults.deals)
    parser.add_argument("--owners", type=int, default=defaults.owners)
    parser.add_argument("--tickets", type=int, default=defaults.tickets)
    parser.add_argument(
        "--engagements",
        type=int,
        default=defaults.engagements,
        help="notes, calls, emails, meetings and tasks in all",
    )
    parser.add_argument("--threads", type=int, default=defaults.threads, help="conversation threads")
    parser.add_argument(
        "--latency-ms", type=float, default=defaults.latency_ms, help="base latency per request"
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=None, help="random extra latency (default: latency/4)"
    )
    parser.add_argument(
        "--burst-limit", type=int, default=defaults.burst_limit, help="requests per rolling 10 s"
    )
    parser.add_argument("--search-limit", type=int, default=defaults.search_limit, help="searches per second")
    parser.add_argument(
        "--token-ttl", type=int, default=defaults.token_ttl, help="access token lifetime, seconds"
    )
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument(
        "--redirect-uri",
        action="append",
        dest="redirect_uris",
        default=None,
        help="allowed OAuth redirect URI (repeatable)",
    )
    parser.add_argument("--webhook-url", default=defaults.webhook_url, help="where to deliver webhooks")
    parser.add_argument("--index-lag-ms", type=float, default=defaults.index_lag_ms, help="search index lag")
    parser.add_argument("--anchor-date", default=defaults.anchor_date, help="YYYY-MM-DD seeded dates end at")
    args = parser.parse_args(argv)
    for name in ("contacts", "companies", "deals", "owners", "tickets", "engagements", "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be 0 or more")
    portal_ids = args.portal_ids or [defaults.portal_id]
    if len(set(portal_ids)) != len(portal_ids) or min(portal_ids) < 1:
        parser.error("each --portal-id must be a different positive number")
    config = SandboxConfig(
        portal_id=portal_ids[0],
        extra_portal_ids=tuple(portal_ids[1:]),
        seed=args.seed,
        contacts=args.contacts,
        companies=args.companies,
        deals=args.deals,
        owners=args.owners,
        tickets=args.tickets,
        engagements=args.engagements,
        threads=args.threads,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms if args.jitter_ms is not None else args.latency_ms / 4,
        burst_limit=args.burst_limit,
        search_limit=args.search_limit,
        token_ttl=args.token_ttl,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=tuple(args.redirect_uris) if args.redirect_uris else defaults.redirect_uris,
        webhook_url=args.webhook_url,
        index_lag_ms=args.index_lag_ms,
        anchor_date=args.anchor_date,
    )
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    app = create_app(config)
    sock = bind_socket(args.host, args.port)
    # The socket listens already: connections made after this line wait in the backlog.
    print(base_url(sock), flush=True)
    for portal_id, portal in app.state.sandbox.portals.items():
        counts = portal.counts
        print(
            f"HubSpot sandbox: portal {portal_id}, {counts['contacts']} contacts, "
            f"{counts['companies']} companies, "
            f"{counts['deals']} deals, {counts['owners']} owners, {counts['tickets']} tickets, "
            f"{counts['engagements']} engagements, {counts['threads']} threads (seed {config.seed}).",
            file=sys.stderr,
            flush=True,
        )
    print("Ctrl+C stops it.", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn_config(app))
    try:
        server.run(sockets=[sock])
    finally:
        app.state.sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
