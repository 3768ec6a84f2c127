"""Expressions over configuration columns, parsed once with :mod:`ast` (never ``eval``).

An expression such as ``"tp*pp <= 8 and batch % tp == 0"`` is parsed into a checked syntax tree
by :class:`Expression`, then compiled to the stack bytecode of the C++ engine against a table of
column slots (:meth:`Expression.compile`). The language:

- numbers, ``True``/``False``, column names (axes, fixed workload values, derived columns and,
  where allowed, objectives such as ``latency_s``);
- ``+ - * / // % **``, unary ``-``/``+``, comparisons (chains allowed), ``and``/``or``/``not``;
- ``min(a, b, ...)``, ``max(a, b, ...)``, ``abs(a)``;
- categories as strings, compared with a categorical axis: ``gpu == "H100"``,
  ``quant in ("fp8", "int4")``;
- a lookup by the value of an axis: ``{"H100": 80, "A100": 40}[gpu]`` (keys absent from the axis
  are ignored, every value of the axis needs a key).

Semantics follow Python on floats, with two exceptions: division (or ``%``, ``//``) by zero gives
NaN instead of raising, and a NaN condition is false; ``and``/``or``/``not`` give 1 or 0.

Categorical axes are text: they compare with their values (``gpu == "H100"``), with ``in``, or
with another categorical axis (``gpu == gpu2`` compares the texts, whatever the order of the two
axes' values); ordering (``<``), numbers (``gpu < 1``) and arithmetic on them are refused.
Integer constants are exact up to 2**53 and refused past it. Identifiers must be in NFKC normal
form (Python would read ``ℌ`` as ``H``). An expression is at most :data:`MAX_LENGTH` characters,
:data:`MAX_NODES` syntax nodes and :data:`MAX_DEPTH` levels of nesting.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "OP", "Code", "Expression", "Slots"]

#: Limits of one expression: characters, syntax-tree nodes, nesting depth.
MAX_LENGTH = 10_000
MAX_NODES = 5_000
MAX_DEPTH = 100
_MAX_EXACT_INT = 2**53

#: Opcodes of the C++ bytecode (space.hpp, ``enum class Op``).
OP: dict[str, int] = {
    "const": 0,
    "load": 1,
    "add": 2,
    "sub": 3,
    "mul": 4,
    "div": 5,
    "floordiv": 6,
    "mod": 7,
    "pow": 8,
    "neg": 9,
    "not": 10,
    "lt": 11,
    "le": 12,
    "gt": 13,
    "ge": 14,
    "eq": 15,
    "ne": 16,
    "and": 17,
    "or": 18,
    "min": 19,
    "max": 20,
    "abs": 21,
    "lookup": 22,
}

#: A compiled program: (opcode, argument, constant) triples.
Code = list[tuple[int, int, float]]

_BINOPS: dict[type, str] = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.FloorDiv: "floordiv",
    ast.Mod: "mod",
    ast.Pow: "pow",
}
_CMPOPS: dict[type, str] = {
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Eq: "eq",
    ast.NotEq: "ne",
}
_FUNCS = {"min": (1, None), "max": (1, None), "abs": (1, 1)}


@dataclass(frozen=True)
class Slots:
    """What names mean when compiling: a slot per column, and the categories of axes.

    Attributes
    ----------
    slot : mapping of str to int
        Column name to slot index.
    values : mapping of str to sequence
        For each axis, its values in code order (strings for categorical axes).
    """

    slot: Mapping[str, int]
    values: Mapping[str, Sequence[object]]

    def categorical(self, name: str) -> bool:
        vals = self.values.get(name)
        return bool(vals) and all(isinstance(v, str) for v in vals)  # type: ignore[union-attr]


class Expression:
    """A parsed, checked expression; compiled to bytecode against column slots on demand.

    Parameters
    ----------
    source : str
        The expression text, e.g. ``"tp*pp <= 8 and batch % tp == 0"``.
    what : str
        How errors name it (e.g. ``"constraint"``, ``"where"``).

    Raises
    ------
    ValueError
        For a syntax error or a construct outside the language, quoting the expression and
        pointing at the bad part.
    """

    def __init__(self, source: str, *, what: str = "constraint") -> None:
        if not isinstance(source, str):
            raise ValueError(f"{what}: expected an expression string, got {type(source).__name__}")
        self.source = source
        self.what = what
        if not source.strip():
            raise ValueError(f"{what}: empty expression")
        if len(source) > MAX_LENGTH:
            raise ValueError(
                f"{what}: expression too long ({len(source)} characters; the limit is {MAX_LENGTH})"
            )
        self._check_identifiers(source.strip())
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as e:
            col = (e.offset or 1) - 1
            raise ValueError(self._point(f"malformed expression ({e.msg})", col, col + 1)) from None
        except (RecursionError, MemoryError):
            raise ValueError(self._too_complex("the parser ran out of room")) from None
        self._src = source.strip()
        self.tree = tree.body
        self._check_size(self.tree)
        self.names: frozenset[str] = frozenset(self._check(self.tree))

    def _too_complex(self, detail: str) -> str:
        return (
            f"{self.what}: expression too complex ({detail}; the limits are {MAX_DEPTH} levels "
            f"of nesting and {MAX_NODES} terms)"
        )

    def _check_identifiers(self, src: str) -> None:
        """Refuse identifiers that Python would NFKC-normalise into another name."""
        if src.isascii():
            return
        try:
            for tok in tokenize.generate_tokens(io.StringIO(src).readline):
                if tok.type == tokenize.NAME:
                    norm = unicodedata.normalize("NFKC", tok.string)
                    if norm != tok.string:
                        start = len(src.splitlines()[0][: tok.start[1]]) if tok.start[0] == 1 else 0
                        raise ValueError(
                            self._point(
                                f"identifier {tok.string!r} is not in NFKC normal form; Python "
                                f"reads it as {norm!r} (write {norm!r})",
                                start,
                                start + len(tok.string),
                            )
                        )
        except (tokenize.TokenError, SyntaxError):
            return  # ast.parse reports malformed text

    def _check_size(self, tree: ast.AST) -> None:
        """Depth and size limits, checked without recursion."""
        stack = [(tree, 1)]
        nodes = 0
        while stack:
            node, depth = stack.pop()
            nodes += 1
            if depth > MAX_DEPTH:
                raise ValueError(self._too_complex(f"more than {MAX_DEPTH} levels of nesting"))
            if nodes > MAX_NODES:
                raise ValueError(self._too_complex(f"more than {MAX_NODES} terms"))
            stack.extend((c, depth + 1) for c in ast.iter_child_nodes(node))

    # ------------------------------------------------------------------ errors
    def _point(self, msg: str, start: int, end: int) -> str:
        src = self.source.strip()
        start = max(0, min(start, len(src)))
        end = max(start + 1, min(end, len(src)))
        return f"{self.what} {src!r}: {msg}\n    {src}\n    {' ' * start}{'^' * (end - start)}"

    def error(self, node: ast.AST, msg: str) -> ValueError:
        """A ``ValueError`` quoting the expression with a caret under ``node``."""
        start = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", start + 1) or start + 1
        return ValueError(self._point(msg, start, end))

    # ------------------------------------------------------------------ checking
    def _check(self, node: ast.AST) -> set[str]:
        """Names used by ``node``; ``ValueError`` for anything outside the language."""
        if isinstance(node, ast.Name):
            return {node.id}
        if isinstance(node, ast.Constant):
            if isinstance(node.value, int) and abs(node.value) > _MAX_EXACT_INT:
                raise self.error(
                    node, "integer past 2**53: float64 numbers are not exact integers there"
                )
            if isinstance(node.value, (bool, int, float, str)):
                return set()
            raise self.error(node, f"unsupported constant {node.value!r}")
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise self.error(node, f"unsupported operator {type(node.op).__name__}")
            return self._check(node.left) | self._check(node.right)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
                raise self.error(node, f"unsupported operator {type(node.op).__name__}")
            return self._check(node.operand)
        if isinstance(node, ast.BoolOp):
            out: set[str] = set()
            for v in node.values:
                out |= self._check(v)
            return out
        if isinstance(node, ast.Compare):
            out = self._check(node.left)
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.In, ast.NotIn)):
                    if not isinstance(right, (ast.Tuple, ast.List, ast.Set)) or not right.elts:
                        raise self.error(right, "'in' needs a non-empty literal tuple or list")
                    for elt in right.elts:
                        if not isinstance(elt, ast.Constant):
                            raise self.error(elt, "'in' takes constants only")
                        self._check(elt)
                elif type(op) not in _CMPOPS:
                    raise self.error(node, f"unsupported comparison {type(op).__name__}")
                else:
                    out |= self._check(right)
            return out
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
                raise self.error(node.func, "unknown function (allowed: min, max, abs)")
            if node.keywords:
                raise self.error(node, "keyword arguments are not allowed")
            lo, hi = _FUNCS[node.func.id]
            if len(node.args) < lo or (hi is not None and len(node.args) > hi):
                raise self.error(node, f"{node.func.id}() takes the wrong number of arguments")
            out = set()
            for a in node.args:
                if isinstance(a, ast.Starred):
                    raise self.error(a, "starred arguments are not allowed")
                out |= self._check(a)
            return out
        if isinstance(node, ast.Subscript):
            if not isinstance(node.value, ast.Dict) or not isinstance(node.slice, ast.Name):
                raise self.error(node, "only a lookup {key: value, ...}[axis] is allowed")
            for k, v in zip(node.value.keys, node.value.values):
                if not isinstance(k, ast.Constant) or not isinstance(
                    k.value, (str, int, float, bool)
                ):
                    raise self.error(k or node, "lookup keys must be constants")
                if not (
                    (isinstance(v, ast.Constant) and isinstance(v.value, (int, float)))
                    or (
                        isinstance(v, ast.UnaryOp)
                        and isinstance(v.op, ast.USub)
                        and isinstance(v.operand, ast.Constant)
                        and isinstance(v.operand.value, (int, float))
                    )
                ):
                    raise self.error(v, "lookup values must be numbers")
            return {node.slice.id}
        raise self.error(node, f"unsupported syntax ({type(node).__name__})")

    # ------------------------------------------------------------------ compiling
    def check_names(self, known: Sequence[str], *, detail: str = "") -> None:
        """``ValueError`` pointing at the first name not in ``known``."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and node.id not in known:
                if isinstance(node.ctx, ast.Load) and self._is_function(node):
                    continue
                hint = difflib.get_close_matches(node.id, list(known), n=1, cutoff=0.6)
                msg = f"unknown name {node.id!r}"
                if hint:
                    msg += f" (did you mean {hint[0]!r}?)"
                msg += f"; known: {', '.join(known)}"
                if detail:
                    msg += f" ({detail})"
                raise self.error(node, msg)

    def _is_function(self, name: ast.Name) -> bool:
        return any(isinstance(node, ast.Call) and node.func is name for node in ast.walk(self.tree))

    def compile(self, slots: Slots) -> Code:
        """The bytecode of this expression, names resolved through ``slots``."""
        self.check_names(list(slots.slot))
        code: Code = []
        self._emit(self.tree, slots, code)
        return code

    def _const(self, node: ast.AST, slots: Slots, against: ast.AST | None) -> float:
        """The numeric value of a constant; strings become the code of ``against``'s category."""
        assert isinstance(node, ast.Constant)
        v = node.value
        if isinstance(v, str):
            if not (isinstance(against, ast.Name) and slots.categorical(against.id)):
                raise self.error(node, "a string can only be compared with a categorical axis")
            cats = list(slots.values[against.id])
            if v not in cats:
                hint = difflib.get_close_matches(v, [str(c) for c in cats], n=1, cutoff=0.6)
                msg = f"{v!r} is not a value of axis {against.id!r}"
                msg += f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.error(node, msg + f"; values: {', '.join(map(str, cats))}")
            return float(cats.index(v))
        assert isinstance(v, (bool, int, float))  # _check admits nothing else
        return float(v)

    def _emit(
        self, node: ast.AST, slots: Slots, code: Code, against: ast.AST | None = None
    ) -> None:
        if isinstance(node, ast.Name):
            if slots.categorical(node.id):
                raise self.error(node, self._text_only(node.id))
            code.append((OP["load"], int(slots.slot[node.id]), 0.0))
        elif isinstance(node, ast.Constant):
            code.append((OP["const"], 0, self._const(node, slots, against)))
        elif isinstance(node, ast.BinOp):
            self._emit(node.left, slots, code)
            self._emit(node.right, slots, code)
            code.append((OP[_BINOPS[type(node.op)]], 0, 0.0))
        elif isinstance(node, ast.UnaryOp):
            self._emit(node.operand, slots, code)
            if isinstance(node.op, ast.USub):
                code.append((OP["neg"], 0, 0.0))
            elif isinstance(node.op, ast.Not):
                code.append((OP["not"], 0, 0.0))
        elif isinstance(node, ast.BoolOp):
            op = OP["and"] if isinstance(node.op, ast.And) else OP["or"]
            self._emit(node.values[0], slots, code)
            for v in node.values[1:]:
                self._emit(v, slots, code)
                code.append((op, 0, 0.0))
        elif isinstance(node, ast.Compare):
            left = node.left
            for k, (cmp, right) in enumerate(zip(node.ops, node.comparators)):
                self._compare(left, cmp, right, slots, code)
                if k:
                    code.append((OP["and"], 0, 0.0))
                left = right
        elif isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            for a in node.args:
                self._emit(a, slots, code)
            name = node.func.id
            code.append((OP[name], len(node.args), 0.0))
        elif isinstance(node, ast.Subscript):
            self._lookup(node, slots, code)
        else:  # pragma: no cover - _check rejects everything else
            raise self.error(node, "unsupported syntax")

    @staticmethod
    def _text_only(name: str) -> str:
        return (
            f"{name!r} is a categorical (text) axis; categories compare with == or != only, "
            f'against their values ({name} == "...", {name} in (...)) or another '
            "categorical axis (no order, numbers or arithmetic)"
        )

    def _category(self, node: ast.AST, slots: Slots) -> bool:
        return isinstance(node, ast.Name) and slots.categorical(node.id)

    def _compare_text(
        self, left: ast.AST, op: ast.cmpop, right: ast.AST, slots: Slots, code: Code
    ) -> None:
        """A comparison with a categorical axis on one side, compared as text."""
        cat = left if self._category(left, slots) else right
        other = right if cat is left else left
        assert isinstance(cat, ast.Name)
        if type(op) not in (ast.Eq, ast.NotEq):
            raise self.error(cat, self._text_only(cat.id))
        if isinstance(other, ast.Constant) and isinstance(other.value, str):
            code.append((OP["load"], int(slots.slot[cat.id]), 0.0))
            code.append((OP["const"], 0, self._const(other, slots, cat)))
        elif self._category(other, slots):
            assert isinstance(other, ast.Name)
            a, b = list(slots.values[cat.id]), list(slots.values[other.id])
            if a == b:  # same values in the same order: equal codes are equal texts
                code.append((OP["load"], int(slots.slot[cat.id]), 0.0))
                code.append((OP["load"], int(slots.slot[other.id]), 0.0))
            else:  # text equality: some shared value v with cat == v and other == v
                shared = [v for v in a if v in b]
                for k, v in enumerate(shared):
                    code.append((OP["load"], int(slots.slot[cat.id]), 0.0))
                    code.append((OP["const"], 0, float(a.index(v))))
                    code.append((OP["eq"], 0, 0.0))
                    code.append((OP["load"], int(slots.slot[other.id]), 0.0))
                    code.append((OP["const"], 0, float(b.index(v))))
                    code.append((OP["eq"], 0, 0.0))
                    code.append((OP["and"], 0, 0.0))
                    if k:
                        code.append((OP["or"], 0, 0.0))
                if not shared:
                    code.append((OP["const"], 0, 0.0))
                code.append((OP["const"], 0, 1.0))  # (match) == 1
        else:
            raise self.error(cat, self._text_only(cat.id))
        code.append((OP[_CMPOPS[type(op)]], 0, 0.0))

    def _compare(
        self, left: ast.AST, op: ast.cmpop, right: ast.AST, slots: Slots, code: Code
    ) -> None:
        if isinstance(op, (ast.In, ast.NotIn)):
            assert isinstance(right, (ast.Tuple, ast.List, ast.Set))
            cat = self._category(left, slots)
            for k, elt in enumerate(right.elts):
                assert isinstance(elt, ast.Constant)
                if cat and not isinstance(elt.value, str):
                    assert isinstance(left, ast.Name)
                    raise self.error(elt, self._text_only(left.id))
                if cat:
                    assert isinstance(left, ast.Name)
                    code.append((OP["load"], int(slots.slot[left.id]), 0.0))
                else:
                    self._emit(left, slots, code)
                code.append((OP["const"], 0, self._const(elt, slots, left)))
                code.append((OP["eq"], 0, 0.0))
                if k:
                    code.append((OP["or"], 0, 0.0))
            if isinstance(op, ast.NotIn):
                code.append((OP["not"], 0, 0.0))
            return
        if self._category(left, slots) or self._category(right, slots):
            self._compare_text(left, op, right, slots, code)
            return
        strings = [isinstance(x, ast.Constant) and isinstance(x.value, str) for x in (left, right)]
        if any(strings) and type(op) not in (ast.Eq, ast.NotEq):
            raise self.error(left if strings[0] else right, "categories compare with == or != only")
        self._emit(left, slots, code, against=right)
        self._emit(right, slots, code, against=left)
        code.append((OP[_CMPOPS[type(op)]], 0, 0.0))

    def _lookup(self, node: ast.Subscript, slots: Slots, code: Code) -> None:
        assert isinstance(node.value, ast.Dict) and isinstance(node.slice, ast.Name)
        axis = node.slice.id
        if axis not in slots.values:
            raise self.error(node.slice, f"a lookup needs an axis; {axis!r} is not one")
        table: dict[object, float] = {}
        for k, v in zip(node.value.keys, node.value.values):
            assert isinstance(k, ast.Constant)
            table[k.value] = float(ast.literal_eval(v))
        values = list(slots.values[axis])
        missing = [v for v in values if v not in table]
        if missing:
            raise self.error(node.value, f"lookup has no entry for {missing[0]!r} of axis {axis!r}")
        if slots.categorical(axis):
            # Categories are coded 0, 1, ...: a direct table lookup.
            code.append((OP["lookup"], int(slots.slot[axis]), float(len(values))))
            code.extend((OP["const"], 0, table[v]) for v in values)
            return
        for pos, value in enumerate(values):
            # sum over the axis values of (axis == value) * entry: exactly one term is non-zero.
            code.append((OP["load"], int(slots.slot[axis]), 0.0))
            code.append((OP["const"], 0, float(value)))  # type: ignore[arg-type]
            code.append((OP["eq"], 0, 0.0))
            code.append((OP["const"], 0, table[value]))
            code.append((OP["mul"], 0, 0.0))
            if pos:
                code.append((OP["add"], 0, 0.0))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def __str__(self) -> str:
        return self.source
