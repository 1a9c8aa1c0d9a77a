"""The unit loops of a phase as OpenCL C: each work-item's units for every node of its tile,
the dot products of the loop fused into shared loops over k (one accumulator per node and
output, weight loads shared), then the loop's other values and its stores."""

from __future__ import annotations

from cortexlang.codegen.dialect import OPENCL
from cortexlang.codegen.expressions import Context, c_expr, vector_type
from cortexlang.codegen.writer import Writer, comment
from cortexlang.ir import loops as L
from cortexlang.ir.buffers import BufferRef
from cortexlang.ir.kernels import Shape
from cortexlang.ir.operators import REDUCTIONS, Element, c_spelling, operator_named


def _vector_lets(body: tuple[L.Stmt, ...]) -> set[str]:
    """The float lets of a unit loop that differ from unit to unit (they read `j` or such a
    let): with a vector width, these are vectors; the others (per-node conditions,
    reductions) stay scalars."""
    varying: set[str] = set()
    for stmt in body:
        if not isinstance(stmt, L.Let) or stmt.integer or isinstance(stmt.value, L.Reduce):
            continue
        names = {sub.name for sub in L.walk_exprs(stmt.value) if isinstance(sub, L.Var)}
        if "j" in names or names & varying:
            varying.add(stmt.name)
    return varying


def _dot_inputs(body: tuple[L.Stmt, ...]) -> set[str]:
    """The lets the dot products of a unit loop read, and the lets those read."""
    lets = {stmt.name: stmt for stmt in body if isinstance(stmt, L.Let)}
    needed: set[str] = set()
    pending = [sub.name for stmt in lets.values() if isinstance(stmt.value, L.Dot)
               for sub in L.walk_exprs(stmt.value) if isinstance(sub, L.Var)]
    while pending:
        name = pending.pop()
        if name in lets and name not in needed and not isinstance(lets[name].value, L.Dot):
            needed.add(name)
            pending += [sub.name for sub in L.walk_exprs(lets[name].value)
                        if isinstance(sub, L.Var)]
    return needed


def _rename_lets(stmts: tuple[L.Stmt, ...], suffix: str, rename: dict[str, str]) -> None:
    for stmt in stmts:
        if isinstance(stmt, L.Let):
            rename[stmt.name] = f"{stmt.name}{suffix}"



class UnitLoopPrinter:
    """The unit-loop half of the kernel printer (see `opencl.KernelPrinter`, which sets
    `writer`, `buffers` and `full_tiles`)."""

    writer: Writer
    buffers: dict[BufferRef, str]
    full_tiles: bool

    def unit_group(self, loop: L.Loop, contexts: list[Context], width: int,
                   rows: tuple[int, int] | None, unrolled: set[Shape],
                   splits: dict[Shape, int]) -> None:
        """One unit loop: this work-item's `width` consecutive units, for every tile node;
        with `rows` (count, length), the same columns of `count` consecutive rows of a
        flattened matrix (units j, j + length, ...), whose per-column loads are shared.
        `unrolled` and `splits`: the loop's dot-product shapes that step along k by 4, and
        the partial sums of the others, for a tile of this many nodes."""
        w = self.writer
        extent = int(loop.stop.value) if isinstance(loop.stop, L.Const) else 0
        count, length = rows or (1, 0)
        w.open(f"if (unit < {extent // width // count})")
        if rows:
            blocks = length // width
            w.line(f"const int j = (unit / {blocks}) * {count * length} + "
                   f"(unit % {blocks}) * {width};")
        else:
            w.line(f"const int j = unit * {width};")
        vector_lets = _vector_lets(loop.body)
        lanes: list[tuple[int, Context]] = []
        for t, context in enumerate(contexts):
            for row in range(count):
                copy = Context(context.buffers, dict(context.rename), context.local,
                                layouts=context.layouts, row_offset=row * length,
                                row_length=length, helpers=context.helpers)
                suffix = f"_t{t}" if not rows else f"_t{t}_r{row}"
                _rename_lets(loop.body, suffix, copy.rename)
                copy.vectors = {copy.rename[name] for name in vector_lets} \
                    if width > 1 else set()
                lanes.append((t, copy))
        # Lets the dot products read (per-node conditions, the same in every unit) come
        # before the fused dot loops; every other let after them.
        early = _dot_inputs(loop.body)
        self.lets(loop.body, lanes, width, early, len(contexts))
        dots = [(stmt, context) for _, context in lanes for stmt in loop.body
                if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot)]
        self.fused_dots(dots, width, unrolled, splits)
        self.lets(loop.body, lanes, width, None, len(contexts), skip=early)
        w.close()

    def lets(self, body: tuple[L.Stmt, ...], lanes: list[tuple[int, Context]], width: int,
             only: set[str] | None, tile: int, skip: set[str] | None = None) -> None:
        """The unit loop's lets other than dot products (those in `only`, when given, and
        none in `skip`) and its stores, for every tile node."""
        w = self.writer
        vector = vector_type(width)
        for t, context in lanes:
            for stmt in body:
                if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Dot):
                    continue
                if isinstance(stmt, L.Let) and (stmt.name in (skip or ()) or
                                                (only is not None and stmt.name not in only)):
                    continue
                if only is not None and not isinstance(stmt, L.Let):
                    continue
                if isinstance(stmt, L.Let) and isinstance(stmt.value, L.Reduce):
                    self.reduce(stmt, context)
                elif isinstance(stmt, L.Let):
                    vectorised = context.rename[stmt.name] in context.vectors
                    ctype = "int" if stmt.integer else vector if vectorised else "float"
                    lanes_of = width if vectorised else 1
                    w.line(f"const {ctype} {context.rename[stmt.name]} = "
                           f"{c_expr(stmt.value, context, lanes_of)};")
                elif isinstance(stmt, L.Store):
                    guard = f"if (tile * {tile} + {t} < count) " \
                        if t and not self.full_tiles else ""
                    target = self.buffers[stmt.buffer]
                    index = c_expr(stmt.index, context)
                    value = c_expr(stmt.value, context, width)
                    store = OPENCL.vstore(width, value, f"{target} + ({index})") if width > 1 \
                        else f"{target}[{index}] = {value};"
                    w.line(f"{guard}{store}  {comment(stmt.note)}")

    def reduce(self, stmt: L.Let, context: Context) -> None:
        w = self.writer
        reduce = stmt.value
        assert isinstance(reduce, L.Reduce)
        name = context.rename[stmt.name]
        reduction = REDUCTIONS[reduce.op]
        w.line(f"float {name} = {c_expr(L.Const(reduction.identity), context)};")
        body = c_expr(reduce.body, context)
        combine = operator_named(reduction.combine)
        update = f"{name} {combine.infix}= {body};" if combine.element is Element.INFIX else \
            f"{name} = {c_spelling(combine.name).scalar}({name}, {body});"
        w.line(f"for (int k = {reduce.start}; k < {reduce.stop}; ++k) {update}")

    def fused_dots(self, dots: list[tuple[L.Let, Context]], width: int,
                   unrolled: set[Shape], splits: dict[Shape, int]) -> None:
        """Emit all dot products, one loop per shared segment shape, loads shared.

        With `width` > 1 each accumulator is a vector over consecutive units and k steps one
        by one; otherwise k steps by 4 with vector loads for the shapes in `unrolled` (chosen
        by the `unroll_dot_products` pass), one by one for the others. A shape in `splits`
        (chosen by `split_dot_chains`) sums that many partial sums over consecutive k."""
        w = self.writer
        groups: dict[tuple[tuple[int, int], ...], list[tuple[L.Let, Context]]] = {}
        for let, context in dots:
            assert isinstance(let.value, L.Dot)
            shape = tuple((s.start, s.stop) for s in let.value.segments)
            groups.setdefault(shape, []).append((let, context))
        for members in groups.values():
            first = members[0][0].value
            assert isinstance(first, L.Dot)
            segments_of = [let.value.segments for let, _ in members]  # type: ignore[union-attr]
            shape = tuple((s.start, s.stop) for s in first.segments)
            along_k = width == 1 and shape in unrolled
            lanes, axis = (4, "k") if along_k else (width, "j")
            kind = vector_type(lanes)
            zero = f"({kind})(0.0f)" if lanes > 1 else "0.0f"
            split = splits.get(shape, 1)
            accumulators = [f"acc_{context.rename[let.name]}" for let, context in members]
            chains = [[f"{a}_p{p}" if p else a for p in range(split)] for a in accumulators]
            w.line(f"{kind} " + ", ".join(f"{c} = {zero}" for chain in chains for c in chain)
                   + ";")
            for position, segment in enumerate(first.segments):
                step = 4 if along_k else split
                w.open(f"for (int k = {segment.start}; k < {segment.stop}; k += {step})")
                loads: dict[str, str] = {}
                updates: list[str] = []
                for part_index in range(split):
                    if split > 1:
                        w.line(f"const int k{part_index} = k + {part_index};")
                    for (_, context), chain, segments in zip(members, chains, segments_of,
                                                             strict=True):
                        context.rename["k"] = f"k{part_index}" if split > 1 else "k"
                        part = segments[position]
                        lhs = self._shared(part.lhs, context, lanes, axis, loads)
                        rhs = self._shared(part.rhs, context, lanes, axis, loads)
                        updates.append(f"{chain[part_index]} += {lhs} * {rhs};")
                for _, context in members:
                    context.rename.pop("k", None)
                for text, name in loads.items():
                    w.line(f"const {kind} {name} = {text};")
                for update in updates:
                    w.line(update)
                w.close()
            for (let, context), chain in zip(members, chains, strict=True):
                accumulator = " + ".join(chain)
                if along_k:
                    total = " + ".join(f"{a}.{lane}" for a in chain for lane in "xyzw")
                    w.line(f"const float {context.rename[let.name]} = {total};")
                else:
                    w.line(f"const {kind} {context.rename[let.name]} = {accumulator};")

    @staticmethod
    def _shared(operand: L.Expr, context: Context, lanes: int, axis: str,
                loads: dict[str, str]) -> str:
        """An operand of a dot product: one that reads memory is named once per loop
        iteration (`r0`, `r1`, ...), shared by every accumulator that reads the same;
        others stay inline."""
        text = c_expr(operand, context, lanes, axis)
        if not any(isinstance(sub, L.Load) for sub in L.walk_exprs(operand)):
            return text
        if text not in loads:
            loads[text] = f"r{len(loads)}"
        return loads[text]
