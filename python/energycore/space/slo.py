"""Serving SLOs: limits on TTFT and ITL/TPOT (mean or a percentile) and a request rate.

An :class:`SLO` is a small value object that :meth:`ConfigSpace.argmin`, :meth:`~ConfigSpace.
top_k`, :meth:`~ConfigSpace.to_frame`, :meth:`~ConfigSpace.count_valid`,
:meth:`~ConfigSpace.pareto_front` and :meth:`Selector.best` accept as ``slo=``.

- **Mean limits** (``percentile=None``) compare the models' predictions: ``ttft_s`` (time to
  first token of the batch) with ``ttft_s``, ``tpot_s`` and ``itl_s`` (time per output token;
  the mean inter-token latency is the same quantity for the models) with ``tpot_s``.
- **Percentile limits** (``percentile=90`` ...) use the residual spread the fit recorded
  (``resid_quantiles_``, quantiles of ``log(measured / predicted)``, see
  :mod:`energycore.fit.provenance`): the p-th percentile of TTFT is ``ttft_s * exp(q_p)``. A
  model without that record (loaded from a file written before it existed) is refused with a
  ``ValueError``: nothing is guessed. Per-request TPOT residuals stand in for ITL: the
  per-token ITL distribution has heavier tails than its per-request mean, so a p99 ITL limit
  is read as a p99 limit on the time per output token of a request.
- **Request rate**: a configuration with batch ``b`` serving requests of
  ``(input_len, output_len)`` finishes ``b`` requests every ``ttft_s + output_len * tpot_s``
  (= ``latency_s``) seconds, so one replica sustains about ``b / latency_s`` requests/s; a node
  of ``gpus`` GPUs holds ``floor(gpus / (tp * pp))`` replicas. A configuration is kept when
  ``b * floor(gpus / (tp * pp)) / latency_s >= request_rate`` (``gpus=None``: one replica, the
  rate per replica). The rate uses the mean latency prediction.

Limits on ``ttft_s``/``tpot_s`` enter :meth:`ConfigSpace.argmin` like ``subject_to`` limits (an
infeasible query answers with the nearest point); the request rate and per-GPU-type percentile
factors are filters like ``where=`` (points failing them are not candidates, nor the nearest).

With ``confidence=`` on the query, the limits judge the upper bounds of the predictions
(:mod:`energycore.space.uncertainty`): a mean limit the bound alone, a percentile limit both
the percentile estimate and the bound, the request rate the bound of ``latency_s``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from energycore.fit.provenance import quantile_at

__all__ = ["SLO", "SloParts", "percentile_factor", "slo_parts", "sustained_rate"]

_LIMITS = {"ttft_s": "ttft_s", "tpot_s": "tpot_s", "itl_s": "tpot_s"}
_KIND = {"ttft_s": "ttft", "tpot_s": "tpot"}
_MODEL = {"ttft": "a TtftModel or a LatencyModel", "tpot": "a TpotModel or a LatencyModel"}


def _positive(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what}: must be a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{what}: must be a finite positive number, got {x}")
    return x


@dataclass(frozen=True)
class SLO:
    """Serving limits for a configuration search.

    Parameters
    ----------
    ttft_s : float, optional
        Limit on the time to first token, s.
    tpot_s, itl_s : float, optional
        Limits on the time per output token / inter-token latency, s (both compare the TPOT
        model's prediction; giving both applies the stricter).
    percentile : float, optional
        ``None`` (default): the limits are on the mean (the prediction). A number in (0, 100),
        e.g. 90 or 99.9: the limits are on that percentile, from the fitted residual spread.
    request_rate : float, optional
        Requests/s the deployment must sustain (see the module docstring for the formula).
    gpus : int, optional
        GPUs of the node, for the replica count ``floor(gpus / (tp * pp))`` of the request
        rate; ``None``: the rate is per replica.

    Examples
    --------
    >>> SLO(ttft_s=0.5, tpot_s=0.05, percentile=90, request_rate=20, gpus=8)
    SLO(ttft_s=0.5, tpot_s=0.05, percentile=90.0, request_rate=20.0, gpus=8)
    """

    ttft_s: float | None = None
    tpot_s: float | None = None
    itl_s: float | None = None
    percentile: float | None = None
    request_rate: float | None = None
    gpus: int | None = None

    def __post_init__(self) -> None:
        for name in ("ttft_s", "tpot_s", "itl_s", "request_rate"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _positive(v, f"slo.{name}"))
        p = self.percentile
        if p is not None:
            p = _positive(p, "slo.percentile")
            if not 0 < p < 100:
                raise ValueError(f"slo.percentile: must lie in (0, 100), got {p}")
            object.__setattr__(self, "percentile", p)
        g = self.gpus
        if g is not None:
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
                raise ValueError(f"slo.gpus: must be a positive integer, got {g!r}")
            object.__setattr__(self, "gpus", int(g))
        if p is not None and self.ttft_s is None and self.tpot_s is None and self.itl_s is None:
            raise ValueError("slo.percentile: needs a ttft_s, tpot_s or itl_s to apply to")
        if self.gpus is not None and self.request_rate is None:
            raise ValueError("slo.gpus: only counts replicas for a request_rate")

    @classmethod
    def make(cls, slo: Any) -> SLO | None:
        """An SLO from an SLO, a mapping of its fields (``ValueError`` naming an unknown key) or
        ``None``."""
        if slo is None or isinstance(slo, SLO):
            return slo
        if not isinstance(slo, Mapping):
            raise ValueError(f"slo: expected an SLO or a mapping, got {type(slo).__name__}")
        known = [f.name for f in fields(cls)]
        for k in slo:
            if k not in known:
                raise ValueError(f"slo: unknown field {k!r} (fields: {', '.join(known)})")
        return cls(**dict(slo))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``None`` for those not set)."""
        return asdict(self)

    @property
    def empty(self) -> bool:
        """True when no limit is set."""
        return all(getattr(self, k) is None for k in ("ttft_s", "tpot_s", "itl_s", "request_rate"))

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if v is not None)
        return f"SLO({set_})"

    def describe(self) -> str:
        """``"p90 TTFT <= 0.5 s, p90 TPOT <= 0.05 s, >= 20 req/s on 8 GPUs"``."""
        tag = "mean" if self.percentile is None else f"p{self.percentile:g}"
        parts = [
            f"{tag} {label} <= {v:g} s"
            for label, v in (("TTFT", self.ttft_s), ("TPOT", self.tpot_s), ("ITL", self.itl_s))
            if v is not None
        ]
        if self.request_rate is not None:
            node = f" on {self.gpus} GPUs" if self.gpus is not None else " per replica"
            parts.append(f">= {self.request_rate:g} req/s{node}")
        return ", ".join(parts) or "no limits"


@dataclass(frozen=True)
class SloParts:
    """An SLO compiled for one query: limits on score columns and filter expressions.

    Attributes
    ----------
    limits : list of (column, op, value)
        ``("ttft_s", "<=", limit / exp(q_p))`` ...: the limit moved onto the mean prediction.
    filters : list of str
        Expressions for ``where=`` (the request rate; percentile factors that differ per GPU
        type).
    factors : dict
        ``exp(q_p)`` per column (one per model-axis value when keyed, else one): what the
        prediction is multiplied by to give the percentile.
    """

    limits: list[tuple[str, str, float]]
    filters: list[str]
    factors: dict[str, list[float]]

    def where_terms(self) -> list[str]:
        """Every part as a filter expression (for queries without limits, e.g. top_k)."""
        return [f"{c} <= {v!r}" for c, _, v in self.limits] + list(self.filters)


def _parts_of(m: Any) -> list[tuple[str, Any]]:
    """(kind, model object) of the latency parts of one model (energy models give none)."""
    if hasattr(m, "ttft_model_"):
        return [(k, sub) for k, sub in (("ttft", m.ttft_model_), ("tpot", m.tpot_model_)) if sub]
    kind = _KIND.get(str(getattr(m, "target", "")))
    return [(kind, m)] if kind else []


def latency_objects(
    models: Any, model_axis: str | None, values: Sequence[str] | None
) -> dict[str, list[Any]]:
    """Latency model objects per kind: one per value of the model axis (keyed) or one."""
    out: dict[str, list[Any]] = {}
    if isinstance(models, Mapping):
        keys = list(values or models)
        for key in keys:
            items = models[key]
            for m in items if isinstance(items, (list, tuple)) else [items]:
                for kind, obj in _parts_of(m):
                    out.setdefault(kind, []).append(obj)
        return out
    for m in models if isinstance(models, (list, tuple)) else [models]:
        for kind, obj in _parts_of(m):
            out.setdefault(kind, []).append(obj)
    return out


def percentile_factor(obj: Any, percentile: float | None, what: str = "percentile") -> float:
    """``exp(q_p)``: what a model's prediction is multiplied by to give its p-th percentile
    (1 for ``percentile=None``); ``ValueError`` when the model has no residual record."""
    if percentile is None:
        return 1.0
    q = getattr(obj, "resid_quantiles_", None)
    if not q:
        raise ValueError(
            f"{what}: a percentile limit needs the residual spread the fit records, and this "
            f"{type(obj).__name__} has none (a file from before energycore recorded it, or a "
            "model of another kind); refit it, or give a mean limit (percentile=None)"
        )
    return math.exp(quantile_at(q, percentile))


def slo_parts(
    slo: SLO,
    models: Any,
    kinds: set[str],
    *,
    model_axis: str | None = None,
    axis_values: Sequence[str] | None = None,
    confidence: float | None = None,
) -> SloParts:
    """Compile ``slo`` for a query over ``models`` (whose kinds are ``kinds``).

    With ``confidence`` (the models' upper bounds are in the query): a mean limit applies to
    the bound column (``tpot_upper_s`` ...) instead of the prediction; a percentile limit
    applies to the percentile estimate as without confidence *and* to the bound column (both
    must hold); the request rate uses ``latency_upper_s``. See
    :mod:`energycore.space.uncertainty`.

    ``ValueError`` naming the field when a limit needs a model the query lacks, or a
    percentile needs a residual record a model lacks.
    """
    objs = latency_objects(models, model_axis, axis_values) if models is not None else {}
    limits: list[tuple[str, str, float]] = []
    filters: list[str] = []
    factors: dict[str, list[float]] = {}
    for field, column in _LIMITS.items():
        value = getattr(slo, field)
        if value is None:
            continue
        kind = _KIND[column]
        what = f"slo.{field}"
        if kind not in kinds:
            raise ValueError(f"{what}: needs {_MODEL[kind]} (pass it in models=...)")
        if column not in factors:
            per = objs.get(kind, [])
            if not per:
                raise ValueError(f"{what}: needs {_MODEL[kind]} (pass it in models=...)")
            factors[column] = [percentile_factor(o, slo.percentile, what) for o in per]
        if confidence is not None:
            limits.append((f"{column[:-2]}_upper_s", "<=", value))
            if slo.percentile is None:
                continue
        f = factors[column]
        if len(set(f)) == 1:
            limits.append((column, "<=", value / f[0]))
        else:
            assert model_axis is not None and axis_values is not None
            table = ", ".join(f"{k!r}: {x!r}" for k, x in zip(axis_values, f))
            filters.append(f"{column} * {{{table}}}[{model_axis}] <= {value!r}")
    if slo.request_rate is not None:
        if "latency" not in kinds:
            raise ValueError(
                "slo.request_rate: needs a latency model with both halves (TTFT and TPOT)"
            )
        replicas = f" * ({slo.gpus} // (tp * pp))" if slo.gpus is not None else ""
        lat = "latency_s" if confidence is None else "latency_upper_s"
        filters.append(f"batch{replicas} >= {slo.request_rate!r} * {lat}")
    return SloParts(limits, filters, factors)


def sustained_rate(
    batch: Any, latency_s: Any, tp: Any = 1, pp: Any = 1, gpus: int | None = None
) -> Any:
    """Requests/s a configuration sustains: ``batch * floor(gpus / (tp*pp)) / latency_s``
    (one replica when ``gpus`` is None). Works on numbers and numpy arrays."""
    b = np.asarray(batch, dtype=np.float64)
    lat = np.asarray(latency_s, dtype=np.float64)
    reps = 1.0 if gpus is None else np.floor(gpus / (np.asarray(tp) * np.asarray(pp)))
    out = b * reps / lat
    return float(out) if np.ndim(out) == 0 else out
