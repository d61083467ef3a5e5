"""The sync engine: pull a CRM into the cache, push local edits back (to HubSpot).

Modules:
    pull      full pull (id ranges walked by list and search at once) and incremental pull (search by
              last-modified, past the 10,000 cap), progress counters
    listpull  any CRM through the CRM interface alone (list pages with a saved cursor,
              modified-since walks, a CRM's deletion list); HubSpot keeps ``pull``
    runner    run_sync (blocking), SyncRunner (background), lease and heartbeat; picks the pull
    push      the outbox's edits and new records, with three-way conflict detection; creates by upsert
    push_logged  notes and tasks logged on records: an earlier attempt looked for, else created
    push_run  what both parts of a push share: its state, its results, which errors are retried
    edits     validate + queue edits and new contacts; conflict resolution
    pronouns  the custom "pronouns" contact property
    schedule  CRM_SYNC_INTERVAL: a sync and a push every slot, one process per slot
    verify    compare the cache with HubSpot within a request budget; fix what differs
    estimate  a full pull's requests and minutes before it starts (the Sync page)

Run state is read from the store (``db.syncstate.latest_run()`` and friends); everything
here that talks to HubSpot takes ``Settings``.
"""

from __future__ import annotations

from crm.sync.edits import (
    discard_edit,
    link_existing_contact,
    queue_edits,
    queue_new_contact,
    queue_note,
    queue_task,
    resolve_conflict,
    validation_context,
)
from crm.sync.pronouns import (
    PRONOUNS,
    PronounsSetup,
    describe_setup,
    pronouns_available,
    pronouns_property,
    set_up_pronouns,
    set_up_pronouns_everywhere,
)
from crm.sync.pull import WALKERS
from crm.sync.push import push
from crm.sync.runner import SyncRunner, run_sync
from crm.sync.runstate import OVERLAP_MS
from crm.sync.schedule import Scheduler, describe_interval, next_run_at

__all__ = [
    "OVERLAP_MS",
    "PRONOUNS",
    "WALKERS",
    "Scheduler",
    "SyncRunner",
    "describe_interval",
    "discard_edit",
    "link_existing_contact",
    "next_run_at",
    "pronouns_available",
    "pronouns_property",
    "push",
    "queue_edits",
    "queue_new_contact",
    "queue_note",
    "queue_task",
    "resolve_conflict",
    "run_sync",
    "set_up_pronouns",
    "set_up_pronouns_everywhere",
    "describe_setup",
    "PronounsSetup",
    "validation_context",
]
