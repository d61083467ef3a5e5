"""``python -m crm.sandbox.pipedrive``: serve the Pipedrive sandbox until interrupted.

Prints the base URL (alone on the first line of stdout) once the socket is listening.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from crm.sandbox import base_url, bind_socket, uvicorn_config
from crm.sandbox.pipedrive import create_app
from crm.sandbox.pipedrive.config import PipedriveConfig


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, PipedriveConfig]:
    defaults = PipedriveConfig()
    parser = argparse.ArgumentParser(prog="python -m crm.sandbox.pipedrive",
                                     description="Serve the embedded Pipedrive sandbox.")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--persons", type=int, default=defaults.persons)
    parser.add_argument("--organizations", type=int, default=defaults.organizations)
    parser.add_argument("--deals", type=int, default=defaults.deals)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms, help="latency per request")
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--redirect-uri", action="append", dest="redirect_uris", default=None,
                        help="allowed OAuth redirect URI (repeatable)")  # fmt: skip
    parser.add_argument("--anchor-date", default=defaults.anchor_date, help="YYYY-MM-DD seeded dates end at")
    args = parser.parse_args(argv)
    for name in ("persons", "organizations", "deals", "users"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be 0 or more")
    config = PipedriveConfig(
        seed=args.seed, persons=args.persons, organizations=args.organizations, deals=args.deals, users=args.users,
        latency_ms=args.latency_ms, client_id=args.client_id, client_secret=args.client_secret,
        redirect_uris=tuple(args.redirect_uris) if args.redirect_uris else defaults.redirect_uris,
        anchor_date=args.anchor_date,
    )  # fmt: skip
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    app = create_app(config)
    sock = bind_socket(args.host, args.port)
    print(base_url(sock), flush=True)
    counts = app.state.pipedrive.counts()
    print(
        f"Pipedrive sandbox: {counts['persons']} persons, {counts['organizations']} organizations, "
        f"{counts['deals']} deals, {counts['users']} users (seed {config.seed}). Ctrl+C stops it.",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(uvicorn_config(app))
    try:
        server.run(sockets=[sock])
    finally:
        app.state.pipedrive.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
