"""Field-by-field validation of the ``fit`` section of a model file, before anything is built.

A model file is data from outside: every field is checked for its type (no string coefficients
quietly converted, no booleans taken for numbers), its sign and, for coefficients, the bounds
of the template, so that a tampered file is refused with a ``ValueError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["check_fit_section"]

_WHAT = "model file"
#: FitResult fields and the types they take in a file.
_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "message": (str,),
    "success": (bool,),
    "iterations": (int,),
    "n_fev": (int,),
    "n_jev": (int,),
    "cost": (int, float),
    "optimality": (int, float),
    "start_index": (int,),
    "at_bound": (dict,),
    "n_samples": (int,),
}
#: Largest coefficient magnitude a model file may hold: fitted coefficients in SI units (J, s,
#: W, per token) lie many orders of magnitude below; beyond it predictions can overflow.
_MAX_COEF = 1e100
_NON_NEGATIVE = ("iterations", "n_fev", "n_jev", "cost", "optimality", "start_index", "n_samples")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v: Any, field: str, *, allow_none: bool = False, non_negative: bool = False) -> None:
    if v is None and allow_none:
        return
    if not _is_number(v):
        kind = "a number or null" if allow_none else "a number"
        raise ValueError(f"{_WHAT}: {field} must be {kind}, got {type(v).__name__} {v!r}")
    if not math.isfinite(float(v)):
        raise ValueError(f"{_WHAT}: {field} must be finite, got {v!r}")
    if non_negative and v < 0:
        raise ValueError(f"{_WHAT}: {field} must be non-negative, got {v!r}")


def check_fit_section(fit: Any, names: Sequence[str], info: Sequence[dict[str, Any]]) -> None:
    """``ValueError`` naming the first bad field of a model file's ``fit`` section.

    Parameters
    ----------
    fit : the parsed ``fit`` mapping.
    names : the coefficient names of the template, in order.
    info : the template's coefficient descriptions (``lower`` and ``upper`` bounds).
    """
    n = len(names)
    if not isinstance(fit, dict):
        raise ValueError(f"{_WHAT}: 'fit' must be a mapping, got {type(fit).__name__}")
    for key in ("params", "stderr", "covariance", "fixed_mask", "result"):
        if key not in fit:
            raise ValueError(f"{_WHAT}: 'fit' has no {key!r}")
    params = fit["params"]
    if not isinstance(params, dict) or set(params) != set(names):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"{_WHAT}: coefficients {got} do not match {list(names)}")
    for name, p in zip(names, info):
        v = params[name]
        _number(v, f"coefficient {name!r}")
        if abs(v) > _MAX_COEF:
            raise ValueError(
                f"{_WHAT}: coefficient {name!r} is {v!r}; no fit in SI units reaches "
                f"|c| > {_MAX_COEF:g} (its predictions would overflow): the file is corrupt"
            )
        lo, hi = float(p["lower"]), float(p["upper"])
        if not lo <= v <= hi:
            side = f"below its lower bound {lo:g}" if v < lo else f"above its upper bound {hi:g}"
            raise ValueError(f"{_WHAT}: coefficient {name!r} is {v!r}, {side}")
    stderr = fit["stderr"]
    if not isinstance(stderr, dict) or set(stderr) != set(names):
        raise ValueError(f"{_WHAT}: 'stderr' must map each of {list(names)} to a number or null")
    for name in names:
        _number(stderr[name], f"stderr[{name!r}]", allow_none=True, non_negative=True)
    cov = fit["covariance"]
    if not isinstance(cov, list) or len(cov) != n:
        got_cov = len(cov) if isinstance(cov, list) else type(cov).__name__
        raise ValueError(f"{_WHAT}: 'covariance' must be a list of {n} rows, got {got_cov}")
    for i, row in enumerate(cov):
        if not isinstance(row, list) or len(row) != n:
            got_row: int | str = len(row) if isinstance(row, list) else type(row).__name__
            raise ValueError(
                f"{_WHAT}: covariance row {i} must be a list of {n} entries, got {got_row}"
            )
        for j, v in enumerate(row):
            _number(v, f"covariance[{i}][{j}]", allow_none=True, non_negative=i == j)
    mask = fit["fixed_mask"]
    if not isinstance(mask, list) or len(mask) != n or not all(isinstance(b, bool) for b in mask):
        raise ValueError(f"{_WHAT}: 'fixed_mask' must be a list of {n} booleans, got {mask!r}")
    unid = fit.get("unidentified", [])
    if not isinstance(unid, list) or any(u not in names for u in unid):
        raise ValueError(
            f"{_WHAT}: 'unidentified' must be a list of coefficient names, got {unid!r}"
        )
    _number(fit.get("residual_scale"), "residual_scale", allow_none=True, non_negative=True)
    result = fit["result"]
    if not isinstance(result, dict):
        raise ValueError(f"{_WHAT}: 'result' must be a mapping, got {type(result).__name__}")
    for key, value in result.items():
        types = _RESULT_TYPES.get(key)
        if types is None:
            continue  # FitResult itself refuses names it does not know
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if not ok:
            raise ValueError(
                f"{_WHAT}: result.{key} must be {' or '.join(t.__name__ for t in types)}, got "
                f"{type(value).__name__} {value!r}"
            )
        if key in _NON_NEGATIVE:
            _number(value, f"result.{key}", non_negative=True)
    bound = result.get("at_bound", {})
    for k, v in bound.items():
        if k not in names or v not in ("lower", "upper"):
            raise ValueError(
                f"{_WHAT}: result.at_bound maps coefficient names to 'lower' or 'upper', got "
                f"{k!r}: {v!r}"
            )
