"""Pages talk to the CRM interface and the store's neutral records: no HubSpot property name
is written into pages/ or ui/ (issue #14). Which property plays which part comes from the
connection's CRM (``crm.crms.provider_of(settings).object_types()``)."""

from __future__ import annotations

import ast
from pathlib import Path

from crm.hubspot.provider import OBJECT_TYPES, WORDS

REPO = Path(__file__).resolve().parents[2]
# Every property name HubSpot's provider declares for the pages, and HubSpot's own prefix.
HUBSPOT_NAMES = {
    name
    for info in OBJECT_TYPES
    for name in (*info.columns, *info.editable, *info.search, *info.related, *(n for n, _ in info.sorts))
} | set(WORDS.fields)
# Names every CRM may share, or the app's own: not HubSpot's to claim. ``pipeline`` and
# ``amount`` are also the store's neutral role words (``deal_figures`` keywords, the columns
# of its stage summaries), which HubSpot happens to use as property names.
NEUTRAL = {
    "name",
    "email",
    "phone",
    "subject",
    "content",
    "city",
    "country",
    "company",
    "pronouns",
    "pipeline",
    "amount",
}
# Strings with HubSpot's prefix that are not properties: the browser-binding cookie's name.
NOT_PROPERTIES = {"hs_bind"}


def _hubspot_names(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant in ``source`` that is a HubSpot property name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text in NOT_PROPERTIES or text in NEUTRAL:
                continue
            if text in HUBSPOT_NAMES or text.startswith("hs_"):
                found.append((node.lineno, text))
    return sorted(found)


def test_the_check_sees_a_hubspot_property_name_but_not_prose_or_neutral_names() -> None:
    source = (
        'COLS = ["firstname", "email"]\nfilters = {"hubspot_owner_id": 1}\nX = "hs_pipeline_stage"\n'
        '"""Pick a lifecyclestage-like role from the provider."""\nlabel = "Deal stage"\n'
    )
    assert _hubspot_names(source) == [(1, "firstname"), (2, "hubspot_owner_id"), (3, "hs_pipeline_stage")]
    assert {"lifecyclestage", "dealstage", "dealname", "closedate", "jobtitle"} <= HUBSPOT_NAMES


def test_no_page_or_ui_module_names_a_hubspot_property() -> None:
    problems = [
        f"{path.relative_to(REPO)}:{line} names {text!r}"
        for folder in ("pages", "ui")
        for path in sorted((REPO / folder).rglob("*.py"))
        for line, text in _hubspot_names(path.read_text(encoding="utf-8"))
    ]
    assert problems == [], "\n".join(problems)
