"""Run-time variant selection: the best quality whose latency meets a budget with a stated probability.

A serving system that can run one of several variants of a model (detectors of different size,
quantised and full-precision LLMs, early-exit depths) must pick one per request: the highest
quality whose latency fits the request's budget. Latency is a distribution, not a number, so a
variant is feasible when ``P(latency <= budget) >= probability``.

:class:`VariantSelector` holds a table of variants (name, quality, latency mean and spread or
quantiles, energy where known) and answers :meth:`VariantSelector.select` in about a
microsecond from Python: for each probability it asks for, it precomputes every variant's latency
quantile, sorts them, and keeps the running best quality, so a query is one bisection.

Latency model (stated, because published tables give a mean only): unless the table gives
quantiles, a variant's latency is log-normal with the given mean and coefficient of variation
``cv`` (``latency_cv`` column, or the ``latency_cv=`` default). Log-normal is the usual shape of
inference-time distributions (positive, right-skewed); ``cv=0`` makes latency deterministic.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from energycore._util.columns import FloatArray, column_names, get_column

__all__ = ["VariantChoice", "VariantSelector"]

_Z = NormalDist()


@dataclass(frozen=True)
class VariantChoice:
    """The answer of :meth:`VariantSelector.select`.

    Attributes
    ----------
    feasible : bool
        Whether some variant meets the budget with the requested probability.
    name : str or None
        The chosen variant (None when infeasible).
    index : int
        Its row in the table (-1 when infeasible).
    quality : float
        Its quality (NaN when infeasible).
    latency_s : float
        Its latency quantile at the requested probability, in seconds (NaN when infeasible).
    fallback : str or None
        When infeasible: the variant most likely to meet the budget (the smallest latency
        quantile), for callers that must run something.
    source : str
        ``"table"`` or ``"predictor"`` (the per-input hook chose it).
    """

    feasible: bool
    name: str | None
    index: int
    quality: float
    latency_s: float
    fallback: str | None = None
    source: str = "table"


class _Ladder:
    """Variants sorted by latency quantile with the running best quality (one probability)."""

    __slots__ = ("best", "by_variant", "fallback", "quantiles")

    def __init__(self, q: FloatArray, quality: FloatArray) -> None:
        order = np.lexsort((-quality, q))  # by quantile, then better quality first
        self.quantiles: list[float] = q[order].tolist()
        self.by_variant: list[float] = q.tolist()
        best: list[int] = []
        top = -1
        for i in order.tolist():
            if top < 0 or quality[i] > quality[top]:
                top = i
            best.append(top)
        self.best = best
        self.fallback = int(order[0])


class VariantSelector:
    """Pick, per request, the best-quality variant that meets a latency budget.

    Parameters
    ----------
    variants : mapping of columns, DataFrame, or sequence of row mappings
        One row per variant.
    name : str
        Column with the variant names (unique).
    quality : str
        Column to maximise (e.g. ``coco_map``).
    latency : str
        Column with the mean latency.
    latency_unit : {"s", "ms", "us"}
        Unit of the latency (and quantile) columns; answers are in seconds.
    latency_cv : float
        Default coefficient of variation of latency (std / mean) for rows without a
        ``latency_cv`` column value. 0 means deterministic latency.
    quantiles : mapping of float to str, optional
        Measured latency quantiles by probability, e.g. ``{0.5: "p50_ms", 0.99: "p99_ms"}``.
        When given, they replace the log-normal model at those probabilities (other
        probabilities interpolate log-linearly in the normal score between them).
    energy : str, optional
        Column with energy per request in joules, for ``max_energy_j`` queries.
    predictor : callable, optional
        Per-input hook ``predictor(features) -> variant name``; :meth:`select` with
        ``features=`` uses its choice when that variant meets the budget, else the table rule.

    Raises
    ------
    ValueError
        For an empty table, a missing column, duplicate names, non-finite or negative
        figures, or a bad option.
    """

    def __init__(
        self,
        variants: Any,
        *,
        name: str = "model",
        quality: str = "quality",
        latency: str = "latency_s",
        latency_unit: str = "s",
        latency_cv: float = 0.0,
        quantiles: Mapping[float, str] | None = None,
        energy: str | None = None,
        predictor: Callable[[Any], str] | None = None,
    ) -> None:
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}.get(latency_unit)
        if scale is None:
            raise ValueError(f"latency_unit: expected 's', 'ms' or 'us', got {latency_unit!r}")
        if (
            not (isinstance(latency_cv, (int, float)) and math.isfinite(latency_cv))
            or latency_cv < 0
        ):
            raise ValueError(f"latency_cv: must be a finite number >= 0, got {latency_cv!r}")
        if predictor is not None and not callable(predictor):
            raise ValueError("predictor: must be callable (features -> variant name)")
        table = _as_columns(variants)
        n = len(next(iter(table.values()))) if table else 0
        if n == 0:
            raise ValueError("variants: the table is empty")
        names = [str(v) for v in _column(table, name, "name")]
        if len(set(names)) != n:
            dup = next(v for v in names if names.count(v) > 1)
            raise ValueError(f"name: variant {dup!r} appears more than once")
        self.names: tuple[str, ...] = tuple(names)
        self.quality = _finite(table, quality, "quality", n)
        self.latency_mean_s = _finite(table, latency, "latency", n, positive=True) * scale
        if "latency_cv" in table:
            cv = _finite(table, "latency_cv", "latency_cv", n)
            if (cv < 0).any():
                raise ValueError(f"latency_cv: row {int(np.argmax(cv < 0))} is negative")
        else:
            cv = np.full(n, float(latency_cv))
        self.latency_cv = cv
        self._quantiles: dict[float, FloatArray] = {}
        for p, col in (quantiles or {}).items():
            _check_probability(p)
            self._quantiles[float(p)] = (
                _finite(table, col, f"quantiles[{p}]", n, positive=True) * scale
            )
        self.energy_j = None if energy is None else _finite(table, energy, "energy", n)
        self.predictor = predictor
        self._index = {v: i for i, v in enumerate(self.names)}
        self._ladders: dict[float, _Ladder] = {}
        self._quality: list[float] = self.quality.tolist()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_csv(cls, path: str | Path, **kwargs: Any) -> VariantSelector:
        """A selector over a CSV table (read with :func:`energycore.data.read_csv`)."""
        from energycore.data import read_csv

        return cls(read_csv(path), **kwargs)

    # ------------------------------------------------------------------ latency
    def latency_quantile(self, probability: float) -> FloatArray:
        """Every variant's latency (s) that is met with ``probability``."""
        _check_probability(probability)
        p = float(probability)
        if p in self._quantiles:
            return self._quantiles[p].copy()
        if len(self._quantiles) >= 2:
            return self._interpolated(p)
        z = _Z.inv_cdf(p)
        sigma = np.sqrt(np.log1p(self.latency_cv**2))
        return np.asarray(self.latency_mean_s * np.exp(z * sigma - 0.5 * sigma**2), dtype=float)

    def _interpolated(self, p: float) -> FloatArray:
        ps = sorted(self._quantiles)
        zs = np.array([_Z.inv_cdf(x) for x in ps])
        logs = np.log(np.array([self._quantiles[x] for x in ps]))
        z = _Z.inv_cdf(p)
        j = int(np.clip(np.searchsorted(zs, z) - 1, 0, len(ps) - 2))
        t = (z - zs[j]) / (zs[j + 1] - zs[j])
        return np.asarray(np.exp(logs[j] + t * (logs[j + 1] - logs[j])), dtype=float)

    def probability_within(self, budget_s: float) -> FloatArray:
        """``P(latency <= budget_s)`` of every variant under the log-normal model."""
        b = _budget(budget_s)
        sigma = np.sqrt(np.log1p(self.latency_cv**2))
        mu = np.log(self.latency_mean_s) - 0.5 * sigma**2
        out = np.where(self.latency_mean_s <= b, 1.0, 0.0)
        s = sigma > 0
        out[s] = [_Z.cdf((math.log(b) - m) / sg) for m, sg in zip(mu[s], sigma[s])]
        return out

    # ------------------------------------------------------------------ queries
    def _ladder(self, probability: float) -> _Ladder:
        lad = self._ladders.get(probability)
        if lad is None:
            lad = _Ladder(self.latency_quantile(probability), self.quality)
            self._ladders[probability] = lad
        return lad

    def select(
        self,
        budget_s: float,
        probability: float = 0.99,
        *,
        max_energy_j: float | None = None,
        features: Any = None,
    ) -> VariantChoice:
        """The best-quality variant whose latency meets ``budget_s`` with ``probability``.

        Ties in quality go to the faster variant. With ``max_energy_j``, variants above it
        are excluded (needs the ``energy`` column). With ``features`` and a ``predictor``, the
        predictor's choice is taken when it meets the budget.
        """
        lad = self._ladders.get(probability)
        if lad is None:
            _check_probability(probability)
            lad = self._ladder(probability)
        if type(budget_s) not in (float, int) or not 0 < budget_s < math.inf:
            budget_s = _budget(budget_s)
        if features is not None:
            if self.predictor is None:
                raise ValueError("features: this selector has no predictor")
            choice = self._predicted(features, budget_s, probability)
            if choice is not None:
                return choice
        if max_energy_j is not None:
            return self._select_energy(budget_s, probability, max_energy_j)
        k = bisect.bisect_right(lad.quantiles, budget_s)
        if k == 0:
            f = lad.fallback
            return VariantChoice(False, None, -1, math.nan, math.nan, self.names[f])
        i = lad.best[k - 1]
        return VariantChoice(True, self.names[i], i, self._quality[i], lad.by_variant[i])

    def _select_energy(
        self, budget_s: float, probability: float, max_energy_j: float
    ) -> VariantChoice:
        if self.energy_j is None:
            raise ValueError("max_energy_j: the table has no energy column (pass energy=...)")
        if not (isinstance(max_energy_j, (int, float)) and math.isfinite(max_energy_j)):
            raise ValueError(f"max_energy_j: must be a finite number, got {max_energy_j!r}")
        q = self.latency_quantile(probability)
        ok = (q <= budget_s) & (self.energy_j <= max_energy_j)
        if not ok.any():
            f = int(np.argmin(q))
            return VariantChoice(False, None, -1, math.nan, math.nan, self.names[f])
        idx = np.flatnonzero(ok)
        i = int(idx[np.lexsort((q[idx], -self.quality[idx]))[0]])
        return VariantChoice(True, self.names[i], i, float(self.quality[i]), float(q[i]))

    def _predicted(
        self, features: Any, budget_s: float, probability: float
    ) -> VariantChoice | None:
        assert self.predictor is not None
        name = self.predictor(features)
        i = self._index.get(str(name))
        if i is None:
            raise ValueError(f"predictor: returned {name!r}, not a variant of this table")
        q = self._ladder(probability).by_variant[i]
        if q > budget_s:
            return None
        return VariantChoice(True, self.names[i], i, float(self.quality[i]), q, source="predictor")

    def frontier(self, probability: float = 0.99) -> list[str]:
        """The variants that some budget selects (quality/latency Pareto front), fastest first."""
        lad = self._ladder(float(probability))
        out: list[str] = []
        for i in lad.best:
            if not out or self.names[i] != out[-1]:
                out.append(self.names[i])
        return out

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        cv = self.latency_cv
        spread = f"cv {cv[0]:g}" if np.all(cv == cv[0]) else f"cv {cv.min():g}-{cv.max():g}"
        return (
            f"VariantSelector({len(self)} variants, quality {self.quality.min():g}-"
            f"{self.quality.max():g}, latency {self.latency_mean_s.min():.3g}-"
            f"{self.latency_mean_s.max():.3g} s mean, {spread}"
            f"{', measured quantiles' if self._quantiles else ', log-normal'})"
        )


# ---------------------------------------------------------------------- helpers
def _as_columns(variants: Any) -> dict[str, Any]:
    if isinstance(variants, Sequence) and not isinstance(variants, (str, bytes)):
        if variants and all(isinstance(r, Mapping) for r in variants):
            keys: list[str] = []
            for r in variants:
                keys += [k for k in r if k not in keys]
            missing = [k for k in keys if any(k not in r for r in variants)]
            if missing:
                raise ValueError(f"variants: column {missing[0]!r} is missing in some rows")
            return {k: [r[k] for r in variants] for k in keys}
        if not variants:
            return {}
        raise ValueError("variants: expected a table (mapping of columns, DataFrame, list of rows)")
    try:
        names = column_names(variants)
    except (TypeError, ValueError):
        raise ValueError(
            "variants: expected a table (mapping of columns, DataFrame, list of rows)"
        ) from None
    return {k: get_column(variants, k, what="variants") for k in names}


def _column(table: Mapping[str, Any], col: str, what: str) -> list[Any]:
    if col not in table:
        raise ValueError(f"{what}: no column {col!r} in the table (has {sorted(table)})")
    return list(table[col])


def _finite(
    table: Mapping[str, Any], col: str, what: str, n: int, *, positive: bool = False
) -> FloatArray:
    raw = _column(table, col, what)
    try:
        a = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: column {col!r} is not numeric") from None
    bad = ~np.isfinite(a) | ((a <= 0) if positive else np.zeros(n, dtype=bool))
    if bad.any():
        i = int(np.argmax(bad))
        need = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"{what}: column {col!r}, row {i}: {raw[i]!r} is not {need}")
    return a


def _check_probability(p: Any) -> None:
    if not (isinstance(p, (int, float)) and 0.0 < float(p) < 1.0):
        raise ValueError(f"probability: must lie strictly between 0 and 1, got {p!r}")


def _budget(b: Any) -> float:
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not (0 < b < math.inf):
        raise ValueError(f"budget_s: must be a finite number of seconds > 0, got {b!r}")
    return float(b)
