"""Tabular input at the API boundary: named columns from DataFrames, dicts and structured arrays.

Every public function that takes configurations goes through here, so that the same input is
accepted everywhere and every bad input gets the same kind of ``ValueError``: naming the field
and, where there is one, the first bad row.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

#: The model feature columns, in the order the C++ core expects them.
FEATURES: tuple[str, ...] = ("tp", "pp", "batch", "input_len", "output_len")
#: Feature columns that must hold positive integers.
POSITIVE_INT_FEATURES: tuple[str, ...] = ("tp", "pp")
#: Feature columns that must hold positive numbers (``batch`` may be a time-averaged running batch).
POSITIVE_FEATURES: tuple[str, ...] = ("tp", "pp", "batch")
#: Optional column: GPUs serving one configuration when they are not ``tp * pp`` (expert or
#: data parallel); see :func:`as_model_features`.
N_GPUS = "n_gpus"
#: Feature columns that must hold non-negative numbers.
NON_NEGATIVE_FEATURES: tuple[str, ...] = ("input_len", "output_len")
#: The largest value each feature may take, from what the physics of serving allows (with a wide
#: margin), so that every accepted input gives a finite prediction:
#:
#: - ``tp``, ``pp``: at most 65 536 GPUs along each parallel dimension (the largest clusters
#:   hold about 10**5 GPUs in all);
#: - ``batch``: at most 2**24 (16.7 million) sequences in one batch;
#: - ``input_len``, ``output_len``: at most 2**31 (2.1 billion) tokens, a thousand times the
#:   longest context windows.
#:
#: Larger values are refused with a ``ValueError`` naming the column and the row.
FEATURE_MAX: dict[str, float] = {
    "tp": 2.0**16,
    "pp": 2.0**16,
    "batch": 2.0**24,
    "input_len": 2.0**31,
    "output_len": 2.0**31,
}
#: Array kinds that look numeric to numpy but are not numbers of this domain: complex numbers
#: (numpy would drop the imaginary part) and dates or durations (numpy would use their ticks).
_NOT_NUMERIC = {"c": "complex", "M": "datetime64", "m": "timedelta64"}

FloatArray = npt.NDArray[np.float64]


def column_names(X: Any) -> list[str]:
    """The column names of a DataFrame, a mapping or a structured numpy array."""
    if hasattr(X, "columns") and hasattr(X, "__getitem__"):
        return [str(c) for c in X.columns]
    if isinstance(X, Mapping):
        return [str(k) for k in X]
    if isinstance(X, np.ndarray) and X.dtype.names is not None:
        return list(X.dtype.names)
    raise ValueError(
        "X: expected a pandas DataFrame, a dict of arrays or a structured numpy array with "
        f"named columns, got {type(X).__name__}"
    )


def _missing_message(name: str, available: Sequence[str], what: str) -> str:
    hint = difflib.get_close_matches(name, list(available), n=1, cutoff=0.6)
    msg = f"{what}: missing column '{name}'"
    if hint:
        msg += f" (did you mean '{hint[0]}'?)"
    return msg + f"; columns present: {', '.join(available) or 'none'}"


def get_column(X: Any, name: str, *, what: str = "X") -> np.ndarray:
    """One column of ``X`` as a 1-D numpy array; ``ValueError`` if it is missing."""
    names = column_names(X)
    if name not in names:
        raise ValueError(_missing_message(name, names, what))
    col = X[name]
    arr = np.asarray(col.to_numpy() if hasattr(col, "to_numpy") else col)
    if arr.ndim != 1:
        raise ValueError(f"{what}: column '{name}' must be one-dimensional, got shape {arr.shape}")
    return arr


def as_float(arr: Any, name: str, *, what: str = "X") -> FloatArray:
    """A 1-D float64 array with only finite values; ``ValueError`` naming the first bad row."""
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{what}: '{name}' must be one-dimensional, got shape {a.shape}")
    if a.dtype.kind in _NOT_NUMERIC:
        raise ValueError(
            f"{what}: column '{name}' must be real numbers, got {_NOT_NUMERIC[a.dtype.kind]} "
            f"values (dtype {a.dtype})"
        )
    if a.dtype.kind == "O" and any(isinstance(v, (complex, np.complexfloating)) for v in a):
        raise ValueError(f"{what}: column '{name}' must be real numbers, got complex values")
    if a.dtype.kind not in "biuf":
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{what}: column '{name}' must be numeric, got dtype {a.dtype}"
            ) from None
    if a.dtype.kind == "f" and a.dtype.itemsize > 8:  # long double: may overflow float64
        with np.errstate(over="ignore"):
            a = a.astype(np.float64)
    out = np.ascontiguousarray(a, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}: '{name}' has a non-finite value ({out[i]}) at row {i}")
    return out


def check_positive(a: FloatArray, name: str, *, what: str = "X") -> None:
    """``ValueError`` naming the first row where ``a <= 0``."""
    bad = a <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}: '{name}' must be positive, got {a[i]} at row {i}")


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    """Index of the first True in a mask, row-major (problem, row, column for a 3-D mask)."""
    return tuple(int(v) for v in np.argwhere(mask)[0])


def _where(idx: tuple[int, ...]) -> str:
    """``row i`` of a table, ``problem g, row i`` of a stack of tables."""
    return f"row {idx[-2]}" if len(idx) == 2 else f"problem {idx[0]}, row {idx[1]}"


def _check_table(table: FloatArray, what: str) -> None:
    """The feature checks of :func:`as_feature_table` on a float64 table (or a stack of
    tables) whose last axis holds the columns of :data:`FEATURES`: vectorised, one pass per
    rule; only a failure looks for the first offender to name it (column and row)."""
    bad = ~np.isfinite(table)
    if bad.any():
        *_, k = idx = _first_bad(bad)
        raise ValueError(
            f"{what}: '{FEATURES[k]}' has a non-finite value ({table[idx]}) at {_where(idx)}"
        )
    ints = table[..., :2]
    bad = ints != np.floor(ints)
    if bad.any():
        *_, k = idx = _first_bad(bad)
        raise ValueError(
            f"{what}: '{FEATURES[k]}' must be an integer, got {ints[idx]} at {_where(idx)}"
        )
    ints = table[..., :3]
    bad = ints <= 0
    if bad.any():
        *_, k = idx = _first_bad(bad)
        raise ValueError(
            f"{what}: '{FEATURES[k]}' must be positive, got {ints[idx]} at {_where(idx)}"
        )
    lens = table[..., 3:]
    bad = lens < 0
    if bad.any():
        *_, k = idx = _first_bad(bad)
        raise ValueError(
            f"{what}: '{FEATURES[3 + k]}' must be non-negative, got {lens[idx]} at {_where(idx)}"
        )
    limit = np.array([FEATURE_MAX[f] for f in FEATURES])
    bad = table > limit
    if bad.any():
        *_, k = idx = _first_bad(bad)
        raise ValueError(
            f"{what}: '{FEATURES[k]}' is {table[idx]:g} at {_where(idx)}, past the physical bound "
            f"{limit[k]:g} (see energycore._util.columns.FEATURE_MAX)"
        )


def as_feature_array(X: Any, *, what: str = "X", ndim: int = 2, min_rows: int = 1) -> FloatArray:
    """A plain numeric array of features (columns in the order of :data:`FEATURES`) checked
    as :func:`as_feature_table` checks named columns, without copying a C-contiguous float64
    array. ``ndim=2``: one table ``(n, 5)``; ``ndim=3``: a stack ``(n_problems, n_rows, 5)``,
    errors naming the problem and the row."""
    shape = "(n_problems, n_rows, 5)" if ndim == 3 else "(n, 5)"
    a = np.asarray(X)
    if a.ndim != ndim or a.shape[-1] != len(FEATURES):
        raise ValueError(
            f"{what}: expected an array of shape {shape} (columns {', '.join(FEATURES)}), "
            f"got shape {a.shape}"
        )
    if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and a.dtype.itemsize > 8):
        raise ValueError(f"{what}: expected real numbers (float64), got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape[-2] < min_rows or (ndim == 3 and a.shape[0] < 1):
        raise ValueError(f"{what}: needs at least {min_rows} row(s), got shape {a.shape}")
    _check_table(a, what)
    return a


def as_feature_table(X: Any, *, what: str = "X", min_rows: int = 1) -> FloatArray:
    """The model features of ``X`` as a C-contiguous ``(n, 5)`` float64 table.

    Columns are taken by name (``tp``, ``pp``, ``batch``, ``input_len``, ``output_len``); other
    columns are ignored, so a frame of measurements can be passed as it is. ``tp`` and ``pp``
    must be positive integers, ``batch`` positive (a time-averaged running batch such as 7.98
    is fine), lengths non-negative, everything finite and at most :data:`FEATURE_MAX` (the
    physical bounds).
    """
    names = column_names(X)
    cols = []
    for name in FEATURES:
        if name not in names:
            raise ValueError(_missing_message(name, names, what))
        a = get_column(X, name, what=what)
        if a.dtype.kind not in "biu" and not (a.dtype.kind == "f" and a.dtype.itemsize <= 8):
            a = as_float(a, name, what=what)  # converts numeric strings/objects or raises
        cols.append(a)
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        detail = ", ".join(f"{n}={len(c)}" for n, c in zip(FEATURES, cols))
        raise ValueError(f"{what}: columns have different lengths ({detail})")
    n = len(cols[0])
    if n < min_rows:
        raise ValueError(f"{what}: needs at least {min_rows} row(s), got {n}")
    table = np.empty((n, len(FEATURES)), dtype=np.float64)
    for k, c in enumerate(cols):
        table[:, k] = c
    _check_table(table, what)
    return table


def as_target(y: Any, n: int, name: str, X: Any = None, *, positive: bool = True) -> FloatArray:
    """A target vector of length ``n``: an array, or the name of a column of ``X``."""
    if isinstance(y, str):
        if X is None:
            raise ValueError(
                f"{name}: a column name was given but there is no table to take it from"
            )
        y = get_column(X, y)
    a = as_float(np.asarray(y).reshape(-1) if np.ndim(y) == 0 else y, name, what=name)
    if len(a) != n:
        raise ValueError(f"{name}: has {len(a)} values but X has {n} rows")
    if positive:
        check_positive(a, name, what=name)
    return a


def as_weights(w: Any, n: int, name: str = "sample_weight") -> FloatArray:
    """Non-negative finite weights of length ``n`` (not all zero); ``None`` gives an empty array."""
    if w is None:
        return np.empty(0, dtype=np.float64)
    a = as_float(w, name, what=name)
    if len(a) != n:
        raise ValueError(f"{name}: has {len(a)} values but X has {n} rows")
    if (a < 0).any():
        i = int(np.flatnonzero(a < 0)[0])
        raise ValueError(f"{name}: must be non-negative, got {a[i]} at row {i}")
    if not (a > 0).any():
        raise ValueError(f"{name}: all weights are zero")
    return a


def as_model_features(X: Any, *, what: str = "X", min_rows: int = 1) -> FloatArray:
    """The feature table the templates see: :func:`as_feature_table` plus the ``n_gpus`` column.

    Without an ``n_gpus`` column this is :func:`as_feature_table`. With one (GPUs serving the
    configuration, e.g. expert- or data-parallel serving where they are not ``tp * pp``), the
    templates' ``tp`` column is replaced by the GPUs per pipeline stage ``n_gpus / pp``, so every
    per-GPU term (fixed energy per GPU, the GPU-count scaling and the communication terms) sees
    the GPUs that draw power. ``n_gpus`` must be a positive integer, a multiple of ``pp`` and at
    least ``tp * pp``; an empty (NaN) cell means ``tp * pp``.
    """
    table = as_feature_table(X, what=what, min_rows=min_rows)
    if N_GPUS not in column_names(X):
        return table
    raw = get_column(X, N_GPUS, what=what)
    if len(raw) != len(table):
        raise ValueError(
            f"{what}: column '{N_GPUS}' has {len(raw)} values, the others {len(table)}"
        )
    tp, pp = table[:, 0], table[:, 1]
    g = np.array(raw, dtype=np.float64) if raw.dtype.kind in "biuf" else as_float(raw, N_GPUS)
    g = np.where(np.isnan(g), tp * pp, g)  # an empty cell: the GPUs are tp * pp
    g = as_float(g, N_GPUS, what=what)
    table[:, 0] = gpus_per_stage(g, tp, pp, what=what)
    return table


def gpus_per_stage(g: FloatArray, tp: FloatArray, pp: FloatArray, *, what: str) -> FloatArray:
    """``n_gpus / pp``, the GPUs per pipeline stage the templates read as ``tp``, after checking
    that every ``n_gpus`` is a positive integer, a multiple of ``pp`` and at least ``tp * pp``
    (``ValueError`` naming ``what`` and the row)."""
    for bad, rule in (
        ((g != np.floor(g)) | (g <= 0), "must be a positive integer"),
        (np.mod(g, pp) != 0, "must be a multiple of 'pp'"),
        (g < tp * pp, "must be at least tp * pp"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{what}: '{N_GPUS}' {rule}, got {g[i]:g} at row {i}")
    return np.asarray(g / pp, dtype=np.float64)
