"""What a fitted model knows about where it came from and how far off it is.

Two small records travel in a model file next to the coefficients:

- **provenance**: the GPU, the served model and the serving engine the measurements were taken
  on (``gpu``, ``served_model``, ``engine``; free text, ``None`` when unknown). ``energycore
  select`` uses the GPU and model to refuse configurations that hardware cannot run.
- **residual quantiles** (``resid_quantiles_``): quantiles of the log-ratio residuals
  ``log(measured / predicted)`` over the fitted rows, at the percentiles
  :data:`RESID_PERCENTILES`. A percentile serving limit (p90 TTFT, p99 TPOT) uses them:
  ``p-th percentile = prediction * exp(q_p)``. They are in-sample quantiles, so somewhat
  optimistic, and a percentile beyond what the rows can resolve (p99.9 from 60 rows) is the
  largest residual seen, not an extrapolation.

Files written before these records existed load with both missing (unknown).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "PROVENANCE_FIELDS",
    "RESID_PERCENTILES",
    "check_provenance",
    "check_resid_quantiles",
    "describe",
    "dump_resid_quantiles",
    "quantile_at",
    "residual_quantiles",
]

#: Provenance keys recorded in a model file.
PROVENANCE_FIELDS: tuple[str, ...] = ("gpu", "served_model", "engine")
#: Percentiles at which the residual quantiles are stored (others are interpolated linearly).
RESID_PERCENTILES: tuple[float, ...] = (
    *(float(p) for p in range(1, 100)),
    99.5,
    99.9,
)

_WHAT = "model file"


def residual_quantiles(
    predicted: npt.ArrayLike, measured: npt.ArrayLike, weight: npt.ArrayLike | None = None
) -> dict[float, float] | None:
    """Quantiles of ``log(measured / predicted)`` at :data:`RESID_PERCENTILES`.

    Rows with a zero weight, or a non-positive or non-finite value, take no part. Returns
    ``None`` when fewer than two rows remain.
    """
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(y) & (p > 0) & (y > 0)
    if weight is not None and len(np.asarray(weight)):
        ok &= np.asarray(weight, dtype=np.float64) > 0
    if int(ok.sum()) < 2:
        return None
    r = np.sort(np.log(y[ok] / p[ok]))
    # np.quantile's default ("linear") interpolation written out, the same values without its
    # dispatch overhead (which dominated a small fit's result objects).
    t = np.asarray(RESID_PERCENTILES) / 100.0 * (len(r) - 1)
    lo = np.floor(t).astype(np.intp)
    hi = np.minimum(lo + 1, len(r) - 1)
    frac = t - lo
    a, b = r[lo], r[hi]
    d = b - a
    q = np.where(frac >= 0.5, b - d * (1.0 - frac), a + d * frac)
    return {pc: float(v) for pc, v in zip(RESID_PERCENTILES, q.tolist())}


def quantile_at(quantiles: dict[float, float], percentile: float) -> float:
    """The log-ratio quantile at ``percentile``: the stored one, or linear interpolation
    between the two stored percentiles around it (clamped to the first and last)."""
    keys = sorted(quantiles)
    xs = np.array(keys, dtype=np.float64)
    ys = np.array([quantiles[k] for k in keys], dtype=np.float64)
    return float(np.interp(float(percentile), xs, ys))


def check_resid_quantiles(v: Any) -> dict[float, float] | None:
    """The ``resid_quantiles`` of a model file as ``{percentile: quantile}``; ``None`` if absent.

    The file stores them as ``{"90": 0.12, ...}``; keys must be percentiles in (0, 100),
    values finite numbers non-decreasing with the percentile.
    """
    if v is None:
        return None
    if not isinstance(v, dict) or not v:
        raise ValueError(f"{_WHAT}: 'resid_quantiles' must map percentiles to numbers")
    out: dict[float, float] = {}
    for k, x in v.items():
        try:
            pc = float(k)
        except (TypeError, ValueError):
            raise ValueError(f"{_WHAT}: resid_quantiles key {k!r} is not a percentile") from None
        if not 0 < pc < 100:
            raise ValueError(f"{_WHAT}: resid_quantiles key {k!r} is outside (0, 100)")
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ValueError(f"{_WHAT}: resid_quantiles[{k!r}] must be a finite number, got {x!r}")
        out[pc] = float(x)
    keys = sorted(out)
    if any(out[a] > out[b] for a, b in itertools.pairwise(keys)):
        raise ValueError(f"{_WHAT}: resid_quantiles must not decrease with the percentile")
    return dict(sorted(out.items()))


def dump_resid_quantiles(q: dict[float, float] | None) -> dict[str, float] | None:
    """JSON form of residual quantiles: percentile keys as short strings (``"99.5"``)."""
    if q is None:
        return None
    return {f"{k:g}": v for k, v in q.items()}


def check_provenance(v: Any, what: str = _WHAT) -> dict[str, str | None]:
    """Validated provenance ``{gpu, served_model, engine}`` (each a non-empty string or None).

    ``ValueError`` naming the field for an unknown key or a value that is not text.
    """
    if v is None:
        return dict.fromkeys(PROVENANCE_FIELDS)
    if not isinstance(v, dict):
        raise ValueError(f"{what}: 'provenance' must be a mapping, got {type(v).__name__}")
    unknown = [k for k in v if k not in PROVENANCE_FIELDS]
    if unknown:
        raise ValueError(
            f"{what}: unknown provenance field {unknown[0]!r} "
            f"(known: {', '.join(PROVENANCE_FIELDS)})"
        )
    out: dict[str, str | None] = {}
    for k in PROVENANCE_FIELDS:
        x = v.get(k)
        if x is not None and (not isinstance(x, str) or not x.strip()):
            raise ValueError(f"{what}: provenance {k!r} must be a non-empty string or null")
        out[k] = None if x is None else x.strip()
    return out


def describe(prov: dict[str, str | None]) -> str:
    """``"H100, llama-3.1-70b, vllm"`` with ``?`` for unknown fields ("" when all unknown)."""
    if not any(prov.values()):
        return ""
    return ", ".join(prov.get(k) or "?" for k in PROVENANCE_FIELDS)
