"""Sync bookkeeping (tables ``sync_runs``, ``sync_cursors``, ``sync_lease``): runs with live
progress, per-type cursors, and the one-run lease.

The lease (``sync_lease``) makes one sync per portal at a time across threads and
processes: a row naming its owner (``host:pid:token``) and an expiry that the running
sync pushes forward with each heartbeat. A lease whose expiry has passed is free; so is
one held by a process on this host that no longer exists (a ``kill -9`` frees it at
once instead of after the expiry).

A run row whose process is gone (its lease is free) or whose heartbeat stopped is
reported as ``interrupted``; the next run that takes the lease also marks it so in the
table.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from crm.store.owner import TableOwner
from crm.store.values import now_iso, parse_datetime

LEASE_TTL_S = 30.0
# A running run whose heartbeat is older than this is shown as interrupted.
STALE_AFTER_S = 20.0
SYNC_LEASE = "sync"
PUSH_LEASE = "push"
SCHEDULE_SLOT = "schedule"
# A type's deletion sweep is kept in ``sync_cursors`` under the type's name and this suffix
# (as HubSpot's pull keeps its threads' cursor under a name of its own): ``modified_since_ms``
# holds when the last complete look for deletions began, ``full_after`` its note (how it
# looked, and the last skip and why). No schema change, and ``forget_cursors`` forgets it.
SWEEP_SUFFIX = ":sweep"

_RUN_FIELDS = ("phase", "object_type", "done", "total", "requests", "retries", "rate_limited")


def new_owner() -> str:
    """A lease owner id for this process: host, pid and a random token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _owner_is_dead(owner: str | None) -> bool:
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _lease_free(row: tuple[Any, ...] | None, owner: str, now: float) -> bool:
    if row is None:
        return True
    holder, expires_at = row[0], float(row[1] or 0)
    return holder == owner or expires_at <= now or _owner_is_dead(holder)


def _run_dict(columns: list[str], row: tuple[Any, ...], now: float, live_run: int | None) -> dict[str, Any]:
    run = dict(zip(columns, row, strict=True))
    run["counts"] = json.loads(run.get("counts") or "{}")
    if run["state"] == "running":
        beat = run.get("heartbeat_at") or run["started_at"]
        # No live lease for it (its process died) or no heartbeat for a while: not running.
        if run["id"] != live_run or now - _epoch(beat) > STALE_AFTER_S:
            run["state"] = "interrupted"
    end = run.get("finished_at") or (None if run["state"] == "running" else run.get("heartbeat_at"))
    end_s = _epoch(end) if end else now
    run["duration_s"] = max(0.0, end_s - _epoch(run["started_at"]))
    return run


def _epoch(iso: str) -> float:
    moment = parse_datetime(iso)
    return moment.timestamp() if moment else 0.0


class SyncState(TableOwner):
    """The sync_runs, sync_cursors and sync_lease tables."""

    def acquire_lease(self, name: str, owner: str, *, ttl_s: float = LEASE_TTL_S) -> bool:
        """Take the lease ``name`` for ``owner`` unless someone alive holds it."""
        now = time.time()
        with self.db.atomic():
            row = self._locked_lease(name)
            if not _lease_free(row, owner, now):
                return False
            self.conn.execute(
                "INSERT INTO sync_lease (name, owner, run_id, expires_at) VALUES (?, ?, NULL, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, run_id = NULL, expires_at = excluded.expires_at",
                (name, owner, now + ttl_s),
            )
        return True

    def renew_lease(self, name: str, owner: str, *, ttl_s: float = LEASE_TTL_S) -> bool:
        """Push the lease's expiry forward; False if ``owner`` no longer holds it."""
        with self.db.atomic():
            changed = self.conn.execute(
                "UPDATE sync_lease SET expires_at = ? WHERE name = ? AND owner = ?",
                (time.time() + ttl_s, name, owner),
            ).rowcount
        return bool(changed)

    def _locked_lease(self, name: str) -> tuple[Any, ...] | None:
        """The lease row (owner, expires_at), locked until the transaction ends.

        Deciding whether a lease is free takes Python (is its process alive?), so the row
        is locked before it is read: on PostgreSQL two processes would otherwise both see
        it free and both take it (on SQLite the transaction's write lock already orders
        them). The row is created first, free, so there is always a row to lock.
        """
        self.conn.execute(
            "INSERT INTO sync_lease (name, owner, run_id, expires_at) VALUES (?, NULL, NULL, 0) "
            "ON CONFLICT (name) DO NOTHING",
            (name,),
        )
        self.conn.execute("UPDATE sync_lease SET expires_at = expires_at WHERE name = ?", (name,))
        row = self.conn.execute("SELECT owner, expires_at FROM sync_lease WHERE name = ?", (name,)).fetchone()
        return None if row is None else tuple(row)

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (only if ``owner`` holds it)."""
        with self.db.atomic():
            self.conn.execute(
                "UPDATE sync_lease SET owner = NULL, run_id = NULL, expires_at = 0 WHERE name = ? AND owner = ?",
                (name, owner),
            )

    def lease_holder(self, name: str = SYNC_LEASE) -> dict[str, Any] | None:
        """The live holder of a lease (owner, run_id, expires_at), or None when it is free."""
        row = self.conn.execute(
            "SELECT owner, run_id, expires_at FROM sync_lease WHERE name = ?", (name,)
        ).fetchone()
        if row is None or _lease_free((row[0], row[2]), "", time.time()):
            return None
        return {"owner": row[0], "run_id": row[1], "expires_at": row[2]}

    def claim_slot(self, name: str, slot: int, owner: str) -> bool:
        """Claim time slot ``slot`` of the schedule ``name`` for ``owner``; False if any process already did.

        Slots only move forward: the row of ``sync_lease`` named ``name`` keeps the last
        claimed slot in ``run_id`` (it is never a live lease: ``expires_at`` stays 0).
        """
        # One statement decides: the upsert's WHERE lets only a later slot through, and a
        # concurrent claim waits for this one's row and then finds the slot taken.
        claimed = self.conn.execute(
            "INSERT INTO sync_lease (name, owner, run_id, expires_at) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, run_id = excluded.run_id, "
            "expires_at = 0 WHERE sync_lease.run_id IS NULL OR sync_lease.run_id < excluded.run_id",
            (name, owner, slot),
        ).rowcount
        return bool(claimed)

    # ------------------------------------------------------------------- runs

    def start_run(
        self,
        *,
        kind: str,
        trigger: str,
        started_by: str | None,
        owner: str,
        ttl_s: float = LEASE_TTL_S,
    ) -> int | None:
        """Take the sync lease and create a ``running`` run row, in one transaction.

        Returns the run id, or None when another live run holds the lease. Runs left
        ``running`` by a dead process are marked ``interrupted`` on the way.
        """
        now = time.time()
        stamp = now_iso()
        with self.db.atomic():
            row = self._locked_lease(SYNC_LEASE)
            if not _lease_free(row, owner, now):
                return None
            self.conn.execute(
                "UPDATE sync_runs SET state = 'interrupted', finished_at = coalesce(heartbeat_at, started_at), "
                "error = coalesce(error, 'the sync process stopped before finishing') WHERE state = 'running'"
            )
            run_id = int(
                self.conn.execute(
                    "INSERT INTO sync_runs (kind, trigger, started_by, state, phase, started_at, heartbeat_at) "
                    "VALUES (?, ?, ?, 'running', 'starting', ?, ?) RETURNING id",
                    (kind, trigger, started_by, stamp, stamp),
                ).fetchone()[0]
            )
            self.conn.execute(
                "INSERT INTO sync_lease (name, owner, run_id, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, run_id = excluded.run_id, "
                "expires_at = excluded.expires_at",
                (SYNC_LEASE, owner, run_id, now + ttl_s),
            )
        return run_id

    def heartbeat(
        self,
        run_id: int,
        owner: str,
        progress: dict[str, Any],
        *,
        ttl_s: float = LEASE_TTL_S,
    ) -> bool:
        """Write a run's progress and renew its lease; False if the lease was lost."""
        fields = {k: progress[k] for k in _RUN_FIELDS if k in progress}
        assignments = "".join(f", {k} = ?" for k in fields)
        params: list[Any] = [now_iso(), *fields.values()]
        if "counts" in progress:
            assignments += ", counts = ?"
            params.append(json.dumps(progress["counts"], sort_keys=True))
        with self.db.atomic():
            self.conn.execute(
                f"UPDATE sync_runs SET heartbeat_at = ?{assignments} WHERE id = ?", (*params, run_id)
            )
            held = self.conn.execute(
                "UPDATE sync_lease SET expires_at = ? WHERE name = ? AND owner = ? AND run_id = ?",
                (time.time() + ttl_s, SYNC_LEASE, owner, run_id),
            ).rowcount
        return bool(held)

    def finish_run(
        self,
        run_id: int,
        owner: str,
        *,
        state: str,
        progress: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a run ended (``succeeded`` / ``failed``) and release the lease."""
        progress = dict(progress or {})
        fields = {k: progress[k] for k in _RUN_FIELDS if k in progress}
        assignments = "".join(f", {k} = ?" for k in fields)
        params: list[Any] = [state, error, now_iso(), now_iso(), *fields.values()]
        if "counts" in progress:
            assignments += ", counts = ?"
            params.append(json.dumps(progress["counts"], sort_keys=True))
        with self.db.atomic():
            self.conn.execute(
                f"UPDATE sync_runs SET state = ?, error = ?, finished_at = ?, heartbeat_at = ?{assignments} "
                "WHERE id = ?",
                (*params, run_id),
            )
            self.conn.execute(
                "UPDATE sync_lease SET owner = NULL, run_id = NULL, expires_at = 0 WHERE name = ? AND owner = ?",
                (SYNC_LEASE, owner),
            )

    def latest_run(self) -> dict[str, Any] | None:
        """The most recent run (state ``interrupted`` if its heartbeat went stale), or None."""
        runs = self.run_history(limit=1)
        return runs[0] if runs else None

    def run_history(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent runs, newest first, with ``counts`` parsed and ``duration_s``."""
        cursor = self.conn.execute("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", (int(limit),))
        columns = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
        now, live = time.time(), self._live_run()
        return [_run_dict(columns, row, now, live) for row in rows]

    def _live_run(self) -> int | None:
        holder = self.lease_holder(SYNC_LEASE)
        return None if holder is None or holder["run_id"] is None else int(holder["run_id"])

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        """One run by id."""
        cursor = self.conn.execute("SELECT * FROM sync_runs WHERE id = ?", (int(run_id),))
        row = cursor.fetchone()
        if row is None:
            return None
        return _run_dict([c[0] for c in cursor.description], row, time.time(), self._live_run())

    def is_sync_running(self) -> bool:
        """Whether a live sync holds the lease right now (in any process)."""
        return self.lease_holder(SYNC_LEASE) is not None

    def last_success(self) -> dict[str, Any] | None:
        """The most recent run that succeeded, or None."""
        cursor = self.conn.execute(
            "SELECT * FROM sync_runs WHERE state = 'succeeded' ORDER BY id DESC LIMIT 1"
        )
        row = cursor.fetchone()
        return None if row is None else _run_dict([c[0] for c in cursor.description], row, time.time(), None)

    # ---------------------------------------------------------------- cursors

    def get_cursor(self, object_type: str) -> dict[str, Any]:
        """A type's cursor: ``modified_since_ms``, ``full_complete`` and a full pull's saved ``full_state``."""
        row = self.conn.execute(
            "SELECT modified_since_ms, full_after, full_run_id, full_complete, updated_at "
            "FROM sync_cursors WHERE object_type = ?",
            (object_type,),
        ).fetchone()
        if row is None:
            return {
                "modified_since_ms": None,
                "full_state": None,
                "full_run_id": None,
                "full_complete": False,
                "updated_at": None,
            }
        return {
            "modified_since_ms": row[0],
            "full_state": json.loads(row[1]) if row[1] else None,
            "full_run_id": row[2],
            "full_complete": bool(row[3]),
            "updated_at": row[4],
        }

    def begin_full_pull(self, object_type: str, run_id: int, state: dict[str, Any]) -> None:
        """Record that a full pull of ``object_type`` started (or resumed) with ``state``.

        ``full_complete`` drops to 0 until ``complete_full_pull``: a crash in between leaves
        the type marked incomplete, so the next sync finishes the full pull first.
        """
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO sync_cursors (object_type, full_after, full_run_id, full_complete, updated_at) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT(object_type) DO UPDATE SET full_after = excluded.full_after, "
                "full_run_id = excluded.full_run_id, full_complete = 0, updated_at = excluded.updated_at",
                (object_type, json.dumps(state), run_id, now_iso()),
            )

    def save_full_position(self, object_type: str, walker: int, after: str | None, done: bool) -> None:
        """Save one range walker's position; call in the transaction that wrote what it covers."""

        def move(state: dict[str, Any]) -> None:
            state["walkers"][walker]["after"] = after
            state["walkers"][walker]["done"] = bool(done)

        self._change_full_state(object_type, move)

    def owe_associations(self, object_type: str, ids: Sequence[str]) -> None:
        """Remember records whose associations a paused full pull did not read yet.

        Saved in the transaction that saves the positions past them, so a resumed pull
        reads these associations first instead of reading the records again
        (``full_state["owed"]``; ``settle_associations`` takes them off).
        """
        if not ids:
            return

        def owe(state: dict[str, Any]) -> None:
            state["owed"] = list(dict.fromkeys([*state.get("owed", []), *ids]))

        self._change_full_state(object_type, owe)

    def settle_associations(self, object_type: str, ids: Sequence[str]) -> None:
        """Take records whose owed associations are now in off the list."""
        if not ids:
            return
        done = set(ids)

        def settle(state: dict[str, Any]) -> None:
            state["owed"] = [i for i in state.get("owed", []) if i not in done]

        self._change_full_state(object_type, settle)

    def _change_full_state(self, object_type: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Read-modify-write a full pull's saved state (nothing when none is saved).

        The row is locked first (a no-op update) and only then read: walkers of one type
        save concurrently, and on PostgreSQL two read-modify-writes of the same JSON
        would otherwise lose one of them. On SQLite the write lock is already held.
        """
        stamp = now_iso()
        with self.db.atomic():
            self.conn.execute(
                "UPDATE sync_cursors SET updated_at = ? WHERE object_type = ?", (stamp, object_type)
            )
            row = self.conn.execute(
                "SELECT full_after FROM sync_cursors WHERE object_type = ?", (object_type,)
            ).fetchone()
            if row is None or not row[0]:
                return
            state = json.loads(row[0])
            change(state)
            self.conn.execute(
                "UPDATE sync_cursors SET full_after = ? WHERE object_type = ?",
                (json.dumps(state), object_type),
            )

    def has_complete_pull(self) -> bool:
        """Whether any type's full pull ever completed here (False: never synced, or every
        earlier pull was cut short or forgotten)."""
        found = self.conn.execute("SELECT 1 FROM sync_cursors WHERE full_complete = 1 LIMIT 1").fetchone()
        return found is not None

    def forget_cursors(self) -> None:
        """Forget every type's cursor (the cache now serves another portal: the next pull is full)."""
        self.conn.execute("DELETE FROM sync_cursors")

    def complete_full_pull(self, object_type: str, *, modified_since_ms: int) -> None:
        """Mark a type's full pull complete and start incremental pulls from ``modified_since_ms``."""
        with self.db.atomic():
            self.conn.execute(
                "UPDATE sync_cursors SET full_complete = 1, full_after = NULL, modified_since_ms = ?, "
                "updated_at = ? WHERE object_type = ?",
                (modified_since_ms, now_iso(), object_type),
            )

    def set_modified_since(self, object_type: str, modified_since_ms: int) -> None:
        """Move a type's incremental cursor (after an incremental pull finished that type)."""
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO sync_cursors (object_type, modified_since_ms, full_complete, updated_at) "
                "VALUES (?, ?, 0, ?) ON CONFLICT(object_type) DO UPDATE SET "
                "modified_since_ms = excluded.modified_since_ms, updated_at = excluded.updated_at",
                (object_type, modified_since_ms, now_iso()),
            )

    # ------------------------------------------------------------ deletion sweeps

    def sweep_of(self, object_type: str) -> dict[str, Any]:
        """When deletions of ``object_type`` were last looked for: ``looked_ms`` (the start of
        the last complete look; None: never), ``how`` ("full pull" or "sweep"), ``skipped_at``
        and ``skipped_why`` (the last sweep that was due but skipped, if any since)."""
        row = self.conn.execute(
            "SELECT modified_since_ms, full_after FROM sync_cursors WHERE object_type = ?",
            (object_type + SWEEP_SUFFIX,),
        ).fetchone()
        note = json.loads(row[1]) if row is not None and row[1] else {}
        return {
            "looked_ms": None if row is None or row[0] is None else int(row[0]),
            "how": note.get("how"),
            "skipped_at": note.get("skipped_at"),
            "skipped_why": note.get("skipped_why"),
        }

    def sweeps(self) -> dict[str, dict[str, Any]]:
        """Every type's ``sweep_of``, for the types that have one."""
        rows = self.conn.execute(
            "SELECT object_type FROM sync_cursors WHERE object_type LIKE ?", ("%" + SWEEP_SUFFIX,)
        ).fetchall()
        types = [str(r[0])[: -len(SWEEP_SUFFIX)] for r in rows]
        return {t: self.sweep_of(t) for t in sorted(types)}

    def record_sweep(self, object_type: str, looked_ms: int, *, how: str) -> None:
        """Deletions of ``object_type`` were looked for completely, by a walk that began at
        ``looked_ms`` (a sweep, or a full pull that flagged what it did not see)."""
        self._save_sweep(object_type, looked_ms, {"how": how})

    def note_sweep_skipped(self, object_type: str, why: str) -> None:
        """A due sweep was skipped (``why``, e.g. the daily budget); the last look stays."""
        state = self.sweep_of(object_type)
        note = {"how": state["how"], "skipped_at": now_iso(), "skipped_why": why}
        self._save_sweep(object_type, state["looked_ms"], note)

    def _save_sweep(self, object_type: str, looked_ms: int | None, note: dict[str, Any]) -> None:
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO sync_cursors (object_type, modified_since_ms, full_after, full_complete, updated_at) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT(object_type) DO UPDATE SET "
                "modified_since_ms = excluded.modified_since_ms, full_after = excluded.full_after, "
                "updated_at = excluded.updated_at",
                (object_type + SWEEP_SUFFIX, looked_ms, json.dumps(note), now_iso()),
            )

    def requests_since(self, since_iso: str) -> int:
        """Requests the sync runs started at or after ``since_iso`` sent (as their rows count
        them): this app's spend of a day when the CRM reports none."""
        row = self.conn.execute(
            "SELECT coalesce(sum(requests), 0) FROM sync_runs WHERE started_at >= ?", (since_iso,)
        ).fetchone()
        return int(row[0] or 0)
