"""Escaping for every label the pictures and the HTML explorer show.

Names in a .cx program are identifiers, but tree tokens are arbitrary text (a PTB token may be
`"<b>&`), and tooltips hold whole expressions. Every piece of text that reaches DOT or HTML
goes through one of the two functions here, and nowhere else is text quoted by hand:

- `escape_label` for a quoted DOT string (`label="..."`, `tooltip="..."`): Graphviz reads
  backslash escapes and HTML entities in every string, so `\\`, `"` and `&` are escaped and
  line breaks become `\\n` (centred) or `\\l` (left-aligned);
- `escape_html` for an HTML page and for Graphviz HTML-like labels (`label=<...>`): `&`, `<`,
  `>`, `"` and `'` become entities; control characters, which XML forbids, become U+FFFD.

`Html` marks text that is already markup, so that builders can tell markup from raw text.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_HTML_PATTERN = re.compile("[&<>\"']")


class Html(str):
    """A string that is already safe markup (built from escaped pieces)."""

    __slots__ = ()


def escape_html(text: object) -> Html:
    """`text` as HTML character data or a quoted attribute value: safe in a page and in a
    Graphviz HTML-like label. Line breaks are kept (callers decide how to show them)."""
    if isinstance(text, Html):
        return text
    cleaned = _CONTROL.sub("\ufffd", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    return Html(_HTML_PATTERN.sub(lambda match: _HTML[match.group(0)], cleaned))


def escape_label(text: object, *, align: str = "center") -> str:
    """`text` as the inside of a quoted DOT string; `align` ("center" or "left") picks the
    line break used for newlines (`\\n` or `\\l`, which also ends the last line)."""
    cleaned = _CONTROL.sub("\ufffd", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    escaped = (cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;"))
    if align == "left":
        return escaped.replace("\n", "\\l") + "\\l"
    return escaped.replace("\n", "\\n")


def html_lines(text: object) -> Html:
    """Escaped text with its line breaks as `<BR/>`, for Graphviz HTML-like labels."""
    return Html('<BR ALIGN="LEFT"/>'.join(escape_html(line) for line in str(text).split("\n")))


def shorten(text: str, limit: int = 64) -> str:
    """`text` cut to `limit` characters with an ellipsis (full text goes in the tooltip)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"
