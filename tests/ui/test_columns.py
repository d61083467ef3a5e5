"""The pure helpers that keep CRM values inert: escaping, links, CSV neutralising."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui.columns import csv_bytes, https_or_none, md_escape, neutralise, portal_url, record_url
from ui.editing import problems_by_record


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click me](javascript:alert(1))",
        "![](https://evil.example/?leak)",
        ":red[alarm] $x^2$ **bold** `code` # heading",
        "a@b.example www.evil.example http://evil.example",
    ],
)
def test_md_escape_leaves_no_markdown_or_html_syntax_unescaped(hostile: str) -> None:
    escaped = md_escape(hostile)
    unescaped = [
        ch for i, ch in enumerate(escaped) if ch in "<>[]()!*`#:$@&_" and (i == 0 or escaped[i - 1] != "\\")
    ]
    assert unescaped == []
    assert escaped.replace("\\", "").replace("\u200b", "") == hostile


def test_md_escape_breaks_bare_urls_and_emails_that_markdown_would_autolink() -> None:
    escaped = md_escape("mail a@b.example or visit WWW.evil.example or http://evil.example")
    assert "a\\@\u200bb\\.\u200bexample" in escaped
    assert "W\u200bWW" in escaped
    assert "http\\:\u200b" in escaped


def test_md_escape_collapses_newlines_and_shortens_floods() -> None:
    assert "\n" not in md_escape("line one\n# heading\n- item")
    assert len(md_escape("x" * 5000, max_len=100)) == 100


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://app.hubspot.com/contacts/1/record/0-1/2",
            "https://app.hubspot.com/contacts/1/record/0-1/2",
        ),
        ("http://app.hubspot.com/x", None),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("https:///nohost", None),
        ("https://app.hubspot.com/a b", None),
        (None, None),
    ],
)
def test_https_or_none_passes_only_https_urls_with_a_host(url: object, expected: str | None) -> None:
    assert https_or_none(url) == expected


def test_record_url_points_at_hubspot_record_pages_and_refuses_odd_parts() -> None:
    assert (
        record_url("app.hubspot.com", 62515, "deals", "17")
        == "https://app.hubspot.com/contacts/62515/record/0-3/17"
    )
    assert (
        record_url("app-eu1.hubspot.com", "1", "companies", "9")
        == "https://app-eu1.hubspot.com/contacts/1/record/0-2/9"
    )
    assert record_url("evil.example/x?", 1, "contacts", "2") is None
    assert record_url("app.hubspot.com", "1;drop", "contacts", "2") is None
    assert record_url("app.hubspot.com", 1, "contacts", "local-abc") is None
    assert portal_url("app.hubspot.com", 62515) == "https://app.hubspot.com/contacts/62515"


def test_csv_export_neutralises_formula_like_cells() -> None:
    frame = pd.DataFrame(
        {
            "name": [
                '=HYPERLINK("http://evil.example","x")',
                "+cmd",
                "-1+1",
                "@SUM(A1)",
                "\tTab",
                "\rCR",
                "Ada",
            ],
            "amount": [1.0, -5.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        },
        index=pd.Index(["1", "2", "3", "4", "5", "6", "7"], name="id"),
    )
    rows = list(csv.DictReader(io.StringIO(csv_bytes(frame).decode("utf-8-sig"), newline="")))
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+cmd",
        "'-1+1",
        "'@SUM(A1)",
        "'\tTab",
        "'\rCR",
        "Ada",
    ]
    # Numbers are data, not text a spreadsheet would evaluate: a negative amount stays a number.
    assert rows[1]["amount"] == "-5.0"
    assert neutralise(-5) == -5


def test_invalid_cell_messages_are_grouped_per_record_with_column_labels() -> None:
    grouped = problems_by_record(
        {"12.email": "'x' is not a valid email address", "12.phone": "too long", "13.jobtitle": "too long"},
        {"email": "Email", "phone": "Phone"},
    )
    assert grouped == {
        "12": ["Email: 'x' is not a valid email address", "Phone: too long"],
        "13": ["jobtitle: too long"],
    }


def _toasts() -> None:
    from ui.feedback import toast

    toast("Pronouns property created: HubSpot: created; Pipedrive: set up already")
    toast("Note logged: call at 10:30, see http://evil.example :smile:")


def _as_read(markdown: str) -> str:
    """Markdown source as the browser shows it: each backslash escape read as its character
    (zero-width spaces kept: they are in the text a person copies)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_a_toast_shows_its_colons_without_a_zero_width_space_after_them() -> None:
    at = AppTest.from_function(_toasts, default_timeout=30)
    at.run()
    labelled, linked = (_as_read(t.value) for t in at.toast)
    assert labelled == "Pronouns property created: HubSpot: created; Pipedrive: set up already"
    # What could still become a link or an emoji stays broken, the labels' colons do not.
    assert linked.startswith("Note logged: call at 10:\u200b30, see http:\u200b//evil.\u200bexample")
    assert linked.endswith(" :\u200bsmile:")
