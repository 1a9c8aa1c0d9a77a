"""Errors and diagnostics: every mistake a user can make has a code, a span and a caret snippet.

User errors (`CortexError` and its subclasses) are kept apart from bugs in cortexlang
(`InternalError`). Each class carries the process exit code the command line uses:

    0  success
    1  user error in the program or its inputs      (CortexError, InputError)
    2  usage error on the command line              (UsageError)
    3  environment: no OpenCL device, no Graphviz   (EnvironmentProblem)
    70 internal error, a bug in cortexlang           (InternalError)

Every code and its one meaning are registered in `cortexlang.error_codes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open source range; lines and columns count from 1. Excluded from IR equality."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(path: str, line: int, column: int) -> Span:
        return Span(path, line, column, line, column + 1)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located problem: `code` like E0301, a message, the span, a label under the caret,
    and a hint saying how to fix it."""

    code: str
    message: str
    span: Span | None = None
    label: str = ""
    hint: str = ""
    notes: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.path, self.span.line, self.span.column, self.code)


def render_diagnostic(diagnostic: Diagnostic, source: str | None) -> str:
    """Format a diagnostic as `error[CODE]: message`, location, source line and caret."""
    lines = [f"error[{diagnostic.code}]: {diagnostic.message}"]
    span = diagnostic.span
    if span is not None:
        lines.append(f" --> {span}")
        source_lines = source.split("\n") if source is not None else []
        if 1 <= span.line <= len(source_lines):
            text = source_lines[span.line - 1].replace("\t", " ")
            gutter = str(span.line)
            pad = " " * len(gutter)
            if span.end_line == span.line:
                width = max(1, span.end_column - span.column)
            else:
                width = max(1, len(text) - span.column + 1)
            caret = " " * (span.column - 1) + "^" * width
            label = f" {diagnostic.label}" if diagnostic.label else ""
            lines += [f" {pad} |", f" {gutter} | {text}", f" {pad} | {caret}{label}"]
        elif diagnostic.label:
            lines.append(f"   = {diagnostic.label}")
    elif diagnostic.label:
        lines.append(f"   = {diagnostic.label}")
    for note in diagnostic.notes:
        lines.append(f"   = note: {note}")
    if diagnostic.hint:
        lines.append(f"   = hint: {diagnostic.hint}")
    return "\n".join(lines)


class CortexError(Exception):
    """A user error: the program or its inputs are wrong. Carries one or more diagnostics."""

    exit_code = 1

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic] | tuple[Diagnostic, ...],
                 source: str | None = None) -> None:
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        self.source = source
        super().__init__(self.render())

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    def render(self) -> str:
        parts = [render_diagnostic(d, self.source) for d in self.diagnostics]
        count = len(self.diagnostics)
        if count > 1:
            parts.append(f"{count} errors")
        return "\n\n".join(parts)


def user_error(code: str, message: str, *, span: Span | None = None, label: str = "",
               hint: str = "", source: str | None = None,
               error_class: type[CortexError] = CortexError) -> CortexError:
    """Build a single-diagnostic user error, ready to raise."""
    return error_class(Diagnostic(code, message, span, label, hint), source)


class InputError(CortexError):
    """A problem with trees, vocabularies or weights given to a model (exit 1)."""


class UsageError(CortexError):
    """A wrong command line (exit 2)."""

    exit_code = 2


class EnvironmentProblem(CortexError):
    """Something missing from the machine: an OpenCL device, Graphviz (exit 3)."""

    exit_code = 3


@dataclass
class InternalError(Exception):
    """A bug in cortexlang: a pass or verifier failed. Names the step and the dump."""

    step: str
    message: str
    dump_path: str | None = None
    details: list[str] = field(default_factory=list)

    exit_code = 70

    def __str__(self) -> str:
        text = (f"internal error in {self.step}: {self.message}\n"
                "this is a bug in cortexlang, not in your program; please report it")
        if self.dump_path:
            text += f"\nthe state before the failure was dumped to {self.dump_path}"
        return text
