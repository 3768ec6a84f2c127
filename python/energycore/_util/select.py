"""Constrained argmin and Pareto fronts over plain numpy arrays (the Python side's one copy).

The C++ engine answers these queries over enumerated spaces; these are for tables already in
memory (the demo, plots, benchmarks' oracles).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from energycore._util.columns import FloatArray

__all__ = ["constrained_argmin", "pareto_indices", "pareto_mask"]


def constrained_argmin(
    objective: FloatArray,
    feasible: npt.NDArray[np.bool_],
    limit_value: FloatArray | None = None,
    limit: float | None = None,
) -> int | None:
    """Index of the smallest objective among feasible rows (and ``limit_value <= limit``)."""
    ok = feasible & np.isfinite(objective)
    if limit is not None and limit_value is not None:
        ok &= limit_value <= limit
    if not ok.any():
        return None
    idx = np.flatnonzero(ok)
    return int(idx[np.argmin(objective[idx])])


def pareto_indices(x: FloatArray, y: FloatArray) -> npt.NDArray[np.intp]:
    """Indices of the rows not dominated in (x, y), both minimised, sorted by x.

    Rows with a non-finite x or y are never on the front; of rows equal in x the smallest y is
    kept (the first of exact duplicates).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    order = ok[np.lexsort((y[ok], x[ok]))]
    if not len(order):
        return order.astype(np.intp)
    ys = y[order]
    prev_best = np.concatenate(([np.inf], np.minimum.accumulate(ys)[:-1]))
    return order[ys < prev_best].astype(np.intp)


def pareto_mask(x: FloatArray, y: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows not dominated in (x, y), both minimised, as a mask (see :func:`pareto_indices`)."""
    mask = np.zeros(len(x), dtype=bool)
    mask[pareto_indices(x, y)] = True
    return mask
