"""The ``new-contact`` and ``links`` commands (one contact in several CRMs, ``crm.sync.links``).

Kept beside ``crm.__main__`` so that module only wires them in (``add_commands``, ``HANDLERS``)::

    python -m crm new-contact --email E --first-name F --last-name L [--phone P] [--pronouns P]
                              [--connection NAME ...]
    python -m crm links [EMAIL] [--push]

``new-contact`` queues the contact in each named connection (default: all), pushes each
one, and prints one line per connection with its link's status; exit 1 when any CRM
does not hold it yet. ``links`` prints every linked person (or those with EMAIL): one
line per person with its state ("synced", "partial: ...", "local only"), then one
indented line per connection; ``--push`` pushes every connection first (after a reconnect).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, TextIO

from crm.config import load_settings

if TYPE_CHECKING:  # the sync engine is imported when a command runs, not when the CLI starts
    from crm.sync.links import PersonStatus

EXIT_OK, EXIT_PROBLEMS = 0, 1


def add_commands(commands: Any) -> None:
    """Add the two subcommands to ``python -m crm``'s parser."""
    new = commands.add_parser(
        "new-contact", help="create one contact in every connected CRM (or those named)"
    )
    new.add_argument("--email", required=True)
    new.add_argument("--first-name", default=None)
    new.add_argument("--last-name", default=None)
    new.add_argument("--phone", default=None)
    new.add_argument("--pronouns", default=None, help='e.g. she_her or "She/her" (set up with `pronouns`)')
    new.add_argument(
        "--connection", action="append", default=None, help="a connection's id or name (repeat; default: all)"
    )
    links = commands.add_parser("links", help="where each contact created everywhere stands, per CRM")
    links.add_argument("email", nargs="?", default=None)
    links.add_argument("--push", action="store_true", help="push every connection first (after a reconnect)")


def _print(status: PersonStatus, out: TextIO) -> None:
    print(f"{status.email or status.person_id}\t{status.text}", file=out)
    for name, link in status.links:
        detail = f"\t{link.error}" if link.error else ""
        print(f"  {name}\t{link.status}\t{link.record_id or '-'}{detail}", file=out)


def cmd_new_contact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.sync.links import create_contact_everywhere

    values = {
        "email": args.email,
        "first_name": args.first_name,
        "last_name": args.last_name,
        "phone": args.phone,
        "pronouns": args.pronouns,
    }
    result = create_contact_everywhere(
        load_settings(os.environ, {}), values, args.connection, by=os.environ.get("USER")
    )
    _print(result.status, out)
    return EXIT_OK if result.status.state == "synced" else EXIT_PROBLEMS


def cmd_links(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from crm.sync.links import push_links, statuses

    settings = load_settings(os.environ, {})
    if args.push:
        for connection_id, outcome in push_links(settings, by=os.environ.get("USER")).items():
            print(f"push {connection_id}: {outcome}", file=out if outcome == "pushed" else err)
    found = statuses(settings, args.email)
    if not found:
        print(
            "No contacts created in several CRMs yet." if args.email is None else "No such contact.", file=out
        )
        return EXIT_OK
    for status in found:
        _print(status, out)
    return EXIT_OK


HANDLERS = {"new-contact": cmd_new_contact, "links": cmd_links}
