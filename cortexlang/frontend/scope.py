"""What names mean while a rule is typed: the built-in functions, the `Scope` of one rule,
and `TyperBase`, which holds the program's declarations and reports unknown names.

The typer is a chain of classes, one job each: `TyperBase` (declarations, reporting) <-
`SizeEvaluator` (`frontend.sizes`: size expressions) <- `NodeResolver` (`frontend.nodes`: node
selectors, token indices, structural conditions) <- `ExpressionTyper` (`frontend.typing`:
tensor expressions).
"""

from __future__ import annotations

import bisect
import difflib
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from cortexlang.errors import Diagnostic, Span
from cortexlang.ir import checked as ir
from cortexlang.ir.operators import REDUCTIONS, Kind, function_names

# The operators a program calls by name, from the operator table (sigmoid, ..., softmax).
ELEMENTWISE_FUNCTIONS = function_names(Kind.UNARY, Kind.VECTOR)
# Largest value of a size expression: far beyond any real model, small enough to stay exact
# as a float and as an OpenCL int index.
MAX_SIZE = 2**31 - 1
NODE_FUNCTIONS = ("left", "right", "child", "children", "parent", "sibling", "prev")
BUILTIN_FUNCTIONS = (ELEMENTWISE_FUNCTIONS + NODE_FUNCTIONS + function_names(Kind.CONCAT)
                     + ("split", "zeros", "ones", "num_children", "isleaf"))

P1_NOTE = ("cortexlang plans the order of all node computations from the input's shape before "
           "any tensor work (property P1: control flow depends only on the structure)")
P2_NOTE = ("property P2: every recursive call is made before any tensor work, so a node's value "
           "may depend only on its descendants")
P3_NOTE = ("property P3: the computations on a node's children are independent, which is what "
           "lets all nodes of one height run as one batch")


def format_shape(shape: ir.Shape) -> str:
    """A shape for messages: `scalar` or `[64, 300]`."""
    return "scalar" if not shape else "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass
class Scope:
    """What names mean inside one rule (or one output head)."""

    rule: str                      # "leaf", "internal" or "output"
    node: str                      # the rule's node variable, e.g. "n"
    locals: dict[str, ir.Shape] = field(default_factory=dict)
    assigned_states: set[str] = field(default_factory=set)
    child_var: str | None = None   # bound inside `sum(... for k in children(n))`
    at_leaf: bool = False          # inside the `then` of `... if isleaf(n) else ...`
    poisoned: set[str] = field(default_factory=set)  # names whose definition had errors
    # Names the rule assigns in the current statement or later ones, with where (for E0204).
    later: LaterAssignments = field(default_factory=lambda: LaterAssignments(()))
    # Temporaries of the other rule, by name, with that rule's kind (for hints).
    elsewhere: dict[str, str] = field(default_factory=dict)
    # Every name the rule assigns: hidden temporaries must not collide with them.
    reserved: set[str] = field(default_factory=set)




class LaterAssignments:
    """The names a rule assigns in its current statement or any later one, with the span of
    the first such assignment: `name in later`, `later[name]`, `later.get(name)`.

    Built once per rule in time linear in its statements; `at(position)` moves the current
    statement in O(1), and each look-up costs a binary search over the statements that assign
    that name, so a rule of N statements is checked in O(N log N), not O(N^2).
    """

    def __init__(self, statements: Sequence[tuple[tuple[str, ...], tuple[Span | None, ...]]]
                 ) -> None:
        self._positions: dict[str, list[int]] = {}
        self._spans: dict[str, list[Span | None]] = {}
        for position, (targets, spans) in enumerate(statements):
            for name, span in zip(targets, spans, strict=True):
                self._positions.setdefault(name, []).append(position)
                self._spans.setdefault(name, []).append(span)
        self.position = 0

    def at(self, position: int) -> LaterAssignments:
        """Make statement `position` the current one; returns self."""
        self.position = position
        return self

    def _first(self, name: str) -> int | None:
        positions = self._positions.get(name)
        if positions is None:
            return None
        index = bisect.bisect_left(positions, self.position)
        return index if index < len(positions) else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._first(name) is not None

    def __getitem__(self, name: str) -> Span | None:
        index = self._first(name)
        if index is None:
            raise KeyError(name)
        return self._spans[name][index]

    def get(self, name: str) -> Span | None:
        """The span of the first assignment to `name` from the current statement on, or
        None (also when that assignment has no span)."""
        index = self._first(name)
        return None if index is None else self._spans[name][index]


class TyperBase:
    """The declarations of one program, and the reports every part of the typer makes."""

    def __init__(self, path: str, sizes: dict[str, int], structure: ir.StructureInfo,
                 params: dict[str, ir.ParamInfo], inputs: dict[str, ir.InputInfo],
                 states: dict[str, ir.StateInfo], diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.sizes = sizes
        self.structure = structure
        self.params = params
        self.inputs = inputs
        self.states = states
        self.diagnostics = diagnostics
        # Declared names whose declaration had errors (reported once): uses stay silent.
        self.broken: set[str] = set()
        self.has_leaf_rule = True
        self.later_sizes: dict[str, Span | None] = {}  # sizes not evaluated yet

    def error(self, code: str, message: str, span: Span | None, label: str = "", hint: str = "",
              notes: tuple[str, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label, hint, notes))

    def unknown_name(self, name: str, span: Span | None, scope: Scope | None) -> None:
        if name in self.broken or (scope is not None and name in scope.poisoned):
            return
        if scope is not None and name in scope.later:
            where = scope.later[name]
            self.error("E0204", f"`{name}` is read before it is assigned", span,
                       "not assigned yet",
                       f"`{name}` is assigned at line {where.line}; move that statement up"
                       if starts_after(where, span) and where is not None else
                       f"this statement computes `{name}`; a temporary cannot read its own "
                       "value: give the new value another name")
            return
        hint = ""
        if scope is not None and scope.elsewhere.get(name) == "output":
            hint = (f"`{name}` is another output; outputs cannot read each other: make it a "
                    "state, or repeat its expression")
        elif scope is not None and name in scope.elsewhere:
            hint = (f"`{name}` is a temporary of the {scope.elsewhere[name]} rule; each rule "
                    "computes its own temporaries")
        elif name in BUILTIN_FUNCTIONS:
            hint = f"`{name}` is a function: call it, e.g. {name}(x)"
        elif name in ("root", "all"):
            hint = f"`{name}` selects nodes only in an output: output h[{name}]"
        elif scope is not None and scope.rule == "output":
            hint = "an output reads states; temporaries of the rules are not visible here"
        else:
            known = list(self.sizes) + list(self.params) + list(self.states) + list(self.inputs)
            known += list(self.broken)
            if scope is not None:
                known += list(scope.locals) + [scope.node]
            hint = did_you_mean(name, known) or "declare it with param, state or sizes"
        self.error("E0201", f"unknown name `{name}`", span, "not declared", hint)


    def is_known(self, name: str, scope: Scope) -> bool:
        return (name in self.sizes or name in self.params or name in self.states
                or name in self.inputs or name in scope.locals or name == scope.node
                or name == scope.child_var)

    def unknown_function(self, name: str, span: Span | None,
                          candidates: tuple[str, ...]) -> None:
        if name in self.params or name in self.states or name in self.sizes:
            what = ("parameter" if name in self.params else
                    "state" if name in self.states else "size")
            self.error("E0203", f"`{name}` is a {what}, not a function", span, "not callable",
                       f"index it, e.g. {name}[left(n)], or multiply: {name} @ x"
                       if what != "size" else "use it as a number")
            return
        known = candidates + BUILTIN_FUNCTIONS + tuple(self.inputs) + tuple(REDUCTIONS)
        listed = candidates or ELEMENTWISE_FUNCTIONS + function_names(Kind.CONCAT) + ("split",)
        self.error("E0203", f"unknown function `{name}`", span, "not a built-in",
                   did_you_mean(name, known) or "built-ins here: " + ", ".join(listed))



def span_of(expr: object) -> Span | None:
    """The span of an AST node, or None."""
    return getattr(expr, "span", None)



def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """`did you mean `x`?` for the closest known name (ignoring case), or ""."""
    by_lower = {candidate.lower(): candidate for candidate in known}
    if name.lower() in by_lower and by_lower[name.lower()] != name:
        return f"did you mean `{by_lower[name.lower()]}`?"
    close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=1)
    return f"did you mean `{close[0]}`?" if close else ""



def starts_after(later: Span | None, span: Span | None) -> bool:
    """Whether `later` starts after `span` (both known)."""
    return (later is not None and span is not None
            and (later.line, later.column) > (span.line, span.column))



@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (if it runs at all).

    Parsing and checking allocate millions of small objects that all survive, and each full
    collection rescans every one of them: with the collector on, a rule of 16,000 statements
    took twice as long per statement as one of 8,000. The trees are acyclic, so pausing frees
    nothing late; whatever cycles there are go at the next collection after the block.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
