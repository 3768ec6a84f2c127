"""Selector: microsecond answers to "which configuration for this workload, under these limits".

A serving scheduler asks, per request or batch, for the configuration that minimises an objective
(by default energy per request) for a workload ``(input_len, output_len)`` under a latency limit
and a power cap. The Selector builds the space's C++ engine once, with the fitted models, and
precomputes for each cell of a grid over the workload plane the candidates ordered by a lower
bound of the objective (its value at the cell's lower corner: every objective it accepts grows
with the lengths, or does not depend on them). A query scores candidates exactly in that order
and stops as soon as the bound exceeds the best value found, so its answer is always the answer
of :meth:`ConfigSpace.argmin` for the same query, usually after scoring a handful of points.

The build (C++) scores each candidate at every node of the grid, in one batch per candidate;
candidates that agree on every axis the objective and the models read (they differ only in
knobs that feed constraints) share those scores, so such knobs add sorting, not scoring.
Tables take 16 bytes per cell and candidate.

Queries release the GIL and share no mutable state: call :meth:`Selector.best` from many threads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from energycore import _core
from energycore.space.configspace import MONOTONE_IN_LENGTHS, OBJECTIVES, ConfigSpace, Selection
from energycore.space.slo import SLO
from energycore.space.uncertainty import check_confidence

__all__ = ["Selector"]

#: Default cell edges: 0, then powers of sqrt(2) up to 131072 (35 x 35 cells), coarsened to
#: powers of 2 or 4 when the space is large, to keep the tables under _MAX_TABLE_BYTES.
_MAX_TABLE_BYTES = 256 * 2**20
_ENTRY_BYTES = 16
_MAX_SELECTOR_BYTES = 2**31


def _default_edges(points: int) -> list[float]:
    for step in (0.5, 1.0, 2.0):
        edges = [0.0, *(2.0 ** (k * step) for k in range(int(17 / step) + 1))]
        if (len(edges) - 1) ** 2 * points * _ENTRY_BYTES <= _MAX_TABLE_BYTES:
            return edges
    return edges


class Selector:
    """Fast constrained selection over a :class:`ConfigSpace` for changing workloads.

    Parameters
    ----------
    space : ConfigSpace
        Must not have ``input_len`` or ``output_len`` as axes: they are given per query.
    energy_model, latency_model : model or mapping, optional
        Fitted :class:`~energycore.EnergyModel` and :class:`~energycore.LatencyModel`, or
        mappings ``{value of the model axis: model}`` (one per GPU type).
    models : optional
        Instead of the two above: anything ``ConfigSpace`` queries accept as ``models=``.
    objective : str
        What :meth:`best` minimises: ``energy_per_request_j`` (default), ``energy_j``,
        ``latency_s``, ``ttft_s``, ``tpot_s``, ``power_w`` or a numeric column.
    input_len_edges, output_len_edges : sequence of float, optional
        Cell edges of the precomputed grid (default 0 then powers of sqrt(2) up to 131072,
        coarser for large spaces). Queries outside the grid are still exact, only slower.
        Memory is 16 bytes x cells x candidate points.
    confidence : float, optional
        Default of :meth:`best`'s ``confidence`` (``None``: limits judge the point
        predictions). The tables for it are built here; another value given to :meth:`best`
        builds (once) and caches its own.
    **fixed : float
        Other fixed values of the space (e.g. ``batch=8`` when batch is not an axis).

    Examples
    --------
    >>> sel = Selector(space, energy_model=em, latency_model=lm)         # doctest: +SKIP
    >>> sel.best(input_len=512, output_len=128, latency_limit_s=2.0, power_cap_w=3000)
    ...                                                                     # doctest: +SKIP
    """

    def __init__(
        self,
        space: ConfigSpace,
        energy_model: Any = None,
        latency_model: Any = None,
        *,
        models: Any = None,
        objective: str = "energy_per_request_j",
        input_len_edges: Sequence[float] | None = None,
        output_len_edges: Sequence[float] | None = None,
        confidence: float | None = None,
        **fixed: float,
    ) -> None:
        if not isinstance(space, ConfigSpace):
            raise ValueError(f"space: expected a ConfigSpace, got {type(space).__name__}")
        for name in ("input_len", "output_len"):
            if name in space.names:
                raise ValueError(
                    f"space: {name!r} is an axis; a Selector takes it per query, so it must not be"
                )
        if models is not None and (energy_model is not None or latency_model is not None):
            raise ValueError("models: give either models=... or energy_model/latency_model")
        if models is None:
            models = self._combine(space, energy_model, latency_model)
        self.space = space
        self._models = models
        self.objective = objective
        self.fixed = dict(fixed)
        self._lin_edges = self._edges(input_len_edges, "input_len_edges", space.size)
        self._lout_edges = self._edges(output_len_edges, "output_len_edges", space.size)
        cells = (len(self._lin_edges) - 1) * (len(self._lout_edges) - 1)
        if cells * space.size * _ENTRY_BYTES > _MAX_SELECTOR_BYTES:
            raise ValueError(
                f"space: {space.size:,} points x {cells} workload cells would need up to "
                f"{cells * space.size * _ENTRY_BYTES / 2**30:.1f} GiB of tables; pass coarser "
                "input_len_edges/output_len_edges or select over a smaller space"
            )
        self.confidence = check_confidence(confidence)
        self._per_conf: dict[float | None, tuple[Any, dict[tuple[int, bool], Any]]] = {}
        self._q = self._state(self.confidence)[0]
        self._slot = self.space._objective(self._q, objective)
        self._lat = self._q.slots.slot["latency_s"] if "latency" in self._q.models.kinds else -1
        self._tpot = self._q.slots.slot["tpot_s"] if "tpot" in self._q.models.kinds else -1
        self._pow = (
            self._q.slots.slot["power_w"] if self._q.models.kinds >= {"energy", "latency"} else -1
        )
        self._core = self._selector(self._slot, False)

    def _state(self, confidence: float | None) -> tuple[Any, dict[tuple[int, bool], Any]]:
        """The query (engine) of one confidence and its selectors by (slot, maximize), built
        once. Every engine has the same slot layout; only the bound columns differ."""
        if confidence not in self._per_conf:
            # Build at a placeholder workload; every query sets both lengths.
            q = self.space._query(
                self._models, {**self.fixed, "input_len": 1.0, "output_len": 1.0}, confidence
            )
            self._per_conf[confidence] = (q, {})
        return self._per_conf[confidence]

    @staticmethod
    def _combine(space: ConfigSpace, energy: Any, latency: Any) -> Any:
        if energy is None and latency is None:
            raise ValueError("models: a Selector needs an energy_model and/or a latency_model")
        if isinstance(energy, dict) or isinstance(latency, dict):
            keys = list(energy or {}) + [k for k in (latency or {}) if k not in (energy or {})]
            out = {}
            for k in keys:
                parts = []
                for what, m in (("energy_model", energy), ("latency_model", latency)):
                    if m is None:
                        continue
                    if not isinstance(m, dict):
                        raise ValueError(
                            f"{what}: give a mapping like the other model, or one model"
                        )
                    if k not in m:
                        raise ValueError(f"{what}: no model for {k!r}")
                    parts.append(m[k])
                out[k] = parts
            return out
        return [m for m in (energy, latency) if m is not None]

    @staticmethod
    def _edges(edges: Sequence[float] | None, what: str, points: int) -> list[float]:
        vals = list(_default_edges(points) if edges is None else edges)
        arr = np.asarray(vals, dtype=np.float64)
        if arr.ndim != 1 or len(arr) < 2 or not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError(f"{what}: need at least two finite, non-negative edges")
        if not (np.diff(arr) > 0).all():
            raise ValueError(f"{what}: edges must increase")
        return arr.tolist()

    def _varies(self, name: str) -> bool:
        """Whether a column depends on input_len or output_len."""
        if name in MONOTONE_IN_LENGTHS or name in ("power_w", "input_len", "output_len"):
            return True
        if name in OBJECTIVES:  # the bound columns
            return True
        return name in self.space.derived and self._depends(name, frozenset())

    def _depends(self, name: str, seen: frozenset[str]) -> bool:
        for n in self.space.derived[name].names:
            if n in ("input_len", "output_len"):
                return True
            if n in self.space.derived and n not in seen and self._depends(n, seen | {name}):
                return True
        return False

    def _selector(self, slot: int, maximize: bool, confidence: Any = "default") -> Any:
        conf = self.confidence if confidence == "default" else confidence
        q, selectors = self._state(conf)
        key = (slot, maximize)
        if key not in selectors:
            name = {v: k for k, v in self._q.slots.slot.items()}[slot]
            # The value at a cell's lower corner bounds the (sign-adjusted) objective in the cell
            # when it never decreases with the lengths, or (maximised) when it ignores them.
            if maximize:
                monotone = not self._varies(name)
            else:
                # (a discovered model with a negative length exponent is not monotone)
                monotone = (name in MONOTONE_IN_LENGTHS and q.models.monotone(name)) or name in (
                    "input_len",
                    "output_len",
                )
                monotone = monotone or not self._varies(name)
            s = q.slots.slot
            selectors[key] = _core.SpaceSelector(
                q.engine, slot, maximize, monotone, s["input_len"], s["output_len"],
                self._lin_edges, self._lout_edges,
            )  # fmt: skip
        return selectors[key]

    @property
    def n_candidates(self) -> int:
        """Points passing the constraints that do not depend on the workload."""
        return int(self._core.n_candidates)

    def _limits(
        self,
        latency_limit_s: float | None,
        power_cap_w: float | None,
        tpot_limit_s: float | None = None,
        q: Any = None,
    ) -> list[tuple[int, int, float]]:
        """(slot, op, value) of the limits; ``q``: the query of a confidence, whose upper
        limits judge the bound columns."""
        bounded = q is not None
        out = []
        slot = self._q.slots.slot
        lat = slot["latency_upper_s"] if bounded and self._lat >= 0 else self._lat
        tpot = slot["tpot_upper_s"] if bounded and self._tpot >= 0 else self._tpot
        pow_ = self._pow
        if q is not None and pow_ >= 0 and power_cap_w is not None:
            # the bound needs the energy model's uncertainty too: a clear error if it has none
            pow_ = self.space._objective(q, "power_upper_w", what="power_cap_w")
        needs = {
            "latency_limit_s": "a latency model with both halves (ttft and tpot)",
            "power_cap_w": "a latency model with both halves and an energy model",
            "tpot_limit_s": "a TpotModel or a LatencyModel",
        }
        for what, v, slot in (
            ("latency_limit_s", latency_limit_s, lat),
            ("power_cap_w", power_cap_w, pow_),
            ("tpot_limit_s", tpot_limit_s, tpot),
        ):
            if v is None:
                continue
            if slot < 0:
                raise ValueError(f"{what}: needs {needs[what]}")
            if (
                not isinstance(v, (int, float, np.integer, np.floating))
                or isinstance(v, bool)
                or not math.isfinite(v)
            ):
                raise ValueError(f"{what}: must be a finite number, got {v!r}")
            out.append((slot, 0, float(v)))
        return out

    @staticmethod
    def _length(v: Any, what: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{what}: must be a number, got {v!r}")
        x = float(v)
        if not (math.isfinite(x) and x >= 0):
            raise ValueError(f"{what}: must be finite and non-negative, got {x}")
        return x

    def best(
        self,
        input_len: float,
        output_len: float,
        latency_limit_s: float | None = None,
        power_cap_w: float | None = None,
        tpot_limit_s: float | None = None,
        *,
        slo: SLO | Mapping[str, Any] | None = None,
        confidence: float | str | None = "default",
    ) -> Selection:
        """The best configuration for a workload under a latency limit and a power cap.

        Equal to ``space.argmin(objective, subject_to={"latency_s": ("<=", latency_limit_s),
        "power_w": ("<=", power_cap_w), "tpot_s": ("<=", tpot_limit_s)}, models=...,
        input_len=..., output_len=...)``, with ``n_valid`` and ``n_feasible`` not counted (-1).
        Infeasible limits give a Selection with ``feasible=False`` and the nearest point. A
        ``tpot_limit_s`` (time per output token, e.g. a median inter-token latency) needs only
        a TpotModel.

        ``slo`` (an :class:`~energycore.space.slo.SLO` or a mapping of its fields) adds serving
        limits. TTFT and TPOT/ITL limits, mean or percentile, stay on the fast path (a
        percentile limit is the mean limit divided by ``exp(q_p)``). A request rate, or
        percentile factors that differ per GPU type, are not a bound on one score: such a
        query is answered by :meth:`ConfigSpace.argmin` over the whole space (exact, with
        ``n_valid``/``n_feasible`` counted; a full scan instead of a few candidates).

        ``confidence`` (default: the one the Selector was built with) judges the latency
        limits, the TPOT limit, the power cap (on ``power_upper_w``, which needs an energy
        model that records its uncertainty) and the SLO's on the upper bounds of the
        predictions, as :meth:`ConfigSpace.argmin` does (:mod:`energycore.space.uncertainty`).
        The answer equals ``argmin(..., confidence=...)``.
        """
        lin = self._length(input_len, "input_len")
        lout = self._length(output_len, "output_len")
        conf = self.confidence if confidence == "default" else check_confidence(confidence)
        core = self._selector(self._slot, False, conf)
        q = self._state(conf)[0]
        limits = self._limits(
            latency_limit_s, power_cap_w, tpot_limit_s, q if conf is not None else None
        )
        s = SLO.make(slo)
        if s is not None and not s.empty:
            parts = self.space._slo(q, s, self._models)
            assert parts is not None
            if parts.filters:
                return self._scan(lin, lout, latency_limit_s, power_cap_w, tpot_limit_s, s, conf)
            limits += [(self._q.slots.slot[c], 0, float(v)) for c, _, v in parts.limits]
        feasible, index, value, nearest, violation = core.best(lin, lout, limits)
        return Selection(
            feasible, self.objective, value, index, nearest, violation, -1, -1,
            self._row_at(lin, lout, q),
        )  # fmt: skip

    def _scan(
        self,
        lin: float,
        lout: float,
        latency_limit_s: float | None,
        power_cap_w: float | None,
        tpot_limit_s: float | None,
        slo: SLO,
        confidence: float | None = None,
    ) -> Selection:
        """:meth:`best` through ConfigSpace.argmin (for SLO parts that are filters)."""
        subject_to = {
            name: ("<=", float(v))
            for name, v in (
                ("latency_s", latency_limit_s),
                ("power_w", power_cap_w),
                ("tpot_s", tpot_limit_s),
            )
            if v is not None
        }
        workload: dict[str, Any] = {**self.fixed, "input_len": lin, "output_len": lout}
        return self.space.argmin(
            self.objective, subject_to or None, models=self._models, slo=slo,
            confidence=confidence, **workload,
        )  # fmt: skip

    def _row_at(self, lin: float, lout: float, q: Any = None) -> Any:
        q = self._q if q is None else q
        return self.space._row_of(q, override={"input_len": lin, "output_len": lout})

    def best_variant(
        self,
        budget_s: float,
        *,
        input_len: float,
        output_len: float,
        quality: str = "quality",
    ) -> Selection:
        """The highest-``quality`` point whose predicted ``latency_s`` fits ``budget_s``.

        For run-time network selection: the space has a variant axis (a categorical model
        axis with one LatencyModel per variant) and a ``quality`` column (an axis or a derived
        lookup such as ``'{"small": 0.71, "large": 0.80}[variant]'``). Ties go to the earlier
        point. Infeasible budgets give ``feasible=False`` and the nearest (fastest-missing) point.
        """
        if self._lat < 0:
            raise ValueError("budget_s: best_variant needs a latency model")
        slot = self.space._objective(self._q, quality, what="quality")
        b = self._length(budget_s, "budget_s")
        lin = self._length(input_len, "input_len")
        lout = self._length(output_len, "output_len")
        core = self._selector(slot, True)
        feasible, index, value, nearest, violation = core.best(lin, lout, [(self._lat, 0, b)])
        return Selection(
            feasible, quality, value, index, nearest, violation, -1, -1, self._row_at(lin, lout)
        )

    def __repr__(self) -> str:
        return (
            f"Selector(objective={self.objective!r}, {self.n_candidates} candidates, "
            f"{len(self._lin_edges) - 1}x{len(self._lout_edges) - 1} workload cells, "
            f"models: {', '.join(sorted(self._q.models.kinds)) or 'none'})"
        )
