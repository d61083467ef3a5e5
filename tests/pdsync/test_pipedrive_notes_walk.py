"""The notes walk misses no live note when notes move while it pages within one second.

Pipedrive pages v1 notes by offset. Past a page of notes sharing one update second the walk
can only page by offset, and a note deleted before the offset meanwhile shifts the rest
back by one: the note at the boundary would never be listed, and a full read would flag it
deleted. A client stand-in serves the pages so the move happens exactly between two pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm.pipedrive.provider import PipedriveApi

SECOND = "2026-12-01 10:00:00"
PAGE = 5


class MovingNotes:
    """Twelve notes updated in one second; note 2 is deleted once the walk pages by offset."""

    def __init__(self) -> None:
        self.notes = [
            {"id": i, "content": f"note {i}", "add_time": SECOND, "update_time": SECOND, "active_flag": True}
            for i in range(1, 13)
        ]
        self.pages = 0

    def notes_page(
        self, filters: Mapping[str, str], *, start: int = 0, limit: int = PAGE
    ) -> tuple[list[dict[str, Any]], int | None]:
        page = self.notes[start : start + PAGE]
        self.pages += 1
        if self.pages == 2:  # the first page again, now from that second: offsets from here
            self.notes = [n for n in self.notes if n["id"] != 2]
        following = start + PAGE if start + PAGE < len(self.notes) else None
        return page, following


def test_a_note_deleted_mid_walk_within_one_second_does_not_hide_the_next_one() -> None:
    client = MovingNotes()
    api = PipedriveApi(client)  # type: ignore[arg-type]

    read = {item.id for batch in api.iter_interactions("notes") for item in batch}

    assert {str(i) for i in range(3, 13)} <= read
