"""Columns from user callables (``scorers=``), evaluated on valid points in batches.

A scorer is any callable taking a dict of columns (numpy arrays: axes decoded, fixed values,
derived columns and model scores of a batch of valid points) and returning one value per point,
e.g. a scikit-learn model's ``predict`` wrapped to pick its features. The C++ engine enumerates
and filters; scorers run once per batch (never per point); the reductions then follow the same
rules as the C++ ones (ties by index, infeasible limits answered with the nearest point).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Scorer = Callable[[dict[str, np.ndarray]], Any]
#: Points per scorer call.
BATCH = 1 << 16


def check_scorers(scorers: Any, taken: Sequence[str]) -> dict[str, Scorer]:
    """Validated ``{name: callable}``; ``ValueError`` naming the bad entry."""
    if scorers is None:
        return {}
    if not isinstance(scorers, Mapping):
        raise ValueError(
            f"scorers: expected a mapping of column name to callable, got {type(scorers).__name__}"
        )
    out: dict[str, Scorer] = {}
    for name, fn in scorers.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"scorers: {name!r} is not a valid column name")
        if name in taken:
            raise ValueError(f"scorers: {name!r} is already a column of this space")
        if not callable(fn):
            raise ValueError(f"scorers: {name!r} is not callable")
        out[name] = fn
    return out


def score(
    columns: Callable[[np.ndarray], dict[str, np.ndarray]],
    idx: np.ndarray,
    scorers: Mapping[str, Scorer],
) -> dict[str, np.ndarray]:
    """Columns of the points ``idx`` plus one column per scorer, computed in batches."""
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, max(len(idx), 1), BATCH):
        part = columns(idx[start : start + BATCH])
        n = len(part["index"]) if "index" in part else len(next(iter(part.values())))
        for name, fn in scorers.items():
            v = np.asarray(fn(dict(part)), dtype=np.float64)
            if v.shape != (n,):
                raise ValueError(
                    f"scorers: {name!r} returned shape {v.shape} for {n} points, expected ({n},)"
                )
            bad = np.isinf(v)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"scorers: {name!r} returned {v[j]} at point {int(idx[start + j])}"
                )
            part[name] = v
        parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def sort_key(values: np.ndarray, maximize: bool) -> np.ndarray:
    """Minimisation key: maximised values negated, NaN last (as the C++ engine)."""
    key = -values if maximize else values.copy()
    key[np.isnan(key)] = math.inf
    return key


def top_k(idx: np.ndarray, values: np.ndarray, k: int, maximize: bool) -> np.ndarray:
    """Positions of the k smallest keys, ties by index; NaN values take no part."""
    ok = np.flatnonzero(~np.isnan(values))
    order = np.lexsort((idx[ok], sort_key(values[ok], maximize)))
    return ok[order[:k]]


_HOLDS = {
    0: lambda v, x: v <= x,
    1: lambda v, x: v < x,
    2: lambda v, x: v >= x,
    3: lambda v, x: v > x,
    4: lambda v, x: v == x,
}


def violation(v: np.ndarray, op: int, limit: float) -> np.ndarray:
    """Relative amount by which ``v`` misses a limit (as space.hpp ``Limit::violation``)."""
    scale = max(abs(limit), 1e-12)
    if op in (0, 1):
        out = np.maximum(0.0, v - limit) / scale
    elif op in (2, 3):
        out = np.maximum(0.0, limit - v) / scale
    else:
        out = np.abs(v - limit) / scale
    out[np.isnan(v)] = math.inf
    return out


def argmin(
    idx: np.ndarray,
    values: np.ndarray,
    maximize: bool,
    limits: Sequence[tuple[np.ndarray, int, float]],
) -> dict[str, Any]:
    """The C++ engine's constrained argmin over given points, in numpy."""
    key = sort_key(values, maximize)
    ok = ~np.isnan(values)
    viol = np.zeros(len(idx))
    for v, op, lim in limits:
        with np.errstate(invalid="ignore"):
            ok &= _HOLDS[op](v, lim)
        viol += violation(v, op, lim)
    out = {
        "feasible": False,
        "index": -1,
        "objective": math.nan,
        "nearest": -1,
        "violation": math.nan,
    }
    out.update(n_valid=len(idx), n_feasible=int(ok.sum()))
    if ok.any():
        f = np.flatnonzero(ok)
        j = f[np.lexsort((idx[f], key[f]))[0]]
        out.update(feasible=True, index=int(idx[j]), objective=float(values[j]), violation=0.0)
    elif len(idx):
        j = int(np.lexsort((idx, key, viol))[0])
        out.update(nearest=int(idx[j]), violation=float(viol[j]))
    return out
