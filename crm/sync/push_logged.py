"""Pushing the notes and tasks logged on records (``queue_note``, ``queue_task``) to the CRM.

They need the ``LogsEngagements`` capability (HubSpot's engagements, Pipedrive's notes and
task activities; elsewhere they are refused with a message, to be discarded). A queued one
names its parts by role (``crm.store.interactions.LOGGED_ROLES``), each CRM's provider names
them its way. HubSpot's create has no idempotency key (docs/INTERACTIONS_API.md §1), so a
retry never trusts itself: each note or task carries its own ``time`` millisecond, and before
sending, the push asks the CRM for engagements at that millisecond (``find_logged``) and
compares the text. Found: the earlier attempt reached the CRM, and the local row becomes it.
An attempt whose outcome is unknown (timeout, 5xx, dropped connection) is looked for again
only after SEARCH_SETTLE_S, because search may not show a new object at once; until then it
waits.

This part changes with how engagements are logged and matched; the record push
(``crm.sync.push``) runs it after the records, over the same store and API.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any

from crm.errors import CrmError, HubSpotError
from crm.interface import LogsEngagements, Record
from crm.plaintext import body_text
from crm.store.interactions import ENGAGEMENT_PROPERTIES, LOGGED_ROLES, queued_roles
from crm.store.values import parse_datetime
from crm.sync.push_run import PushRun, is_transient

log = logging.getLogger("crm.sync")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Engagements staff can log from a record page, and what identifies one besides its time.
LOGGED_TYPES = ("notes", "tasks")
# The roles (crm.store.interactions.LOGGED_ROLES) an engagement found in the CRM must share
# with the queued one to be it.
_MATCHED = {"notes": ("note_body",), "tasks": ("task_subject", "task_body")}
# Search may lag a create by seconds (HUBSPOT_API.md); an attempt with an unknown outcome
# is looked for again only after this long.
SEARCH_SETTLE_S = 60.0


class LoggedPusher(PushRun):
    """The notes and tasks of one push: each looked for in the CRM first, else created with its links."""

    def run(self) -> None:
        for object_type in LOGGED_TYPES:
            self.push_engagements(object_type)

    def push_engagements(self, object_type: str) -> None:
        """Pending notes or tasks: look for an earlier attempt first, else create with associations."""
        rows = self.db.outbox.pending_creates(object_type)
        if rows and not isinstance(self.api, LogsEngagements):
            # Refused, not left pending: it would never go, and a person can discard it.
            message = f"Notes and tasks cannot be sent to {self.words.crm} from the dashboard yet"
            for row in rows:
                self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
                self._note(row, "failed", message)
            return
        for row in rows:
            assert isinstance(self.api, LogsEngagements)
            self._push_engagement(self.api, object_type, row)

    def _push_engagement(self, api: LogsEngagements, object_type: str, row: dict[str, Any]) -> None:
        payload = row["payload"]
        roles = queued_roles(payload)  # a row queued by role, or an older one by HubSpot's names
        links = [(str(t), str(i)) for t, i in payload.get("links") or []]
        try:
            if row["attempts"]:
                waited = time.time() - (parse_datetime(row["updated_at"]) or _EPOCH).timestamp()
                if waited < SEARCH_SETTLE_S:
                    message = f"An earlier attempt may have reached {self.words.crm}; looking again soon"
                    self._note(row, "retry", message)
                    return
            found = [
                r
                for r in api.find_logged(
                    object_type,
                    int(roles.get("time") or 0),
                    properties=ENGAGEMENT_PROPERTIES[object_type],
                    links=links,
                    since_ms=_queued_ms(row),
                )
                if _same_engagement(object_type, r, roles)
            ]
            if found:
                self.db.outbox.complete_engagement(row["id"], found[0], by=self.by, existed=True)
                self._note(row, "created", f"{self.words.crm} already had it from an earlier attempt")
                return
            result = api.create_logged(object_type, roles, links)
        except CrmError as exc:
            # Sent or not, nobody knows: the next push looks for it before sending again.
            transient = is_transient(exc) or not isinstance(exc, HubSpotError)
            self.db.outbox.fail_create(row["id"], str(exc), by=self.by, retry=transient)
            self._note(row, "retry" if transient else "failed", str(exc))
            return
        if result.failures or not result.records:
            message = (
                str(result.failures[0].error) if result.failures else f"{self.words.crm} created nothing"
            )
            self.db.outbox.fail_create(row["id"], message, by=self.by, retry=False)
            self._note(row, "failed", message)
            return
        created = self._read_engagement(object_type, result.records[0])
        self.db.outbox.complete_engagement(row["id"], created, by=self.by, existed=False)
        self._note({**row, "record_id": created.id}, "created")

    def _read_engagement(self, object_type: str, created: Record) -> Record:
        """The create answer may carry only some properties: read the new engagement in full."""
        try:
            found = self.api.batch_read(
                object_type, [created.id], properties=ENGAGEMENT_PROPERTIES[object_type]
            )
        except CrmError as exc:
            log.info("could not re-read a created %s (%s); keeping the create answer", object_type, exc)
            return created
        return found[0] if found else created


def _same_engagement(object_type: str, theirs: Record, mine: Mapping[str, str | None]) -> bool:
    """Whether an engagement found in the CRM (the cache's properties) is the one ``mine``
    (its queued roles) describes."""
    for role in _MATCHED[object_type]:
        if body_text(theirs.properties.get(LOGGED_ROLES[role])) != body_text(mine.get(role)):
            return False
    return True


def _queued_ms(row: Mapping[str, Any]) -> int | None:
    """When an outbox row was queued (epoch ms): no attempt to send it can be older."""
    queued = parse_datetime(row.get("created_at"))
    return None if queued is None else int(queued.timestamp() * 1000)
