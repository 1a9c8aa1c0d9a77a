"""The checker: from a parsed `ast.Program` to a legal, typed `CheckedProgram`.

It resolves the declarations (`cortexlang.frontend.declarations`: sizes with command-line
overrides, the structure, parameters, inputs, states), types every rule and output (see
`cortexlang.frontend.typing`), and reports every problem it finds, sorted by position, in one
`CortexError`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cortexlang.errors import CortexError, Diagnostic, InternalError, Span
from cortexlang.frontend import ast
from cortexlang.frontend.declarations import DeclarationChecker
from cortexlang.frontend.scope import collector_paused
from cortexlang.frontend.typing import (
    BUILTIN_FUNCTIONS,
    ExpressionTyper,
    LaterAssignments,
    Scope,
    format_shape,
)
from cortexlang.ir import checked as ir


class _Checker(DeclarationChecker):
    """Checks the rules and outputs of one program on top of its declarations."""

    def rule(self, typer: ExpressionTyper, rule: ast.Rule,
             elsewhere: dict[str, str]) -> ir.CheckedRule:
        scope = Scope(rule.kind, rule.node, elsewhere=elsewhere)
        if rule.node in self.declared or rule.node in typer.broken:
            self.error("E0202", f"the node variable `{rule.node}` hides a declaration",
                       rule.span, "name clash", "call the node n")
        statements: list[ir.Assign] = []
        # Where each name is assigned from each statement on, for "assigned at line N" hints.
        scope.later = LaterAssignments([
            (statement.targets,
             statement.target_spans or (statement.span,) * len(statement.targets))
            for statement in rule.statements])
        scope.reserved = set().union(*(statement.targets for statement in rule.statements))
        for position, statement in enumerate(rule.statements):
            scope.later.at(position)
            statements.extend(self.statement(typer, statement, scope))
        missing = [name for name in typer.states if name not in scope.assigned_states]
        if missing:
            self.error("E0205", f"the {rule.kind} rule does not assign "
                       + ", ".join(f"`{name}`" for name in missing), rule.span,
                       "every state must be computed", "assign each state once in each rule")
        return ir.CheckedRule(rule.kind, rule.node, tuple(statements), rule.span)

    def statement(self, typer: ExpressionTyper, statement: ast.Statement,
                  scope: Scope) -> list[ir.Assign]:
        targets = statement.targets
        spans = statement.target_spans or (statement.span,) * len(targets)
        value = statement.value
        if len(targets) > 1 or (isinstance(value, ast.Call) and value.function == "split"):
            return self.split(typer, statement, scope, spans)
        typed = typer.expression(value, scope)
        assign = self.target(typer, targets[0], spans[0], typed, scope)
        return [] if assign is None else [assign]

    def split(self, typer: ExpressionTyper, statement: ast.Statement, scope: Scope,
              spans: tuple[Span | None, ...]) -> list[ir.Assign]:
        value = statement.value
        count = len(statement.targets)
        if not (isinstance(value, ast.Call) and value.function == "split"):
            self.error("E0306", "several targets need `split(x, k)` on the right",
                       value.span, f"one value for {count} targets",
                       f"write `{', '.join(statement.targets)} = split(x, {count})`")
            return self.poison(typer, statement, spans, scope)
        if len(value.args) != 2:
            self.error("E0302", "split takes a tensor and a number of parts", value.span,
                       f"{len(value.args)} given", f"write split(x, {count})")
            return self.poison(typer, statement, spans, scope)
        parts = typer.size_value(value.args[1], "the number of parts")
        whole = typer.expression(value.args[0], scope)
        if parts is None or whole is None:
            return self.poison(typer, statement, spans, scope)
        if parts != count:
            self.error("E0306", f"split into {parts} parts but {count} "
                       f"target{'s' * (count != 1)}", value.args[1].span, f"{parts} parts",
                       "name one target per part")
            return self.poison(typer, statement, spans, scope)
        if not whole.shape or whole.shape[0] % parts:
            self.error("E0303", f"cannot split {format_shape(whole.shape)} into {parts} equal "
                       "parts", value.args[0].span, f"{format_shape(whole.shape)}",
                       "the first dimension must be a multiple of the number of parts")
            return self.poison(typer, statement, spans, scope)
        hidden = "__".join(statement.targets) + "__whole"
        while hidden in scope.reserved or hidden in scope.locals:
            hidden = "_" + hidden
        assigns = [ir.Assign(hidden, whole, statement.span)]
        scope.locals[hidden] = whole.shape
        step = whole.shape[0] // parts
        for position, (name, span) in enumerate(zip(statement.targets, spans, strict=True)):
            piece = ir.Slice(ir.Local(hidden, whole.shape, value.span), position * step,
                             (position + 1) * step, (step,) + whole.shape[1:], span)
            assign = self.target(typer, name, span, piece, scope)
            if assign is not None:
                assigns.append(assign)
        return assigns

    def poison(self, typer: ExpressionTyper, statement: ast.Statement,
               spans: tuple[Span | None, ...], scope: Scope) -> list[ir.Assign]:
        """Record the targets of a failed statement as assigned, so that later uses and the
        "does not assign" check stay silent: one mistake, one diagnostic."""
        for name, span in zip(statement.targets, spans, strict=True):
            self.target(typer, name, span, None, scope)
        return []

    def target(self, typer: ExpressionTyper, name: str, span: Span | None,
               value: ir.TypedExpr | None, scope: Scope) -> ir.Assign | None:
        if name in typer.states:
            if name in scope.assigned_states:
                self.error("E0208", f"state `{name}` is assigned twice", span, "second assignment",
                           "each state is assigned once per rule")
                return None
            scope.assigned_states.add(name)
            expected = typer.states[name].shape
            if value is None:
                scope.poisoned.discard(name)
            elif value.shape != expected:
                self.error("E0309", f"state `{name}` is {format_shape(expected)} but the value "
                           f"is {format_shape(value.shape)}", value.span or span,
                           f"this is {format_shape(value.shape)}",
                           f"the right side must have the declared shape of `{name}`")
                return None
        elif name in typer.broken:
            return None
        elif name in self.declared or name in (scope.node,):
            self.error("E0202", f"cannot assign to `{name}`", span, "not a state or temporary",
                       "parameters, sizes and inputs are read-only; pick a new name")
            return None
        elif name in scope.locals:
            self.error("E0208", f"`{name}` is assigned twice", span, "second assignment",
                       "give each temporary its own name")
            return None
        elif name in BUILTIN_FUNCTIONS:
            self.error("E0202", f"`{name}` is a built-in function", span, "cannot assign")
            return None
        elif value is not None:
            scope.locals[name] = value.shape
        else:
            scope.poisoned.add(name)
        return None if value is None else ir.Assign(name, value, span)

    def rules(self, typer: ExpressionTyper) -> tuple[ir.CheckedRule, ir.CheckedRule, bool]:
        by_kind: dict[str, ast.Rule] = {}
        for rule in self.program.rules:
            if rule.kind in by_kind:
                self.error("E0202", f"the {rule.kind} rule is defined twice", rule.span,
                           "second rule", "merge the two rules")
                continue
            by_kind[rule.kind] = rule
        internal_ast = by_kind.get("internal")
        leaf_ast = by_kind.get("leaf")
        if internal_ast is None and leaf_ast is not None:
            leaf_ast, internal_ast = self.forgotten_internal_header(typer, leaf_ast)
        typer.has_leaf_rule = leaf_ast is not None
        temporaries = {kind: {name: kind for statement in rule.statements
                              for name in statement.targets if name not in typer.states}
                       for kind, rule in by_kind.items()}
        leaf = None
        if leaf_ast is not None:
            leaf = self.rule(typer, leaf_ast, temporaries.get("internal", {}))
        if internal_ast is None:
            self.error("E0206", "the model has no internal rule", self.program.span,
                       "missing `internal n:`", "add `internal n:` with the combining step")
            empty = ir.CheckedRule("internal", "n", ())
            return leaf or empty, empty, True
        internal = self.rule(typer, internal_ast, temporaries.get("leaf", {}))
        if leaf is None:
            leaf = ir.CheckedRule("leaf", internal.node, internal.statements, internal_ast.span)
            return leaf, internal, False
        return leaf, internal, True

    def forgotten_internal_header(self, typer: ExpressionTyper, leaf: ast.Rule
                                  ) -> tuple[ast.Rule, ast.Rule | None]:
        """With no internal rule, a leaf rule that goes on after assigning every state, and
        then assigns a state again, most likely runs on into the internal rule: report the
        missing header there, once, and check the two parts as the two rules (instead of a
        second assignment, child accesses in a leaf and a missing rule for one line)."""
        states = set(typer.states)
        assigned: set[str] = set()
        for position, statement in enumerate(leaf.statements):
            if states and assigned >= states:
                rest = leaf.statements[position:]
                if not any(states & set(later.targets) for later in rest):
                    break
                span = statement.span
                line = f" above line {span.line}" if span is not None else ""
                self.error("E0206", "the model has no internal rule", span,
                           "the internal rule seems to start here",
                           f"add `internal {leaf.node}:`{line}")
                return (ast.Rule("leaf", leaf.node, leaf.statements[:position], leaf.span),
                        ast.Rule("internal", leaf.node, rest, span))
            assigned.update(statement.targets)
        return leaf, None

    def outputs(self, typer: ExpressionTyper) -> tuple[ir.OutputInfo, ...]:
        outputs: list[ir.OutputInfo] = []
        names: set[str] = set()
        for output in self.program.outputs:
            if output.selector not in ("root", "all"):
                self.error("E0210", f"unknown output selector `{output.selector}`",
                           output.selector_span, "not root or all",
                           f"write {output.name}[root] or {output.name}[all]")
                continue
            if output.name in names:
                self.error("E0202", f"output `{output.name}` is defined twice", output.span,
                           "second output", "give each output its own name")
                continue
            names.add(output.name)
            if output.value is None:
                if output.name in typer.broken:
                    continue
                if output.name not in typer.states:
                    typer.error("E0201", f"`{output.name}` is not a state", output.span,
                                "unknown state", "output a declared state, or define a head: "
                                f"{output.name}[root] = softmax(W @ h + b)")
                    continue
                shape = typer.states[output.name].shape
                value: ir.TypedExpr | None = ir.State(output.name, None, shape, output.span)
            else:
                if output.name in self.declared or output.name in typer.broken:
                    self.error("E0202", f"output `{output.name}` hides a declaration",
                               output.span, "name clash", "give the head its own name")
                    continue
                heads = {other.name: "output" for other in self.program.outputs
                         if other.value is not None and other.name != output.name}
                value = typer.expression(output.value, Scope("output", "n", elsewhere=heads))
            if value is not None:
                outputs.append(ir.OutputInfo(output.name, output.selector, value, value.shape,
                                             output.span))
        if not self.program.outputs:
            self.error("E0206", "the model declares no output", self.program.span,
                       "missing `output`", "add e.g. `output h[root]`")
        return tuple(outputs)

    def check(self) -> ir.CheckedProgram:
        program = self.program
        if program == ast.Program("", (), (), (), (), (), (), ()):
            raise CortexError(Diagnostic(
                "E0206", "the file defines no model", Span.point(self.path, 1, 1),
                "empty program", "start with `model NAME`, then sizes, structure, param, "
                "input, state, the rules and an output (see examples/treefc.cx)"),
                program.source)
        if not program.name:
            self.error("E0206", "the file does not start with `model NAME`",
                       Span.point(self.path, 1, 1), "missing model line",
                       "begin the file with e.g. `model TreeLSTM`")
        typer = ExpressionTyper(self.path, {}, ir.StructureInfo("binary_tree", 2), {}, {}, {},
                                self.diagnostics)
        self.sizes(typer)
        typer.structure = self.structure(typer)
        self.params(typer)
        self.inputs(typer)
        self.states(typer)
        leaf, internal, leaf_explicit = self.rules(typer)
        outputs = self.outputs(typer)
        if self.diagnostics:
            unique = {(d.code, d.span, d.message): d for d in self.diagnostics}
            raise CortexError(list(unique.values()), program.source)
        checked = ir.CheckedProgram(
            program.name, tuple(typer.sizes.items()), typer.structure,
            tuple(typer.params.values()), tuple(typer.inputs.values()),
            tuple(typer.states.values()), leaf, internal, outputs, leaf_explicit,
            program.path, program.source)
        _verify(checked, len(program.outputs))
        return checked


def _verify(checked: ir.CheckedProgram, output_count: int) -> None:
    """Catch a checker bug that would drop a statement without reporting why: every rule must
    assign every state, and every output must survive."""
    for rule in (checked.leaf, checked.internal):
        assigned = {statement.target for statement in rule.statements}
        missing = [state.name for state in checked.states if state.name not in assigned]
        if missing:
            raise InternalError("check", f"the {rule.kind} rule lost its assignment to "
                                f"{', '.join(missing)} without a diagnostic")
    if len(checked.outputs) != output_count:
        raise InternalError("check", "an output was dropped without a diagnostic")


def check_program(program: ast.Program,
                  overrides: Mapping[str, int] | None = None) -> ir.CheckedProgram:
    """Check a parsed program; `overrides` replace size values (the command line's -D).

    Raises `CortexError` with every problem found, or `UsageError` for an unknown -D name.
    """
    with collector_paused():
        return _Checker(program, overrides or {}).check()


def load_program(path: str, overrides: Mapping[str, int] | None = None) -> ir.CheckedProgram:
    """Parse and check a .cx file."""
    from cortexlang.frontend.parse import parse_file

    return check_program(parse_file(path), overrides)


def check_source(source: str, path: str = "<input>",
                 overrides: Mapping[str, int] | None = None) -> ir.CheckedProgram:
    """Parse and check a .cx source text."""
    from cortexlang.frontend.parse import parse_program

    return check_program(parse_program(source, path), overrides)
