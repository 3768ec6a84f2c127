"""Sequence axes: ordered choices from a set (pass pipelines, phase orderings) and their space.

A :class:`SequenceAxis` is an ordered sequence of items drawn from ``choices`` with length
bounds, with or without repeats (no repeats: partial permutations). A :class:`SequenceSpace`
holds sequence axes, ordinary finite axes (lists of values) and fixed values, with constraints
written in a small, safely parsed expression language (never ``eval``)::

    SequenceSpace(
        [SequenceAxis("passes", ["licm", "gvn", "sroa", "instcombine"], 1, 3)],
        axes={"opt": ["O1", "O2"]},
        constraints=["'sroa' in passes", "before(passes, 'sroa', 'gvn')"],
    )

Constraint language (one boolean expression per string):

- names: the sequence axes (a tuple), the ordinary axes and the fixed values;
- literals: numbers, strings, ``True``/``False``, tuples/lists of literals;
- ``x in passes`` / ``x not in passes`` (membership), ``opt in ('O1', 'O2')``;
- comparisons (chains too), ``and``, ``or``, ``not``, ``+ - *`` on numbers;
- ``passes[i]`` (an item; an index out of range makes the whole constraint false);
- ``len(s)``, ``count(s, x)`` (occurrences), ``index(s, x)`` / ``s.index(x)`` (first position;
  an absent ``x`` makes the whole constraint false), ``before(s, a, b)`` (every ``a`` comes
  before every ``b``; true when either is absent), ``adjacent(s, a, b)`` (``b`` right after
  some ``a``), ``unique(s)`` (no repeats).

Feature encoding for the scorers (:meth:`SequenceSpace.encode`, names from
:meth:`SequenceSpace.feature_names`), per sequence axis ``s`` over its ``k`` choices:

- ``s:len``: the length;
- ``s:count[c]``: occurrences of each choice ``c`` (k columns);
- ``s:pos[c]``: first position of ``c`` as ``(i + 1) / max_len``, 0 when absent (k columns);
- ``s:pair[a<b]``: for each unordered pair of choices (in ``choices`` order), +1 when the first
  ``a`` comes before the first ``b``, -1 when after, 0 when either is absent
  (``k (k - 1) / 2`` columns; left out when that exceeds ``max_pairs``).

Ordinary axes add one column each: the number, or the position of the value in the axis' list.
"""

from __future__ import annotations

import ast
import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SequenceAxis", "SequenceConstraint", "SequenceSpace"]

Config = dict[str, Any]


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what}: expected an identifier, got {name!r}")
    return name


@dataclass(frozen=True)
class SequenceAxis:
    """An ordered sequence of items from ``choices``.

    Parameters
    ----------
    name : str
        Identifier (used in constraints and as the configuration key).
    choices : sequence of str or int
        The distinct items a sequence is made of.
    min_len, max_len : int
        Length bounds (inclusive). ``max_len`` defaults to ``len(choices)`` without repeats and
        is required with repeats.
    repeat : bool
        Whether an item may occur more than once (``False``: partial permutations).
    """

    name: str
    choices: tuple[Any, ...]
    min_len: int = 0
    max_len: int | None = None
    repeat: bool = True
    _code: dict[Any, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, Iterable):
            raise ValueError(f"choices: axis {self.name!r} needs a sequence of items")
        ch = tuple(self.choices)
        if not ch:
            raise ValueError(f"choices: axis {self.name!r} has no items")
        for c in ch:
            if isinstance(c, bool) or not isinstance(c, str | int):
                raise ValueError(
                    f"choices: axis {self.name!r}: items must be str or int, got {c!r}"
                )
        if len(set(ch)) != len(ch):
            dup = next(c for c in ch if ch.count(c) > 1)
            raise ValueError(f"choices: axis {self.name!r} repeats the item {dup!r}")
        object.__setattr__(self, "choices", ch)
        if not isinstance(self.repeat, bool):
            raise ValueError(f"repeat: expected True or False, got {self.repeat!r}")
        mx = self.max_len
        if mx is None:
            if self.repeat:
                raise ValueError(f"max_len: axis {self.name!r} allows repeats, so give max_len")
            mx = len(ch)
        for what, v in (("min_len", self.min_len), ("max_len", mx)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{what}: expected an integer >= 0, got {v!r}")
        if self.min_len > mx:
            raise ValueError(f"min_len: {self.min_len} exceeds max_len {mx}")
        if not self.repeat and mx > len(ch):
            raise ValueError(
                f"max_len: {mx} exceeds the {len(ch)} choices of {self.name!r} without repeats"
            )
        object.__setattr__(self, "max_len", int(mx))
        object.__setattr__(self, "min_len", int(self.min_len))
        self._code.update({c: i for i, c in enumerate(ch)})

    @property
    def max(self) -> int:
        assert self.max_len is not None
        return self.max_len

    def count(self) -> int:
        """Number of sequences (exact integer): sum over lengths of k^L or k!/(k-L)!."""
        k = len(self.choices)
        if self.repeat:
            return sum(k**n for n in range(self.min_len, self.max + 1))
        return sum(math.perm(k, n) for n in range(self.min_len, self.max + 1))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Every sequence, shortest first, then in the order of ``choices``."""
        for n in range(self.min_len, self.max + 1):
            if self.repeat:
                yield from itertools.product(self.choices, repeat=n)
            else:
                yield from itertools.permutations(self.choices, n)

    def validate(self, seq: Any) -> tuple[Any, ...]:
        """``seq`` as a tuple; ``ValueError`` naming the axis when it is not a member."""
        if isinstance(seq, str | bytes) or not isinstance(seq, Iterable):
            raise ValueError(f"{self.name}: expected a sequence of items, got {seq!r}")
        t = tuple(seq)
        bad = [x for x in t if x not in self._code]
        if bad:
            raise ValueError(f"{self.name}: unknown item(s) {bad} (choices {list(self.choices)})")
        if not self.min_len <= len(t) <= self.max:
            raise ValueError(f"{self.name}: length {len(t)} outside [{self.min_len}, {self.max}]")
        if not self.repeat and len(set(t)) != len(t):
            raise ValueError(f"{self.name}: repeats an item but the axis has repeat=False")
        return t

    def sample(self, rng: np.random.Generator) -> tuple[Any, ...]:
        """A random sequence: length uniform in the bounds, then items uniform (distinct
        without repeats)."""
        n = int(rng.integers(self.min_len, self.max + 1))
        k = len(self.choices)
        idx = rng.integers(0, k, size=n) if self.repeat else rng.permutation(k)[:n]
        return tuple(self.choices[int(i)] for i in idx)

    def neighbours(self, seq: Sequence[Any]) -> list[tuple[str, tuple[Any, ...]]]:
        """Every sequence one move away, as ``(move, sequence)``: ``swap`` two positions,
        ``insert`` a choice, ``delete`` a position, ``replace`` an item; within the length
        bounds and the repeat rule, each distinct sequence once (first move that makes it)."""
        s = tuple(seq)
        out: dict[tuple[Any, ...], str] = {}

        def add(move: str, t: tuple[Any, ...]) -> None:
            if t != s and t not in out:
                out[t] = move

        n = len(s)
        for i in range(n):
            for j in range(i + 1, n):
                t = list(s)
                t[i], t[j] = t[j], t[i]
                add("swap", tuple(t))
        if n < self.max:
            for i in range(n + 1):
                for c in self.choices:
                    if self.repeat or c not in s:
                        add("insert", (*s[:i], c, *s[i:]))
        if n > self.min_len:
            for i in range(n):
                add("delete", s[:i] + s[i + 1 :])
        for i in range(n):
            for c in self.choices:
                if c != s[i] and (self.repeat or c not in s):
                    add("replace", (*s[:i], c, *s[i + 1 :]))
        return [(m, t) for t, m in out.items()]

    def mutate(self, seq: Sequence[Any], rng: np.random.Generator) -> tuple[Any, ...]:
        """One random move (a move kind first, uniformly among those possible, then its
        arguments); the sequence itself when no move is possible."""
        nb = self.neighbours(seq)
        if not nb:
            return tuple(seq)
        kinds = sorted({m for m, _ in nb})
        kind = kinds[int(rng.integers(len(kinds)))]
        pool = [t for m, t in nb if m == kind]
        return pool[int(rng.integers(len(pool)))]


# ---- the constraint language --------------------------------------------------------------


class _False(Exception):
    """Raised inside a constraint to make it false (absent index, index out of range)."""


def _seq(v: Any, fn: str) -> tuple[Any, ...]:
    if not isinstance(v, tuple):
        raise ValueError(f"{fn}(): expected a sequence axis, got {v!r}")
    return v


def _index(s: Any, x: Any) -> int:
    s = _seq(s, "index")
    if x not in s:
        raise _False
    return s.index(x)


def _before(s: Any, a: Any, b: Any) -> bool:
    s = _seq(s, "before")
    pa = [i for i, v in enumerate(s) if v == a]
    pb = [i for i, v in enumerate(s) if v == b]
    return not pa or not pb or max(pa) < min(pb)


def _adjacent(s: Any, a: Any, b: Any) -> bool:
    s = _seq(s, "adjacent")
    return any(x == a and y == b for x, y in itertools.pairwise(s))


_FUNCS: dict[str, Callable[..., Any]] = {
    "len": lambda s: len(_seq(s, "len")),
    "count": lambda s, x: _seq(s, "count").count(x),
    "index": _index,
    "before": _before,
    "adjacent": _adjacent,
    "unique": lambda s: len(set(_seq(s, "unique"))) == len(s),
}
_NARGS = {"len": 1, "count": 2, "index": 2, "before": 3, "adjacent": 3, "unique": 1}
_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
}


class SequenceConstraint:
    """One constraint expression, parsed once into a checked syntax tree (never ``eval``).

    Parameters
    ----------
    text : str
        The expression (see the module documentation for the language).
    names : iterable of str
        The names it may use (axes and fixed values).
    """

    def __init__(self, text: str, names: Iterable[str]) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"constraints: expected a non-empty expression, got {text!r}")
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise ValueError(f"constraints: cannot parse {text!r} ({e.msg})") from None
        self._names = set(names)
        self._check(tree.body)
        self._tree = tree.body

    def _bad(self, node: ast.AST, why: str) -> ValueError:
        return ValueError(f"constraints: {why} in {self.text!r}")

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, str | int | float | bool):
                raise self._bad(node, f"unsupported literal {node.value!r}")
        elif isinstance(node, ast.Name):
            if node.id not in self._names and node.id not in ("True", "False"):
                raise self._bad(node, f"unknown name {node.id!r} (known: {sorted(self._names)})")
        elif isinstance(node, ast.Tuple | ast.List):
            for e in node.elts:
                if not isinstance(e, ast.Constant):
                    raise self._bad(node, "a tuple or list may hold only literals")
                self._check(e)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.Not | ast.USub):
                raise self._bad(node, f"unsupported operator {type(node.op).__name__}")
            self._check(node.operand)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BIN:
                raise self._bad(node, f"unsupported operator {type(node.op).__name__}")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMP:
                    raise self._bad(node, f"unsupported comparison {type(op).__name__}")
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
        elif isinstance(node, ast.Subscript):
            if not (isinstance(node.value, ast.Name) and node.value.id in self._names):
                raise self._bad(node, "only an axis may be indexed")
            sl = node.slice
            ok = isinstance(sl, ast.Constant) and type(sl.value) is int
            ok = ok or (
                isinstance(sl, ast.UnaryOp)
                and isinstance(sl.op, ast.USub)
                and isinstance(sl.operand, ast.Constant)
                and type(sl.operand.value) is int
            )
            if not ok:
                raise self._bad(node, "an index must be an integer literal")
        elif isinstance(node, ast.Call):
            if node.keywords:
                raise self._bad(node, "keyword arguments are not supported")
            f = node.func
            if isinstance(f, ast.Attribute):  # s.index(x) or s.count(x)
                if not (isinstance(f.value, ast.Name) and f.attr in ("index", "count")):
                    raise self._bad(node, "only s.index(x) and s.count(x) methods are allowed")
                self._check(f.value)
                nargs = 1
            elif isinstance(f, ast.Name) and f.id in _FUNCS:
                nargs = _NARGS[f.id]
            else:
                name = f.id if isinstance(f, ast.Name) else ast.dump(f)
                raise self._bad(node, f"unknown function {name!r} (known: {sorted(_FUNCS)})")
            if len(node.args) != nargs:
                raise self._bad(node, f"wrong number of arguments ({len(node.args)})")
            for a in node.args:
                self._check(a)
        else:
            raise self._bad(node, f"unsupported syntax {type(node).__name__}")

    def __call__(self, env: Mapping[str, Any]) -> bool:
        """Whether the configuration ``env`` satisfies the constraint."""
        try:
            return bool(self._eval(self._tree, env))
        except _False:
            return False
        except TypeError as e:
            raise ValueError(f"constraints: {self.text!r} does not apply ({e})") from None

    def _eval(self, node: ast.AST, env: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return {"True": True, "False": False}.get(node.id, env.get(node.id))
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(self._eval(e, env) for e in node.elts)
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, env) for v in node.values)
            return any(self._eval(v, env) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            return (not v) if isinstance(node.op, ast.Not) else -v
        if isinstance(node, ast.BinOp):
            return _BIN[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, c in zip(node.ops, node.comparators):
                right = self._eval(c, env)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Subscript):
            s = self._eval(node.value, env)
            sl = node.slice
            i = self._eval(sl, env)
            if not isinstance(s, tuple):
                raise TypeError(f"{ast.unparse(node.value)} is not a sequence")
            if not -len(s) <= i < len(s):
                raise _False
            return s[i]
        if isinstance(node, ast.Call):
            args = [self._eval(a, env) for a in node.args]
            f = node.func
            if isinstance(f, ast.Attribute):
                s = self._eval(f.value, env)
                return _index(s, args[0]) if f.attr == "index" else _seq(s, "count").count(args[0])
            assert isinstance(f, ast.Name)
            return _FUNCS[f.id](*args)
        raise AssertionError(type(node).__name__)  # pragma: no cover - rejected by _check

    def __repr__(self) -> str:
        return f"SequenceConstraint({self.text!r})"


# ---- the space ----------------------------------------------------------------------------


class SequenceSpace:
    """Sequence axes plus ordinary finite axes and fixed values, with constraints.

    Parameters
    ----------
    sequences : list of SequenceAxis
        The sequence axes (a configuration holds each as a tuple).
    axes : mapping of name to list of values, optional
        Ordinary finite axes (numbers, strings or booleans); an ``Axis`` is accepted too.
    fixed : mapping of name to value, optional
        Values every configuration carries (usable in constraints).
    constraints : list of str, optional
        Boolean expressions every configuration must satisfy (module documentation).
    pool : int
        Candidates :meth:`tuner_pool` gives the :class:`~energycore.Tuner` when the space is
        larger (a seeded sample); the whole space when it is at most this large.
    max_pairs : int
        Largest number of pair features per sequence axis (:meth:`encode`).
    """

    def __init__(
        self,
        sequences: Sequence[SequenceAxis],
        axes: Mapping[str, Any] | None = None,
        *,
        fixed: Mapping[str, Any] | None = None,
        constraints: Sequence[str] = (),
        pool: int = 2000,
        max_pairs: int = 1000,
    ) -> None:
        seqs = list(sequences)
        if not seqs:
            raise ValueError("sequences: give at least one SequenceAxis")
        for s in seqs:
            if not isinstance(s, SequenceAxis):
                raise ValueError(f"sequences: expected SequenceAxis items, got {s!r}")
        self.sequences = seqs
        self.axes: dict[str, tuple[Any, ...]] = {}
        for name, vals in dict(axes or {}).items():
            _check_name(name, "axes")
            vals = getattr(vals, "values", vals)
            if isinstance(vals, str | bytes) or not isinstance(vals, Iterable):
                raise ValueError(f"axes: axis {name!r} needs a list of values")
            t = tuple(vals)
            if not t:
                raise ValueError(f"axes: axis {name!r} has no values")
            if len(set(t)) != len(t):
                raise ValueError(f"axes: axis {name!r} repeats a value")
            self.axes[name] = t
        self.fixed = dict(fixed or {})
        for name in self.fixed:
            _check_name(name, "fixed")
        names = [s.name for s in seqs] + list(self.axes) + list(self.fixed)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"names: {dup} used more than once (sequences, axes, fixed)")
        self.names = names
        if isinstance(constraints, str):
            constraints = [constraints]
        self.constraints = [SequenceConstraint(c, names) for c in constraints]
        for what, v in (("pool", pool), ("max_pairs", max_pairs)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{what}: expected an integer >= 0, got {v!r}")
        if pool < 1:
            raise ValueError(f"pool: expected an integer >= 1, got {pool!r}")
        self.pool, self.max_pairs = int(pool), int(max_pairs)

    # ---- membership ---------------------------------------------------------------------

    @property
    def params(self) -> list[str]:
        """The varying parameters: sequence axes, then ordinary axes."""
        return [s.name for s in self.sequences] + list(self.axes)

    def satisfies(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` (already validated) passes every constraint."""
        env = {**self.fixed, **config}
        return all(c(env) for c in self.constraints)

    def validate(self, config: Mapping[str, Any]) -> Config:
        """``config`` normalised (sequences as tuples); ``ValueError`` naming the bad field,
        also when it fails a constraint."""
        if not isinstance(config, Mapping):
            raise ValueError(f"config: expected a mapping, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self.params) - set(self.fixed))
        if unknown:
            raise ValueError(f"config: unknown parameter(s) {unknown}")
        out: Config = {}
        for s in self.sequences:
            if s.name not in config:
                raise ValueError(f"config: missing sequence {s.name!r}")
            out[s.name] = s.validate(config[s.name])
        for name, vals in self.axes.items():
            if name not in config:
                raise ValueError(f"config: missing parameter {name!r}")
            if config[name] not in vals:
                raise ValueError(f"{name}: {config[name]!r} is not one of {list(vals)}")
            out[name] = config[name]
        for c in self.constraints:
            if not c({**self.fixed, **out}):
                raise ValueError(f"config: fails the constraint {c.text!r}")
        return out

    def __contains__(self, config: object) -> bool:
        try:
            self.validate(config)  # type: ignore[arg-type]
        except ValueError:
            return False
        return True

    # ---- size and enumeration -----------------------------------------------------------

    def size(self) -> int:
        """Number of configurations before constraints (exact integer)."""
        n = math.prod(s.count() for s in self.sequences)
        return n * math.prod(len(v) for v in self.axes.values())

    def __iter__(self) -> Iterator[Config]:
        """Every configuration that passes the constraints (sequence axes vary slowest)."""
        names = self.params
        pools: list[Iterable[Any]] = [list(s) for s in self.sequences] + list(self.axes.values())
        for combo in itertools.product(*pools):
            c = dict(zip(names, combo))
            if self.satisfies(c):
                yield c

    def enumerate(self, limit: int = 1_000_000) -> list[Config]:
        """Every configuration that passes the constraints; ``ValueError`` when the space
        before constraints holds more than ``limit``."""
        if self.size() > limit:
            raise ValueError(
                f"limit: the space holds {self.size()} configurations before constraints, "
                f"more than {limit}; sample it instead"
            )
        return list(self)

    def count(self, limit: int = 1_000_000) -> int:
        """Configurations that pass the constraints (by enumeration; see :meth:`enumerate`)."""
        if not self.constraints:
            return self.size()
        return len(self.enumerate(limit))

    # ---- search -------------------------------------------------------------------------

    def _draw(self, rng: np.random.Generator) -> Config:
        c: Config = {s.name: s.sample(rng) for s in self.sequences}
        for name, vals in self.axes.items():
            c[name] = vals[int(rng.integers(len(vals)))]
        return c

    def sample(
        self, n: int = 1, *, seed: int | np.random.Generator | None = 0, unique: bool = True,
        max_tries: int | None = None,
    ) -> list[Config]:  # fmt: skip
        """``n`` random configurations that pass the constraints (rejection sampling; each
        sequence's length uniform in its bounds). With ``unique``, no configuration twice;
        fewer than ``n`` come back when ``max_tries`` draws (default ``200 n + 1000``) do not
        find them."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n: expected an integer >= 0, got {n!r}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        tries = 200 * n + 1000 if max_tries is None else max_tries
        out: list[Config] = []
        seen: set[tuple[Any, ...]] = set()
        for _ in range(tries):
            if len(out) >= n:
                break
            c = self._draw(rng)
            key = tuple(c[k] for k in self.params)
            if (unique and key in seen) or not self.satisfies(c):
                continue
            seen.add(key)
            out.append(c)
        return out

    def neighbours(self, config: Mapping[str, Any]) -> list[Config]:
        """Every configuration one move away that passes the constraints: a swap, insert,
        delete or replace in one sequence axis, or another value of one ordinary axis."""
        base = self.validate(config)
        out: list[Config] = []
        for s in self.sequences:
            for _, t in s.neighbours(base[s.name]):
                c = {**base, s.name: t}
                if self.satisfies(c):
                    out.append(c)
        for name, vals in self.axes.items():
            for v in vals:
                if v != base[name]:
                    c = {**base, name: v}
                    if self.satisfies(c):
                        out.append(c)
        return out

    def mutate(
        self, config: Mapping[str, Any], rng: np.random.Generator, tries: int = 50
    ) -> Config:
        """A random neighbour that passes the constraints (one random move, retried up to
        ``tries`` times); ``config`` itself when none is found."""
        base = self.validate(config)
        for _ in range(tries):
            k = int(rng.integers(len(self.sequences) + len(self.axes)))
            c = dict(base)
            if k < len(self.sequences):
                s = self.sequences[k]
                c[s.name] = s.mutate(base[s.name], rng)
            else:
                name = list(self.axes)[k - len(self.sequences)]
                vals = self.axes[name]
                c[name] = vals[int(rng.integers(len(vals)))]
            if c != base and self.satisfies(c):
                return c
        return base

    def tuner_pool(self, seed: int = 0) -> list[Config]:
        """The candidates for the :class:`~energycore.Tuner`: the whole space when it holds at
        most ``pool`` configurations before constraints, else ``pool`` seeded samples."""
        if self.size() <= self.pool:
            return list(self)
        return self.sample(self.pool, seed=seed)

    # ---- features -----------------------------------------------------------------------

    def _pairs(self, s: SequenceAxis) -> bool:
        k = len(s.choices)
        return k * (k - 1) // 2 <= self.max_pairs

    def feature_names(self) -> list[str]:
        """Names of the columns of :meth:`encode` (module documentation)."""
        out: list[str] = []
        for s in self.sequences:
            out.append(f"{s.name}:len")
            out += [f"{s.name}:count[{c}]" for c in s.choices]
            out += [f"{s.name}:pos[{c}]" for c in s.choices]
            if self._pairs(s):
                out += [f"{s.name}:pair[{a}<{b}]" for a, b in itertools.combinations(s.choices, 2)]
        out += list(self.axes)
        return out

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Numeric features of ``configs`` (rows) for the scorers; see :meth:`feature_names`."""
        configs = list(configs)
        blocks: list[np.ndarray] = []
        n = len(configs)
        for s in self.sequences:
            k = len(s.choices)
            counts = np.zeros((n, k))
            first = np.full((n, k), -1, dtype=np.int64)
            lens = np.zeros((n, 1))
            for r, c in enumerate(configs):
                seq = c[s.name]
                lens[r, 0] = len(seq)
                for i, item in enumerate(seq):
                    j = s._code.get(item)
                    if j is None:
                        raise ValueError(f"{s.name}: unknown item {item!r} in configuration {r}")
                    counts[r, j] += 1
                    if first[r, j] < 0:
                        first[r, j] = i
            pos = np.where(first >= 0, (first + 1) / max(s.max, 1), 0.0)
            blocks += [lens, counts, pos]
            if self._pairs(s) and k > 1:
                a, b = np.triu_indices(k, 1)
                fa, fb = first[:, a], first[:, b]
                both = (fa >= 0) & (fb >= 0)
                blocks.append(np.where(both, np.sign(fb - fa), 0).astype(np.float64))
        for name, vals in self.axes.items():
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
            code = {v: i for i, v in enumerate(vals)}
            col = [float(c[name]) if numeric else float(code[c[name]]) for c in configs]
            blocks.append(np.asarray(col, dtype=np.float64).reshape(n, 1))
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def __repr__(self) -> str:
        seqs = ", ".join(
            f"{s.name}[{s.min_len}..{s.max}] of {len(s.choices)}"
            + ("" if s.repeat else " (no repeats)")
            for s in self.sequences
        )
        extra = f", {len(self.axes)} axes" if self.axes else ""
        cons = f", {len(self.constraints)} constraints" if self.constraints else ""
        return f"SequenceSpace({seqs}{extra}{cons}, size {self.size()})"
