"""HTML bodies turned into plain text for display and search (pure; no third-party code).

HubSpot keeps rich text as HTML: note bodies, call and meeting notes, task notes and the
HTML of emails sent from a record (docs/INTERACTIONS_API.md §2). An email can carry
anything a browser would run. The cache keeps only the text a person would read, and the
pages show it as text, so nothing from a CRM body is ever interpreted as markup:

- ``<script>``, ``<style>``, ``<head>``, ``<template>``, ``<noscript>`` and similar
  elements are dropped with their content; comments and processing instructions too;
- every other tag is removed; block elements (paragraphs, list items, table rows,
  headings, ``<br>``) become line breaks so the text keeps its shape;
- character references (``&amp;``, ``&#60;``, ``&nbsp;``) are decoded once, after the tags
  are gone, so ``&lt;script&gt;`` stays the visible text ``<script>`` and never becomes a tag;
- runs of spaces collapse to one, lines are trimmed, and blank lines collapse to one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is not text a reader sees.
_HIDDEN = frozenset(
    {"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math", "xml"}
)
# Elements that start a new line.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_SPACES = re.compile(r"[ \t\f\v\u00a0\u200b\r]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_LOOKS_LIKE_HTML = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCK and not self._hidden:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK and not self._hidden:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK and not self._hidden:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def normalise_space(text: str) -> str:
    """Spaces collapsed, each line trimmed, at most one blank line in a row, ends trimmed."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str | None) -> str:
    """The readable text of an HTML fragment or document (see the module docstring)."""
    if not html:
        return ""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return normalise_space("".join(parser.parts))


def body_text(value: str | None) -> str:
    """A body that may be HTML or plain text, as plain text.

    Plain text with no tag and no character reference is only re-spaced, so "a < b"
    survives; anything that looks like markup goes through ``html_to_text``.
    """
    if not value:
        return ""
    return html_to_text(value) if _LOOKS_LIKE_HTML.search(value) else normalise_space(value)


def first_line(text: str, limit: int = 160) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters with an ellipsis."""
    for line in text.split("\n"):
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
    return ""
