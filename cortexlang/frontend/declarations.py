"""The declarations of a model, checked: sizes (with command-line overrides), the structure,
parameters with their initialisers, inputs and states (`DeclarationChecker`).

Each declaration is recorded on the typer (`ExpressionTyper.sizes`, `.params`, ...) or, when it
has errors, reported and marked broken so that its uses stay silent.
"""

from __future__ import annotations

from collections.abc import Mapping

from cortexlang.errors import Diagnostic, Span, UsageError
from cortexlang.frontend import ast
from cortexlang.frontend.typing import BUILTIN_FUNCTIONS, MAX_SIZE, ExpressionTyper, did_you_mean
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

class DeclarationChecker:
    """Checks the declarations of one program, collecting diagnostics."""

    def __init__(self, program: ast.Program, overrides: Mapping[str, int]) -> None:
        self.program = program
        self.overrides = validated_overrides(overrides)
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
            known = ", ".join(dict.fromkeys(s.name for s in self.program.sizes)) or "none"
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
        values = [number_literal(arg) for arg in args]
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


def number_literal(expr: ast.Expr) -> float | None:
    """The value of a number literal (or its negation), else None."""
    if isinstance(expr, ast.Number):
        return expr.value
    if isinstance(expr, ast.Neg) and isinstance(expr.arg, ast.Number):
        return -expr.arg.value
    return None


def validated_overrides(overrides: Mapping[str, int]) -> dict[str, int]:
    """Override values come from the command line (`cortexlang.commands.common` parses -D);
    range and existence are checked against the model, the type here."""
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(Diagnostic(
                "E0214", f"-D {name}={value!r}: a size must be a whole number", None, "",
                f"write -D {name}=256"))
    return dict(overrides)
