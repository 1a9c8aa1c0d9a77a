"""The emitter's text tools: lines with indentation, and comments that stay comments."""

from __future__ import annotations

import re


class Writer:
    """Lines with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("    " * self.depth + text) if text else "")

    def open(self, text: str) -> None:
        self.line(f"{text} {{" if text else "{")
        self.depth += 1

    def close(self, suffix: str = "") -> None:
        self.depth -= 1
        self.line("}" + suffix)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def comment(text: str) -> str:
    """A one-line comment that cannot end early or span lines, whatever `text` holds."""
    return "// " + re.sub(r"[\r\n]+", " ", text)
