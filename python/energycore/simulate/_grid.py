"""Private enumeration and selection helper of the demo and the CLI.

The one place that enumerates configurations and picks a constrained argmin, so that switching
to ``energycore.ConfigSpace`` / ``Selector`` when they land is a change here only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def powers_of_two(lo: int, hi: int) -> list[int]:
    """Powers of two in ``[lo, hi]``."""
    out, v = [], 1
    while v <= hi:
        if v >= lo:
            out.append(v)
        v *= 2
    return out


def enumerate_configs(
    n_gpus: int,
    batches: list[int],
    input_len: float,
    output_len: float,
) -> dict[str, FloatArray]:
    """Every (tp, pp, batch) with tp, pp powers of two and ``tp * pp <= n_gpus``, one workload."""
    rows = [
        (tp, pp, b)
        for tp in powers_of_two(1, n_gpus)
        for pp in powers_of_two(1, n_gpus)
        if tp * pp <= n_gpus
        for b in batches
    ]
    a = np.array(rows, dtype=np.float64).reshape(-1, 3)
    n = len(a)
    return {
        "tp": a[:, 0].copy(),
        "pp": a[:, 1].copy(),
        "batch": a[:, 2].copy(),
        "input_len": np.full(n, float(input_len)),
        "output_len": np.full(n, float(output_len)),
    }


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


def pareto_mask(x: FloatArray, y: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows not dominated in (x, y), both minimised (NaN rows are never on the front)."""
    ok = np.isfinite(x) & np.isfinite(y)
    order = np.lexsort((y, x))
    mask = np.zeros(len(x), dtype=bool)
    best = np.inf
    for i in order:
        if ok[i] and y[i] < best:
            mask[i] = True
            best = y[i]
    return mask


def take(cols: dict[str, Any], i: int) -> dict[str, Any]:
    """One row of a dict of arrays as plain Python values."""
    out: dict[str, Any] = {}
    for k, v in cols.items():
        x = v[i]
        out[k] = x.item() if hasattr(x, "item") else x
    return out
