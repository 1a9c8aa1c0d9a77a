"""The checker: from a parsed `ast.Program` to a legal, typed `CheckedProgram`.

It resolves sizes (with command-line overrides), the structure, parameters, inputs and
states, types every rule and output (see `cortexlang.frontend.typing`), and reports every
problem it finds, sorted by position, in one `CortexError`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cortexlang.errors import CortexError, Diagnostic, InternalError, Span, UsageError
from cortexlang.frontend import ast
from cortexlang.frontend.typing import (
    BUILTIN_FUNCTIONS,
    MAX_SIZE,
    ExpressionTyper,
    Scope,
    did_you_mean,
    format_shape,
)
from cortexlang.ir import checked as ir

STRUCTURE_KINDS = {
    # kind: (default max_children, whether max_children may be given)
    "binary_tree": (2, False),
    "tree": (None, True),
    "dag": (2, True),
    "sequence": (1, False),
}
INITIALISERS = {"uniform": (1, 2), "normal": (2, 2), "zeros": (0, 0), "ones": (0, 0),
                "constant": (1, 1)}
DEFAULT_INIT = ("uniform", (-0.1, 0.1))


class _Checker:
    def __init__(self, program: ast.Program, overrides: Mapping[str, int]) -> None:
        self.program = program
        self.overrides = _validated_overrides(overrides)
        self.path = program.path
        self.diagnostics: list[Diagnostic] = []
        self.declared: dict[str, Span | None] = {}

    def error(self, code: str, message: str, span: Span | None, label: str = "",
              hint: str = "", notes: tuple[str, ...] = ()) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label, hint, notes))

    def declare(self, name: str, span: Span | None, what: str) -> bool:
        """Record a top-level name; report duplicates and clashes with built-ins."""
        if name in BUILTIN_FUNCTIONS:
            self.error("E0202", f"`{name}` is a built-in function", span,
                       f"cannot name a {what}", "choose another name")
            return False
        if name in self.declared:
            previous = self.declared[name]
            self.error("E0202", f"`{name}` is defined twice", span, "second definition",
                       f"the first is at {previous}" if previous else "rename one of them")
            return False
        self.declared[name] = span
        return True

    # -- declarations --------------------------------------------------------------------------
    def sizes(self, typer: ExpressionTyper) -> None:
        typer.later_sizes = {size.name: size.span for size in self.program.sizes}
        for size in self.program.sizes:
            typer.later_sizes.pop(size.name, None)
            if not self.declare(size.name, size.span, "size"):
                continue
            from_command_line = size.name in self.overrides
            if from_command_line:
                value: int | None = self.overrides.pop(size.name)
            else:
                value = typer.size_value(size.value, f"size {size.name}")
            where = f"-D {size.name}={value}" if from_command_line else f"{size.name} = {value}"
            if value is not None and value <= 0:
                self.error("E0212", f"size {size.name} must be positive", size.span, where,
                           "sizes count hidden units, words, rows")
                value = None
            elif value is not None and value > MAX_SIZE:
                self.error("E0212", f"size {size.name} is too large", size.span, where,
                           f"sizes must stay below {MAX_SIZE + 1}")
                value = None
            if value is None:
                typer.broken.add(size.name)
                continue
            typer.sizes[size.name] = value
        for name in self.overrides:
            known = ", ".join(s.name for s in self.program.sizes) or "none"
            raise UsageError(Diagnostic(
                "E0213", f"-D {name}=...: the model has no size `{name}`", None, "",
                did_you_mean(name, [s.name for s in self.program.sizes])
                or f"sizes of this model: {known}"))

    def structure(self, typer: ExpressionTyper) -> ir.StructureInfo:
        declarations = self.program.structures
        if not declarations:
            self.error("E0206", "the model declares no structure", self.program.span,
                       "missing `structure`", "add e.g. `structure binary_tree`")
            return ir.StructureInfo("binary_tree", 2)
        for extra in declarations[1:]:
            self.error("E0202", "structure is declared twice", extra.span, "second structure",
                       "a model has one structure")
        declaration = declarations[0]
        if declaration.kind not in STRUCTURE_KINDS:
            self.error("E0210", f"unknown structure `{declaration.kind}`", declaration.span,
                       "not a structure kind",
                       did_you_mean(declaration.kind, tuple(STRUCTURE_KINDS)) or
                       "use binary_tree, tree(max_children=K), dag(max_children=K) or sequence")
            return ir.StructureInfo("binary_tree", 2)
        default, configurable = STRUCTURE_KINDS[declaration.kind]
        max_children = default
        seen: set[str] = set()
        for name, value in declaration.args:
            if name != "max_children":
                self.error("E0210", f"{declaration.kind} takes no argument `{name}`",
                           declaration.span, "unexpected argument",
                           "the only structure argument is max_children=K")
                continue
            if name in seen:
                self.error("E0202", "max_children is given twice", value.span, "second value",
                           "give it once")
                continue
            seen.add(name)
            given = typer.size_value(value, "max_children")
            if given is None:
                max_children = None
            elif given < 1:
                self.error("E0210", "max_children must be at least 1", value.span, f"{given}")
                max_children = None
            elif not configurable and given != default:
                self.error("E0210", f"a {declaration.kind} node has exactly {default} "
                           f"child{'ren' * (default != 1)}", value.span, f"{given}",
                           "for any other arity use tree(max_children=K)")
            else:
                max_children = given
        if max_children is None:
            if default is None and not declaration.args:
                self.error("E0210", f"{declaration.kind} needs max_children", declaration.span,
                           "arity unknown", f"write {declaration.kind}(max_children=4)")
            max_children = 2
        return ir.StructureInfo(declaration.kind, max_children)

    def shape(self, typer: ExpressionTyper, dims: tuple[ast.Expr, ...], what: str,
              span: Span | None, ranks: tuple[int, ...]) -> ir.Shape | None:
        values = [typer.size_value(dim, f"a dimension of {what}") for dim in dims]
        for value, dim in zip(values, dims, strict=True):
            if value is not None and value <= 0:
                self.error("E0212", f"{what} has an empty dimension", dim.span, f"{value}",
                           "dimensions must be positive")
        if any(v is None or v <= 0 for v in values):
            return None
        shape = tuple(int(v) for v in values if v is not None)
        if len(shape) not in ranks:
            allowed = ", ".join(map(str, ranks[:-1])) + " or " * (len(ranks) > 1) + str(ranks[-1])
            self.error("E0307", f"{what} must have {allowed} dimensions", span,
                       f"{len(shape)} dimensions")
            return None
        return shape

    def initialiser(self, typer: ExpressionTyper, param: ast.ParamDecl) -> tuple[str, tuple[
            float, ...]]:
        init = param.init
        if init is None:
            return DEFAULT_INIT
        name: str | None = None
        args: tuple[ast.Expr, ...] = ()
        if isinstance(init, ast.Name):
            name = init.name
        elif isinstance(init, ast.Call):
            name, args = init.function, init.args
        if name not in INITIALISERS:
            self.error("E0211", "unknown initialiser", getattr(init, "span", param.span),
                       "not an initialiser",
                       (did_you_mean(name, tuple(INITIALISERS)) + " " if name else "")
                       + "use uniform(a, b), uniform(a), normal(mean, std), zeros, ones or "
                       "constant(v)")
            return DEFAULT_INIT
        low, high = INITIALISERS[name]
        values = [_number(arg) for arg in args]
        if not low <= len(values) <= high or any(v is None for v in values):
            usage = {"uniform": "uniform(low, high) or uniform(bound)",
                     "normal": "normal(mean, std)", "constant": "constant(value)"}
            self.error("E0211", f"{name} takes {low}" + (f" or {high}" if high != low else "")
                       + f" number{'s' * (high != 1)}", getattr(init, "span", param.span),
                       "bad arguments", f"write {usage.get(name, name)}")
            return DEFAULT_INIT
        numbers = tuple(float(v) for v in values if v is not None)
        if name == "uniform" and len(numbers) == 1:
            numbers = (-abs(numbers[0]), abs(numbers[0]))
        if (name == "uniform" and numbers[0] > numbers[1]) or (name == "normal"
                                                               and numbers[1] < 0):
            self.error("E0211", f"bad {name} bounds", getattr(init, "span", param.span),
                       "empty range" if name == "uniform" else "negative deviation",
                       "write uniform(low, high) with low <= high, normal(mean, std >= 0)")
            return DEFAULT_INIT
        return (name, numbers)

    def params(self, typer: ExpressionTyper) -> None:
        for param in self.program.params:
            if not self.declare(param.name, param.span, "parameter"):
                continue
            shape = self.shape(typer, param.shape, f"parameter {param.name}", param.span,
                               (1, 2, 3))
            init = self.initialiser(typer, param)
            if shape is None:
                typer.broken.add(param.name)
            else:
                typer.params[param.name] = ir.ParamInfo(param.name, shape, init, param.span)

    def inputs(self, typer: ExpressionTyper) -> None:
        seen: dict[str, str] = {}
        for item in self.program.inputs:
            if not self.declare(item.name, item.span, "input"):
                continue
            kind = "token" if item.kind == "token" else "vector"
            if kind in seen and item.kind in ("token", "vector"):
                # Input files carry one token and one feature vector per node.
                self.error("E0215", f"a model reads at most one {kind} input per node",
                           item.span, f"`{seen[kind]}` is already the {kind} input",
                           "trees carry one word per node, grids one feature vector per cell")
                typer.broken.add(item.name)
                continue
            seen[kind] = item.name
            if item.kind == "vector":
                shape = self.shape(typer, item.shape, f"input {item.name}", item.span, (1,))
                if shape is None:
                    typer.broken.add(item.name)
                else:
                    typer.inputs[item.name] = ir.InputInfo(item.name, "vector", shape, item.span)
            elif item.kind == "token":
                typer.inputs[item.name] = ir.InputInfo(item.name, "token", (), item.span)
            else:
                typer.broken.add(item.name)
                self.error("E0210", f"unknown input kind `{item.kind}`", item.span,
                           "not an input kind", f"write `input {item.name}: token` or "
                           f"`input {item.name}[X]` for a vector")

    def states(self, typer: ExpressionTyper) -> None:
        for state in self.program.states:
            if not self.declare(state.name, state.span, "state"):
                continue
            shape = self.shape(typer, state.shape, f"state {state.name}", state.span, (1, 2))
            if shape is None:
                typer.broken.add(state.name)
            else:
                typer.states[state.name] = ir.StateInfo(state.name, shape, state.span)
        if not self.program.states:
            self.error("E0206", "the model declares no state", self.program.span,
                       "missing `state`", "add e.g. `state h[H]`")

    # -- rules ---------------------------------------------------------------------------------
    def rule(self, typer: ExpressionTyper, rule: ast.Rule,
             elsewhere: dict[str, str]) -> ir.CheckedRule:
        scope = Scope(rule.kind, rule.node, elsewhere=elsewhere)
        if rule.node in self.declared or rule.node in typer.broken:
            self.error("E0202", f"the node variable `{rule.node}` hides a declaration",
                       rule.span, "name clash", "call the node n")
        statements: list[ir.Assign] = []
        # Where each name is assigned from each statement on, for "assigned at line N" hints.
        later: list[dict[str, Span | None]] = []
        upcoming: dict[str, Span | None] = {}
        for statement in reversed(rule.statements):
            spans = statement.target_spans or (statement.span,) * len(statement.targets)
            upcoming = {**upcoming, **dict(zip(statement.targets, spans, strict=True))}
            later.append(upcoming)
        later.reverse()
        scope.reserved = set().union(*(statement.targets for statement in rule.statements))
        for statement, pending in zip(rule.statements, later, strict=True):
            scope.later = pending
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


def _number(expr: ast.Expr) -> float | None:
    if isinstance(expr, ast.Number):
        return expr.value
    if isinstance(expr, ast.Neg) and isinstance(expr.arg, ast.Number):
        return -expr.arg.value
    return None


def _validated_overrides(overrides: Mapping[str, int]) -> dict[str, int]:
    """Override values come from the command line (`cortexlang.commands.common` parses -D);
    range and existence are checked against the model, the type here."""
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(Diagnostic(
                "E0214", f"-D {name}={value!r}: a size must be a whole number", None, "",
                f"write -D {name}=256"))
    return dict(overrides)


def check_program(program: ast.Program,
                  overrides: Mapping[str, int] | None = None) -> ir.CheckedProgram:
    """Check a parsed program; `overrides` replace size values (the command line's -D).

    Raises `CortexError` with every problem found, or `UsageError` for an unknown -D name.
    """
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
