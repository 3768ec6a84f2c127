"""ConfigSpace: the axes of a deployment search, its constraints, and queries over it.

A configuration is a row of named columns. The space owns

- **axes**: integer or float values (lists, ranges, :meth:`ConfigSpace.powers_of_two`),
  categorical values (GPU type, model variant, quantisation: strings, coded 0, 1, ... for the C++
  engine and decoded in every output) and booleans;
- **fixed values**: workload numbers that are not axes (``input_len``, ``output_len``, ``batch``
  when it is not searched, or any name declared in ``fixed=``), given at query time as keyword
  arguments (``space.argmin("energy_j", input_len=512, output_len=256)``) or defaulted in the
  constructor;
- **derived columns**: ``n_gpus = tp * pp`` always, plus any named expression (``derived=``);
- **constraints**: expression strings (see :mod:`energycore.space.constraints`) and the built-ins
  :meth:`gpu_count`, :meth:`divisible` and :meth:`memory_fit`, which return such strings.

Queries walk the space lazily in C++ (never materialising the cross product), drop points that
fail a constraint, score the rest with fitted models and reduce: :meth:`count_valid`,
:meth:`to_frame`, :meth:`top_k`, :meth:`argmin`, :meth:`pareto_front`. Scores (objectives):

- ``energy_j``: energy of one batch over all GPUs, J (needs an energy model);
- ``energy_per_request_j``: ``energy_j / batch``, J (energy model);
- ``ttft_s``: time to first token of the batch, s (latency model);
- ``tpot_s``: time per output token, s (latency model);
- ``latency_s``: ``ttft_s + output_len * tpot_s``, s (latency model);
- ``power_w``: ``energy_j / latency_s``, the average power of the deployment, W (both);
- ``n_gpus``: ``tp * pp`` (always), or the rows' own ``n_gpus`` column in a space made by
  :meth:`ConfigSpace.from_rows` (expert- or data-parallel serving);
- ``ttft_upper_s``, ``tpot_upper_s``, ``latency_upper_s``: upper bounds of the latency scores
  at the query's ``confidence=`` (see :mod:`energycore.space.uncertainty`; only with one);
- ``energy_upper_j``, ``power_upper_w``: upper bounds of ``energy_j`` and ``power_w`` at the
  query's ``confidence=`` (the energy model's uncertainty, and the latency's for power).

Callables may add further columns (``scorers=``), evaluated on valid points in batches.

Models are attached per query with ``models=``: one fitted model, a list of them, or a dict
keyed by the values of the model axis (``model_axis``, by default ``"gpu"``) giving each GPU
type its own models, e.g. ``models={"H100": [e_h100, lat_h100], "A100": [e_a100, lat_a100]}``.
A model is an :class:`~energycore.EnergyModel`, a :class:`~energycore.LatencyModel`, or a
:class:`~energycore.TtftModel` / :class:`~energycore.TpotModel` pair.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energycore import _core
from energycore._util.columns import FEATURE_MAX, FEATURES, N_GPUS, gpus_per_stage
from energycore._util.persist import check_format, parse_json, read_json
from energycore.space import query_columns as _scorers
from energycore.space.axes import MAX_EXACT_INT, Axis, check_name
from energycore.space.constraints import OP, Code, Expression, Slots
from energycore.space.modelset import ModelSet, collect, merge, scales
from energycore.space.selection import Selection
from energycore.space.slo import SLO, SloParts, slo_parts
from energycore.space.uncertainty import UPPER_OF, check_confidence

__all__ = ["OBJECTIVES", "SLO", "Axis", "ConfigSpace", "Selection"]

#: Scores of a point, in the order of the C++ engine (space.hpp, ``enum Objective``).
OBJECTIVES: tuple[str, ...] = (
    "energy_j",
    "energy_per_request_j",
    "ttft_s",
    "tpot_s",
    "latency_s",
    "power_w",
    "ttft_upper_s",
    "tpot_upper_s",
    "latency_upper_s",
    "energy_upper_j",
    "power_upper_w",
)
_NEEDS: dict[str, tuple[str, ...]] = {
    "energy_j": ("energy",),
    "energy_per_request_j": ("energy",),
    "ttft_s": ("ttft",),
    "tpot_s": ("tpot",),
    "latency_s": ("latency",),
    "power_w": ("energy", "latency"),
    "ttft_upper_s": ("ttft_upper",),
    "tpot_upper_s": ("tpot_upper",),
    "latency_upper_s": ("latency_upper",),
    "energy_upper_j": ("energy_upper",),
    "power_upper_w": ("power_upper",),
}
_MODEL_OF = {
    "energy": "EnergyModel",
    "ttft": "TtftModel or LatencyModel",
    "tpot": "TpotModel or LatencyModel",
    "latency": "LatencyModel with both halves",
    "ttft_upper": "TtftModel or LatencyModel, and confidence=...",
    "tpot_upper": "TpotModel or LatencyModel, and confidence=...",
    "latency_upper": "LatencyModel with both halves, and confidence=...",
    "energy_upper": "EnergyModel, and confidence=...",
    "power_upper": "EnergyModel and a LatencyModel with both halves, and confidence=...",
}
#: Objectives that never decrease when input_len or output_len grow (the Selector relies on it).
MONOTONE_IN_LENGTHS: frozenset[str] = frozenset(
    {"energy_j", "energy_per_request_j", "ttft_s", "tpot_s", "latency_s"}
)
_OPS = {"<=": 0, "<": 1, ">=": 2, ">": 3, "==": 4}
FORMAT_VERSION = 1
_MAX_POINTS = 2**62


# ---------------------------------------------------------------------------------- engine
@dataclass
class _Query:
    """An engine built for one set of fixed values and models, with its name table."""

    engine: Any
    slots: Slots
    params: dict[str, float]
    models: ModelSet

    def code(self, expr: Expression | None) -> Code:
        return [] if expr is None else expr.compile(self.slots)


class ConfigSpace:
    """A configuration space: axes, fixed workload values, derived columns and constraints.

    Parameters
    ----------
    axes : mapping of str to sequence
        Axis name to its values: integers, floats, strings (categorical) or booleans; a
        ``range`` or :meth:`powers_of_two` works. ``tp``, ``pp``, ``batch``, ``input_len``,
        ``output_len`` are the model features; any other name is a user axis.
    constraints : sequence of str
        Expressions that every valid point satisfies, e.g. ``"tp*pp <= 8"``; they may use axes,
        fixed values and derived columns (not scores; limits on scores go to ``argmin``).
    fixed : mapping of str to float, optional
        Default values of non-axis columns (e.g. ``{"input_len": 512}``), or new names for
        constraints to use; every query may override them by keyword.
    derived : mapping of str to str, optional
        Extra columns computed from others, in order (e.g. ``{"quality": '{"7b": 0.61,
        "70b": 0.79}[variant]'}``). ``n_gpus = tp * pp`` is always there.
    model_axis : str, optional
        The categorical axis that ``models={value: model}`` is keyed by. Default ``"gpu"`` when
        there is such an axis.
    n_threads : int
        Worker threads of the C++ engine (0: all cores). Answers do not depend on it.

    Examples
    --------
    >>> space = ConfigSpace(
    ...     {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": ConfigSpace.powers_of_two(1, 256),
    ...      "gpu": ["H100", "A100"]},
    ...     constraints=["tp*pp <= 8"])
    >>> space.size, space.count_valid()
    (144, 126)
    """

    def __init__(
        self,
        axes: Mapping[str, Any],
        constraints: Sequence[str] = (),
        *,
        fixed: Mapping[str, float] | None = None,
        derived: Mapping[str, str] | None = None,
        model_axis: str | None = None,
        n_threads: int = 0,
    ) -> None:
        self._setup(axes, constraints, fixed, derived, model_axis, n_threads, gpu_axes=False)

    def _setup(
        self,
        axes: Mapping[str, Any],
        constraints: Sequence[str],
        fixed: Mapping[str, float] | None,
        derived: Mapping[str, str] | None,
        model_axis: str | None,
        n_threads: int,
        *,
        gpu_axes: bool,
    ) -> None:
        """The constructor's work; ``gpu_axes``: the axes hold ``n_gpus`` and
        ``gpus_per_stage`` (made by :meth:`from_rows` from an ``n_gpus`` column)."""
        if not isinstance(axes, Mapping) or not axes:
            raise ValueError("axes: expected a non-empty mapping of axis name to values")
        own = (N_GPUS, GPUS_PER_STAGE) if gpu_axes else ()
        self.axes: tuple[Axis, ...] = tuple(
            Axis.make(k if k in own else check_name(k, "axes"), v) for k, v in axes.items()
        )
        #: The column the models read as ``tp``: ``tp``, or the GPUs per pipeline stage
        #: ``n_gpus / pp`` when the rows give ``n_gpus`` (expert- or data-parallel serving).
        self._model_tp = GPUS_PER_STAGE if gpu_axes else "tp"
        self._axis_index = {a.name: i for i, a in enumerate(self.axes)}
        size = 1
        for a in self.axes:
            size *= len(a.values)
        if size > _MAX_POINTS:
            raise ValueError(f"axes: the space has {size} points, more than 2**62")
        self._size = size
        if isinstance(constraints, str):
            constraints = [constraints]
        self.constraints: tuple[Expression, ...] = tuple(
            Expression(c, what="constraint") for c in constraints
        )
        self.fixed: dict[str, float] = {}
        for k, v in (fixed or {}).items():
            check_name(k, "fixed")
            if k in self._axis_index:
                raise ValueError(f"fixed: {k!r} is an axis; a name is either an axis or fixed")
            self.fixed[k] = self._number(v, f"fixed: {k!r}")
        # Non-axis model features are fixed values too; tp and pp default to 1.
        self._params: list[str] = [f for f in FEATURES if f not in self._axis_index]
        self._params += [k for k in self.fixed if k not in self._params]
        self._defaults = {
            p: self.fixed.get(p, 1.0 if p in ("tp", "pp") else math.nan) for p in self._params
        }
        self.derived: dict[str, Expression] = (
            {} if gpu_axes else {N_GPUS: Expression("tp * pp", what="derived")}
        )
        for k, src in (derived or {}).items():
            check_name(k, "derived")
            if k in self._axis_index or k in self._params:
                raise ValueError(f"derived: {k!r} is already an axis or a fixed value")
            self.derived[k] = Expression(src, what=f"derived column {k!r}")
        if model_axis is None and "gpu" in self._axis_index:
            model_axis = "gpu"
        if model_axis is not None:
            if model_axis not in self._axis_index:
                raise ValueError(f"model_axis: {model_axis!r} is not an axis")
            if self.axes[self._axis_index[model_axis]].kind != "category":
                raise ValueError(f"model_axis: axis {model_axis!r} must be categorical")
        self.model_axis = model_axis
        if not isinstance(n_threads, int) or n_threads < 0:
            raise ValueError(f"n_threads: must be a non-negative integer, got {n_threads!r}")
        self.n_threads = n_threads
        # Validate every name now, so that mistakes surface at construction.
        base = self._slots(with_objectives=False)
        for name, expr in self.derived.items():
            known = [n for n in base.slot if n not in self.derived or self._before(n, name)]
            expr.check_names(known, detail="derived columns may use earlier columns only")
            expr.compile(Slots({n: base.slot[n] for n in known}, base.values))
        for c in self.constraints:
            c.check_names(list(base.slot), detail="constraints cannot use scores")
            c.compile(base)
        self._cache: tuple[tuple[Any, ...], _Query] | None = None
        #: Explicit points (n x axes digits) of a space made by from_rows; None: the product.
        self._rows: np.ndarray | None = None

    def _before(self, a: str, b: str) -> bool:
        names = list(self.derived)
        return names.index(a) < names.index(b)

    @staticmethod
    def _number(v: Any, what: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{what} must be a number, got {v!r}")
        if isinstance(v, (int, np.integer)) and abs(int(v)) > MAX_EXACT_INT:
            raise ValueError(
                f"{what} is {int(v)}, past 2**53 in magnitude, where float64 numbers stop "
                "being exact integers"
            )
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"{what} must be finite, got {x}")
        return x

    # ------------------------------------------------------------------ built-ins
    @staticmethod
    def powers_of_two(lo: int, hi: int) -> list[int]:
        """The powers of two ``p`` with ``lo <= p <= hi``, e.g. ``powers_of_two(1, 256)``."""
        if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (lo, hi)):
            raise ValueError(f"powers_of_two: lo and hi must be integers, got {lo!r}, {hi!r}")
        if lo < 1 or hi < lo:
            raise ValueError(f"powers_of_two: need 1 <= lo <= hi, got lo={lo}, hi={hi}")
        out = [1 << k for k in range(int(hi).bit_length()) if lo <= (1 << k) <= hi]
        if not out:
            raise ValueError(f"powers_of_two: no power of two between {lo} and {hi}")
        return out

    @staticmethod
    def _value(v: Any, what: str, axis: str) -> str:
        """A number, or a per-value lookup ``{key: number}[axis]``, as expression text."""
        if isinstance(v, Mapping):
            if not v:
                raise ValueError(f"{what}: empty mapping")
            items = ", ".join(
                f"{k!r}: {ConfigSpace._number(x, f'{what}[{k!r}]')!r}" for k, x in v.items()
            )
            return f"{{{items}}}[{axis}]"
        return repr(ConfigSpace._number(v, what))

    @staticmethod
    def gpu_count(max_gpus: int | Mapping[str, int], *, gpu_axis: str = "gpu") -> str:
        """Constraint ``tp * pp <= max_gpus`` (a number, or one per GPU type of ``gpu_axis``)."""
        if not isinstance(max_gpus, Mapping) and (
            not isinstance(max_gpus, (int, np.integer)) or max_gpus < 1
        ):
            raise ValueError(f"max_gpus: must be a positive integer, got {max_gpus!r}")
        return f"tp * pp <= {ConfigSpace._value(max_gpus, 'max_gpus', gpu_axis)}"

    @staticmethod
    def divisible(
        *, heads: int | None = None, layers: int | None = None, kv_heads: int | None = None
    ) -> str:
        """Constraint that tensor parallelism divides the (KV) heads and pipeline the layers.

        ``divisible(heads=64, layers=80)`` is ``"64 % tp == 0 and 80 % pp == 0"``.
        """
        parts = []
        for name, n, by in (
            ("heads", heads, "tp"),
            ("kv_heads", kv_heads, "tp"),
            ("layers", layers, "pp"),
        ):
            if n is None:
                continue
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name}: must be a positive integer, got {n!r}")
            parts.append(f"{int(n)} % {by} == 0")
        if not parts:
            raise ValueError("divisible: give heads, kv_heads and/or layers")
        return " and ".join(parts)

    @staticmethod
    def memory_fit(
        *,
        weights_gb: float | Mapping[str, float],
        kv_gb_per_token: float | Mapping[str, float],
        gpu_mem_gb: float | Mapping[str, float],
        utilization: float = 0.9,
        activation_gb_per_token: float = 0.0,
        gpu_axis: str = "gpu",
        variant_axis: str = "quant",
    ) -> str:
        """Constraint that weights, KV cache and activations fit in GPU memory.

        Per GPU: ``weights_gb / (tp*pp)`` (tensor parallelism splits every layer, pipeline
        parallelism splits the layers) plus the KV cache of the whole batch at full length,
        ``kv_gb_per_token * batch * (input_len + output_len) / (tp*pp)``, plus prefill
        activations ``activation_gb_per_token * batch * input_len / tp``, at most
        ``gpu_mem_gb * utilization``. KV heads fewer than ``tp`` (replicated) are not modelled.

        Parameters
        ----------
        weights_gb, kv_gb_per_token : float or mapping
            Model size and KV cache per token (all layers), GB; a mapping gives one value per
            value of ``variant_axis`` (e.g. per quantisation).
        gpu_mem_gb : float or mapping
            Memory of one GPU, GB; a mapping ``{gpu_name: gb}`` gives one per value of
            ``gpu_axis`` (names absent from the axis are ignored).
        utilization : float
            Usable share of GPU memory, in (0, 1].
        activation_gb_per_token : float
            Peak prefill activations per prompt token, GB (0 to ignore).

        Returns
        -------
        str
            The constraint expression, for ``ConfigSpace(..., constraints=[...])``.
        """
        u = ConfigSpace._number(utilization, "utilization")
        if not 0 < u <= 1:
            raise ValueError(f"utilization: must be in (0, 1], got {u}")
        w = ConfigSpace._value(weights_gb, "weights_gb", variant_axis)
        kv = ConfigSpace._value(kv_gb_per_token, "kv_gb_per_token", variant_axis)
        mem = ConfigSpace._value(gpu_mem_gb, "gpu_mem_gb", gpu_axis)
        act = ConfigSpace._number(activation_gb_per_token, "activation_gb_per_token")
        for name, text in (("weights_gb", w), ("kv_gb_per_token", kv), ("gpu_mem_gb", mem)):
            if not text.startswith("{") and float(text) < 0:
                raise ValueError(f"{name}: must be non-negative, got {text}")
        if act < 0:
            raise ValueError(f"activation_gb_per_token: must be non-negative, got {act}")
        lhs = f"({w} + {kv} * batch * (input_len + output_len)) / (tp * pp)"
        if act > 0:
            lhs += f" + {act!r} * batch * input_len / tp"
        return f"{lhs} <= {mem} * {u!r}"

    # ------------------------------------------------------------------ explicit points
    @classmethod
    def from_rows(
        cls,
        rows: Any,
        constraints: Sequence[str] = (),
        *,
        fixed: Mapping[str, float] | None = None,
        derived: Mapping[str, str] | None = None,
        model_axis: str | None = None,
        n_threads: int = 0,
    ) -> ConfigSpace:
        """A space over an explicit list of candidate configurations.

        For deployments whose valid configurations are a list (what the cluster offers, what
        was benchmarked) rather than a Cartesian product. Every column is an axis whose values
        are the column's distinct values; the points are the rows, in their order: point
        ``i`` is row ``i`` (``Selection.index``, the frames' index and tie-breaks follow the
        row order). Every query, ``slo=``, ``confidence=``, ``scorers=`` and the
        :class:`~energycore.space.selector.Selector` work as on a Cartesian space, and answer
        as that space filtered to these rows would; the C++ engine walks the rows.

        Parameters
        ----------
        rows : DataFrame, mapping of str to sequence, or structured / named array
            One column per axis (``tp``, ``pp``, ``batch``, ``gpu`` ...): numbers, strings
            (categorical) or booleans, all of one length. A 2-D array needs names: a numpy
            structured array, or ``(array, names)``.
        constraints, fixed, derived, model_axis, n_threads
            As in :class:`ConfigSpace`; constraints may remove rows too.

        Notes
        -----
        An ``n_gpus`` column gives the GPUs that serve each row when they are not ``tp * pp``
        (expert- or data-parallel serving, as ML.ENERGY runs its MoE models). It must be a
        positive integer, a multiple of ``pp`` and at least ``tp * pp``. The space then has an
        axis ``gpus_per_stage = n_gpus / pp`` next to it, which the models read as ``tp``, so
        their per-GPU terms count the GPUs that draw power, as a model fitted with an
        ``n_gpus`` column does (:func:`energycore._util.columns.as_model_features`).

        Raises
        ------
        ValueError
            Naming the column (and row): no rows, a non-finite or missing value, a column of
            mixed or unsupported types (dates, complex, objects), columns of unequal length,
            a name that is not an identifier or is a score (``energy_j``, ``tpot_s`` ...),
            or a **duplicate row** (refused: it would be counted and scored twice; drop it,
            e.g. ``frame.drop_duplicates()``).

        Examples
        --------
        >>> space = ConfigSpace.from_rows(
        ...     {"tp": [1, 2, 4, 8], "pp": [1, 1, 1, 2], "batch": [64, 128, 256, 256]})
        >>> space.size, space.count_valid()
        (4, 4)
        """
        columns = _columns_of(rows)
        gpu_axes = N_GPUS in columns
        if gpu_axes:
            columns = _with_gpus_per_stage(columns)
        axes: dict[str, list[Any]] = {}
        digits: list[np.ndarray] = []
        n = -1
        for name, col in columns.items():
            if not (gpu_axes and name in (N_GPUS, GPUS_PER_STAGE)):
                check_name(name, "rows")
            values, codes = _axis_of(name, col)
            if n < 0:
                n = len(codes)
            elif len(codes) != n:
                raise ValueError(
                    f"rows: column {name!r} has {len(codes)} values, the first column {n}"
                )
            axes[name] = values
            digits.append(codes)
        if n <= 0:
            raise ValueError("rows: no rows; give at least one configuration")
        D = np.ascontiguousarray(np.column_stack(digits), dtype=np.int64)
        _refuse_duplicates(D, list(axes))
        space = cls.__new__(cls)
        space._setup(axes, constraints, fixed, derived, model_axis, n_threads, gpu_axes=gpu_axes)
        space._rows = D
        space._size = n
        return space

    @property
    def explicit(self) -> bool:
        """True for a space over explicit rows (:meth:`from_rows`)."""
        return self._rows is not None

    # ------------------------------------------------------------------ properties
    @property
    def size(self) -> int:
        """Number of points: of the cross product of the axes, or the rows of a space made by
        :meth:`from_rows` (valid or not)."""
        return self._size

    @property
    def names(self) -> list[str]:
        """Axis names, in enumeration order (the last varies fastest)."""
        return [a.name for a in self.axes]

    def __repr__(self) -> str:
        axes = ", ".join(f"{a.name}[{len(a.values)}]" for a in self.axes)
        cons = "; ".join(str(c) for c in self.constraints) or "none"
        what = "rows" if self.explicit else "points"
        return f"ConfigSpace({axes}; {self.size} {what}; constraints: {cons})"

    # ------------------------------------------------------------------ slots and engine
    def _slots(self, *, with_objectives: bool = True) -> Slots:
        slot: dict[str, int] = {}
        for i, a in enumerate(self.axes):
            slot[a.name] = i
        for p in self._params:
            slot[p] = len(slot)
        for d in self.derived:
            slot[d] = len(slot)
        if with_objectives:
            for o in OBJECTIVES:
                slot[o] = len(slot)
        return Slots(slot, {a.name: a.values for a in self.axes})

    def _param_values(self, workload: Mapping[str, Any]) -> dict[str, float]:
        vals = dict(self._defaults)
        for k, v in workload.items():
            if k in self._axis_index:
                raise ValueError(
                    f"{k}: is an axis of this space; restrict it with where=... instead"
                )
            if k not in vals:
                hint = difflib.get_close_matches(k, list(vals), n=1, cutoff=0.6)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ValueError(
                    f"{k}: not a fixed value of this space{extra}; fixed values: "
                    f"{', '.join(vals) or 'none'} (declare new ones with fixed={{...}})"
                )
            x = self._number(v, k)
            if k in FEATURES and x < 0:
                raise ValueError(f"{k}: must be non-negative, got {x}")
            vals[k] = x
        return vals

    def _modelset(self, models: Any, params: Mapping[str, float] | None = None) -> ModelSet:
        if models is None:
            return ModelSet()
        # fixed values a discovered model may use as variables (folded into its coefficients)
        consts = {k: v for k, v in (params or {}).items() if k not in FEATURES}
        if isinstance(models, Mapping):
            if self.model_axis is None:
                raise ValueError(
                    "models: a mapping needs a categorical model axis (model_axis=...)"
                )
            cats = self.axes[self._axis_index[self.model_axis]].values
            unknown = [k for k in models if k not in cats]
            if unknown:
                raise ValueError(
                    f"models: {unknown[0]!r} is not a value of axis {self.model_axis!r} "
                    f"(values: {', '.join(map(str, cats))})"
                )
            per = {
                c: collect(models[c], f"for {self.model_axis}={c!r}", consts)
                for c in cats
                if c in models
            }
            missing = [c for c in cats if c not in per]
            if missing:
                raise ValueError(f"models: no model for {self.model_axis}={missing[0]!r}")
            kinds = {c: set(p) for c, p in per.items()}
            first = kinds[cats[0]]
            for c in cats:
                if kinds[c] != first:
                    raise ValueError(
                        f"models: {self.model_axis}={c!r} has {sorted(kinds[c])} models but "
                        f"{cats[0]!r} has {sorted(first)}; give every value the same kinds"
                    )
            out: dict[str, Any] = {}
            maps: dict[str, list[np.ndarray]] = {}
            for kind in first:
                tmpl, thetas, pmap = merge(kind, [per[c][kind][:2] for c in cats])
                out[kind] = (tmpl, thetas)
                if pmap is not None:
                    maps[kind] = pmap
            objs = {kind: [per[c][kind][2] for c in cats] for kind in first}
            return ModelSet(
                out.get("energy"), out.get("ttft"), out.get("tpot"), keyed=True, objects=objs,
                param_maps=maps, param_scales=scales(objs, consts),
            )  # fmt: skip
        got = collect(models, "given", consts)
        parts = {k: (v[0], [v[1]]) for k, v in got.items()}
        objs = {k: [v[2]] for k, v in got.items()}
        return ModelSet(
            parts.get("energy"), parts.get("ttft"), parts.get("tpot"), objects=objs,
            param_scales=scales(objs, consts),
        )  # fmt: skip

    def _query(
        self, models: Any, workload: Mapping[str, Any], confidence: float | None = None
    ) -> _Query:
        params = self._param_values(workload)
        mset = models if isinstance(models, ModelSet) else self._modelset(models, params)
        if confidence is not None or mset.confidence is not None:
            mset = mset.with_confidence(confidence)
        key = (tuple(params.items()), mset.fingerprint())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        slots = self._slots()
        derived = [e.compile(slots) for e in self.derived.values()]
        constraints = [c.compile(slots) for c in self.constraints]
        if mset.kinds:
            self._check_features(params)
        self._check_params(params, slots, [*derived, *constraints])
        feature_slot = [slots.slot[self._model_tp if f == "tp" else f] for f in FEATURES]
        key_axis = self._axis_index[self.model_axis] if mset.keyed and self.model_axis else -1
        engine = _core.SpaceEngine(
            [a.codes() for a in self.axes],
            [params[p] for p in self._params],
            derived,
            constraints,
            feature_slot,
            key_axis,
            *mset.engine_parts(),
            self.n_threads,
            *mset.engine_bounds(),
            self._rows,
            energy_bound=mset.energy_bound(),
        )
        q = _Query(engine, slots, params, mset)
        self._cache = (key, q)
        return q

    def _check_features(self, params: Mapping[str, float]) -> None:
        """The model features must be valid model inputs: tp, pp, batch positive, lengths >= 0."""
        for f in FEATURES:
            if f in params:
                if math.isnan(params[f]):
                    raise ValueError(
                        f"{f}: the models need it but it is neither an axis nor given; pass "
                        f"{f}=... (a fixed workload value)"
                    )
                values: tuple[Any, ...] = (params[f],)
            else:
                axis = self.axes[self._axis_index[f]]
                if axis.kind not in ("int", "float"):
                    raise ValueError(f"axes: axis {f!r} must be numeric to feed the models")
                values = axis.values
            for v in values:
                if (f in ("tp", "pp", "batch") and not v > 0) or v < 0:
                    need = "positive" if f in ("tp", "pp", "batch") else "non-negative"
                    raise ValueError(f"{f}: the models need {need} values, got {v}")
                if v > FEATURE_MAX[f]:
                    raise ValueError(
                        f"{f}: {v:g} is past the physical bound {FEATURE_MAX[f]:g} of the "
                        "models (energycore._util.columns.FEATURE_MAX)"
                    )

    def _check_params(
        self, params: Mapping[str, float], slots: Slots, codes: Sequence[Code]
    ) -> None:
        missing = {slots.slot[p]: p for p, v in params.items() if math.isnan(v)}
        for code in codes:
            for op, arg, _ in code:
                if op in (OP["load"], OP["lookup"]) and arg in missing:
                    p = missing[arg]
                    raise ValueError(
                        f"{p}: used by a constraint or expression but neither an axis nor given; "
                        f"pass {p}=... (a fixed workload value)"
                    )

    def _objective(self, q: _Query, name: str, what: str = "objective") -> int:
        if not isinstance(name, str):
            raise ValueError(f"{what}: expected a column name, got {name!r}")
        if name not in q.slots.slot:
            known = list(q.slots.slot)
            hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(f"{what}: unknown column {name!r}{extra}; columns: {', '.join(known)}")
        need = _NEEDS.get(name, ())
        for kind in need:
            if kind not in q.models.kinds and kind in q.models.bound_errors:
                raise ValueError(q.models.bound_errors[kind])  # a model without uncertainty
            if kind not in q.models.kinds:
                raise ValueError(
                    f"{what}: {name!r} needs a fitted {kind} model; pass models=... "
                    f"(an {_MODEL_OF[kind]})"
                )
        if name in self.axes_by_kind("category"):
            raise ValueError(f"{what}: {name!r} is categorical and cannot be ranked")
        if name in q.params and math.isnan(q.params[name]):
            raise ValueError(f"{what}: {name!r} is not given; pass {name}=...")
        return q.slots.slot[name]

    def axes_by_kind(self, kind: str) -> list[str]:
        """Names of the axes of one kind ("int", "float", "bool", "category")."""
        return [a.name for a in self.axes if a.kind == kind]

    def _split_slo(self, slo: Any, workload: dict[str, Any]) -> Any:
        """``slo=`` is an SLO, a mapping or None; a number is the fixed value named ``slo``
        of a space that declares one (as before the SLO keyword existed)."""
        if slo is not None and not isinstance(slo, (SLO, Mapping)) and "slo" in self._params:
            workload["slo"] = slo
            return None
        return slo

    def _slo(self, q: _Query, slo: Any, models: Any) -> SloParts | None:
        """The SLO of a query compiled against its models (``None`` for no SLO)."""
        s = SLO.make(slo)
        if s is None or s.empty:
            return None
        axis = values = None
        if q.models.keyed and self.model_axis is not None:
            axis = self.model_axis
            values = [str(v) for v in self.axes[self._axis_index[axis]].values]
        return slo_parts(
            s, models, q.models.kinds, model_axis=axis, axis_values=values,
            confidence=q.models.confidence,
        )  # fmt: skip

    @staticmethod
    def _and(where: str | None, terms: Sequence[str]) -> str | None:
        """``where`` and every term, each parenthesised (``None`` when there is nothing)."""
        parts = ([where] if where is not None else []) + list(terms)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return " and ".join(f"({p})" for p in parts)

    def _where_slo(self, q: _Query, where: str | None, slo: Any, models: Any) -> Code:
        parts = self._slo(q, slo, models)
        return self._where(q, self._and(where, parts.where_terms() if parts else []))

    def _where(self, q: _Query, where: str | None) -> Code:
        if where is None:
            return []
        expr = Expression(where, what="where")
        for name in expr.names:  # a bound column of a model without uncertainty: say why
            for kind in _NEEDS.get(name, ()):
                if kind not in q.models.kinds and kind in q.models.bound_errors:
                    raise ValueError(q.models.bound_errors[kind])
        known = [n for n in q.slots.slot if n not in _NEEDS or set(_NEEDS[n]) <= q.models.kinds]
        expr.check_names(known, detail="scores need their models")
        code = expr.compile(q.slots)
        self._check_params(q.params, q.slots, [code])
        return code

    # ------------------------------------------------------------------ output
    def _columns(
        self, q: _Query, idx: np.ndarray, override: Mapping[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        params = {**q.params, **(override or {})}
        values = [params[p] for p in self._params] if override else None
        R = q.engine.rows(np.ascontiguousarray(idx, dtype=np.int64), values)
        out: dict[str, np.ndarray] = {}
        for i, a in enumerate(self.axes):
            out[a.name] = a.decode(np.ascontiguousarray(R[:, i]))
        for p in self._params:
            if not math.isnan(params[p]):
                out[p] = np.ascontiguousarray(R[:, q.slots.slot[p]])
        for d in self.derived:
            col = np.ascontiguousarray(R[:, q.slots.slot[d]])
            out[d] = col.astype(np.int64) if d == "n_gpus" else col
        for o in OBJECTIVES:
            if set(_NEEDS[o]) <= q.models.kinds:
                out[o] = np.ascontiguousarray(R[:, q.slots.slot[o]])
        return out

    def _row_of(
        self,
        q: _Query,
        scorers: Mapping[str, _scorers.Scorer] | None = None,
        override: Mapping[str, float] | None = None,
    ) -> Callable[[int], dict[str, Any]]:
        """A function giving the columns of one point (fixed values overridden if asked)."""

        def row(i: int) -> dict[str, Any]:
            idx = np.array([i], dtype=np.int64)
            if override:
                cols = self._columns(q, idx, override)
            else:
                cols = self._scored(q, idx, scorers or {})
            out: dict[str, Any] = {}
            for k, v in cols.items():
                x = v[0]
                out[k] = x.item() if hasattr(x, "item") else x
            return out

        return row

    def _scored(
        self, q: _Query, idx: np.ndarray, scorers: Mapping[str, _scorers.Scorer]
    ) -> dict[str, np.ndarray]:
        if not scorers:
            return self._columns(q, idx)
        return _scorers.score(lambda i: self._columns(q, i), idx, scorers)

    def _values(
        self,
        q: _Query,
        cols: dict[str, np.ndarray],
        name: str,
        what: str,
        scorers: Mapping[str, Any],
    ) -> np.ndarray:
        """A numeric column for ranking or limits: a scorer's, or one the engine has."""
        if name in scorers:
            return cols[name]
        self._objective(q, name, what=what)
        return np.asarray(cols[name], dtype=np.float64)

    @staticmethod
    def _frame(cols: dict[str, np.ndarray], idx: np.ndarray, as_frame: bool) -> Any:
        if not as_frame:
            return {"index": np.asarray(idx, dtype=np.int64), **cols}
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is installed in the test environment
            raise ImportError(
                "pandas is needed for a DataFrame; pass as_frame=False for a dict of arrays"
            ) from None
        frame = pd.DataFrame(cols, index=pd.Index(np.asarray(idx, dtype=np.int64), name="point"))
        return frame

    # ------------------------------------------------------------------ queries
    def count_valid(
        self,
        where: str | None = None,
        *,
        models: Any = None,
        slo: SLO | Mapping[str, Any] | None = None,
        confidence: float | None = None,
        **workload: float,
    ) -> int:
        """Number of points satisfying every constraint (and ``where``, if given).

        Parameters
        ----------
        where : str, optional
            An extra expression, which may use scores when ``models`` are given.
        models : optional
            Fitted models (see the module docstring).
        slo : SLO or mapping, optional
            Serving limits (TTFT, TPOT/ITL, mean or percentile, request rate; see
            :class:`~energycore.space.slo.SLO`), applied like ``where``.
        confidence : float, optional
            ``None`` (default): limits judge the point predictions. A number in (0, 1): the
            SLO's latency limits and request rate judge the upper bounds of the predictions at
            that one-sided confidence (:mod:`energycore.space.uncertainty`), and the bound
            columns ``ttft_upper_s``, ``tpot_upper_s``, ``latency_upper_s`` (and, with an
            energy model, ``energy_upper_j`` and ``power_upper_w``) exist.
        **workload : float
            Fixed values, e.g. ``input_len=512``.
        """
        slo = self._split_slo(slo, workload)
        q = self._query(models, workload, check_confidence(confidence))
        return int(q.engine.count_valid(self._where_slo(q, where, slo, models)))

    def to_frame(
        self,
        limit: int | None = 100_000,
        *,
        where: str | None = None,
        models: Any = None,
        as_frame: bool = True,
        scorers: Mapping[str, _scorers.Scorer] | None = None,
        slo: SLO | Mapping[str, Any] | None = None,
        confidence: float | None = None,
        **workload: float,
    ) -> Any:
        """The first ``limit`` valid points in enumeration order, with their columns and scores.

        Parameters
        ----------
        limit : int or None
            At most this many rows (``None``: all valid points; mind the memory).
        where, models, slo, confidence, **workload
            As in :meth:`count_valid`.
        as_frame : bool
            A pandas DataFrame indexed by point number (default) or a dict of numpy arrays
            (with an ``index`` entry).
        scorers : mapping of str to callable, optional
            Extra columns: each callable gets a dict of the columns of a batch of valid points
            (up to 65536) and returns one number per point.
        """
        if limit is None:
            limit = self.size
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
            raise ValueError(f"limit: must be a non-negative integer or None, got {limit!r}")
        slo = self._split_slo(slo, workload)
        q = self._query(models, workload, check_confidence(confidence))
        sc = _scorers.check_scorers(scorers, list(q.slots.slot))
        idx = q.engine.valid_indices(int(limit), self._where_slo(q, where, slo, models))
        return self._frame(self._scored(q, idx, sc), idx, as_frame)

    def top_k(
        self,
        objective: str,
        k: int = 10,
        *,
        where: str | None = None,
        models: Any = None,
        maximize: bool = False,
        as_frame: bool = True,
        scorers: Mapping[str, _scorers.Scorer] | None = None,
        slo: SLO | Mapping[str, Any] | None = None,
        confidence: float | None = None,
        **workload: float,
    ) -> Any:
        """The ``k`` valid points with the smallest (``maximize``: largest) ``objective``.

        Ties go to the earlier point in enumeration order. With ``scorers``, the objective may
        be a scorer column (every valid point is then scored, in batches). ``slo`` limits
        filter like ``where`` (on the upper bounds with ``confidence``). Other parameters as
        in :meth:`to_frame`.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k: must be a positive integer, got {k!r}")
        slo = self._split_slo(slo, workload)
        q = self._query(models, workload, check_confidence(confidence))
        sc = _scorers.check_scorers(scorers, list(q.slots.slot))
        code = self._where_slo(q, where, slo, models)
        if sc:
            idx = q.engine.valid_indices(self.size, code)
            cols = self._scored(q, idx, sc)
            pos = _scorers.top_k(
                idx, self._values(q, cols, objective, "objective", sc), int(k), bool(maximize)
            )
            return self._frame({c: v[pos] for c, v in cols.items()}, idx[pos], as_frame)
        slot = self._objective(q, objective)
        idx = q.engine.top_k(slot, bool(maximize), int(k), code)
        return self._frame(self._columns(q, idx), idx, as_frame)

    @staticmethod
    def _limit_items(
        subject_to: Mapping[str, Any] | None, parts: SloParts | None, bounded: bool = False
    ) -> list[tuple[str, Any]]:
        """(name, (op, value)) of the explicit limits, then those of the SLO. ``bounded``:
        upper limits on latency scores move onto their upper-bound columns."""
        if subject_to is not None and not isinstance(subject_to, Mapping):
            raise ValueError(
                "subject_to: expected a mapping like {'latency_s': ('<=', 2.0)}, got "
                f"{type(subject_to).__name__}"
            )
        items = list((subject_to or {}).items())
        if bounded:
            items = [
                (UPPER_OF[name], spec)
                if name in UPPER_OF
                and isinstance(spec, (tuple, list))
                and len(spec) == 2
                and spec[0] in ("<=", "<")
                else (name, spec)
                for name, spec in items
            ]
        if parts is not None:
            items += [(c, (op, v)) for c, op, v in parts.limits]
        return items

    def _limits(self, q: _Query, items: Sequence[tuple[str, Any]]) -> list[tuple[int, int, float]]:
        out = []
        for name, spec in items:
            slot = self._objective(q, name, what=f"subject_to[{name!r}]")
            if not (isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] in _OPS):
                raise ValueError(
                    f"subject_to[{name!r}]: expected (op, value) with op one of "
                    f"{', '.join(_OPS)}, got {spec!r}"
                )
            out.append((slot, _OPS[spec[0]], self._number(spec[1], f"subject_to[{name!r}] value")))
        return out

    def argmin(
        self,
        objective: str,
        subject_to: Mapping[str, tuple[str, float]] | None = None,
        *,
        where: str | None = None,
        models: Any = None,
        maximize: bool = False,
        scorers: Mapping[str, _scorers.Scorer] | None = None,
        slo: SLO | Mapping[str, Any] | None = None,
        confidence: float | None = None,
        **workload: float,
    ) -> Selection:
        """The valid point with the smallest ``objective`` meeting every limit.

        Parameters
        ----------
        objective : str
            A score (``energy_j``, ``energy_per_request_j``, ``latency_s``, ``power_w`` ...) or
            a numeric column.
        subject_to : mapping, optional
            Limits ``{name: (op, value)}``, op one of ``<=, <, >=, >, ==``, e.g.
            ``{"latency_s": ("<=", 2.0), "power_w": ("<=", 5600)}``.
        where, models, **workload
            As in :meth:`count_valid`.
        maximize : bool
            Take the largest value instead.
        scorers : mapping of str to callable, optional
            Extra columns (see :meth:`to_frame`) that the objective and the limits may use.
        slo : SLO or mapping, optional
            Serving limits (see :class:`~energycore.space.slo.SLO`): TTFT and TPOT/ITL limits
            join ``subject_to`` (moved onto the mean prediction for a percentile); the
            request rate filters like ``where``.
        confidence : float, optional
            ``None`` (default): limits judge the point predictions. A number in (0, 1): upper
            limits (``<=``, ``<``) on ``ttft_s``, ``tpot_s``, ``latency_s`` and ``power_w``,
            and the SLO's, judge the upper bound of the prediction at that one-sided
            confidence instead (``power_upper_w`` for a power cap: the energy and latency
            models' uncertainties combined), so a configuration is kept only when its bound
            meets the limit (formulas and the composition with SLO percentiles:
            :mod:`energycore.space.uncertainty`). Other limits (energy, lower limits) keep the
            point prediction.

        Returns
        -------
        Selection
            Never raises for infeasible limits: ``feasible`` is False and ``nearest`` is the
            valid point that misses the limits by the least total relative amount. Ties go to
            the earlier point in enumeration order.
        """
        slo = self._split_slo(slo, workload)
        conf = check_confidence(confidence)
        q = self._query(models, workload, conf)
        sc = _scorers.check_scorers(scorers, list(q.slots.slot))
        parts = self._slo(q, slo, models)
        items = self._limit_items(subject_to, parts, bounded=conf is not None)
        where = self._and(where, parts.filters if parts else [])
        if sc:
            r = self._argmin_scored(q, objective, items, where, bool(maximize), sc)
        else:
            slot = self._objective(q, objective)
            limits = self._limits(q, items)
            r = q.engine.argmin(slot, bool(maximize), limits, self._where(q, where))
        return Selection(
            bool(r["feasible"]),
            objective,
            float(r["objective"]),
            int(r["index"]),
            int(r["nearest"]),
            float(r["violation"]),
            int(r["n_valid"]),
            int(r["n_feasible"]),
            self._row_of(q, sc),
        )

    def _argmin_scored(
        self,
        q: _Query,
        objective: str,
        items: Sequence[tuple[str, Any]],
        where: str | None,
        maximize: bool,
        sc: Mapping[str, _scorers.Scorer],
    ) -> dict[str, Any]:
        idx = q.engine.valid_indices(self.size, self._where(q, where))
        cols = self._scored(q, idx, sc)
        values = self._values(q, cols, objective, "objective", sc)
        limits = []
        for name, spec in items:
            what = f"subject_to[{name!r}]"
            v = self._values(q, cols, name, what, sc)
            if not (isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] in _OPS):
                raise ValueError(
                    f"{what}: expected (op, value) with op one of {', '.join(_OPS)}, got {spec!r}"
                )
            limits.append((v, _OPS[spec[0]], self._number(spec[1], f"{what} value")))
        return _scorers.argmin(idx, values, maximize, limits)

    def pareto_front(
        self,
        objectives: Sequence[str],
        *,
        where: str | None = None,
        models: Any = None,
        maximize: Sequence[str] = (),
        as_frame: bool = True,
        slo: SLO | Mapping[str, Any] | None = None,
        confidence: float | None = None,
        **workload: float,
    ) -> Any:
        """The valid points not dominated in ``objectives`` (all minimised unless named in
        ``maximize``), sorted by the first objective.

        A point is dominated when another is no worse in every objective and better in one;
        points with equal objectives are all kept. ``slo`` limits filter like ``where`` (on
        the upper bounds with ``confidence``). Other parameters as in :meth:`to_frame`.
        """
        if isinstance(objectives, str) or not objectives:
            raise ValueError("objectives: expected a non-empty list of column names")
        if len(set(objectives)) != len(objectives):
            raise ValueError(f"objectives: repeated names in {list(objectives)}")
        bad = [m for m in maximize if m not in objectives]
        if bad:
            raise ValueError(f"maximize: {bad[0]!r} is not one of the objectives")
        slo = self._split_slo(slo, workload)
        q = self._query(models, workload, check_confidence(confidence))
        slots = [self._objective(q, o) for o in objectives]
        flags = [o in maximize for o in objectives]
        idx = q.engine.pareto(slots, flags, self._where_slo(q, where, slo, models))
        return self._frame(self._columns(q, idx), idx, as_frame)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the space (versioned); a space over explicit rows
        lists them (``"rows"``, one list of values per axis)."""
        out = {
            "format": "energycore.space",
            "format_version": FORMAT_VERSION,
            "axes": [{"name": a.name, "kind": a.kind, "values": list(a.values)} for a in self.axes],
            "constraints": [c.source for c in self.constraints],
            "fixed": dict(self.fixed),
            "derived": {k: e.source for k, e in self.derived.items() if k != N_GPUS},
            "model_axis": self.model_axis,
        }
        if self._rows is not None:
            out["rows"] = {
                a.name: [a.values[int(k)] for k in self._rows[:, j]]
                for j, a in enumerate(self.axes)
            }
        return out

    def to_json(self) -> str:
        """The space as versioned JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: Any) -> ConfigSpace:
        """Rebuild a space from :meth:`to_dict` output; ``ValueError`` on anything malformed."""
        check_format(d, "energycore.space", FORMAT_VERSION, "space file", "an energycore space")
        try:
            axes = {}
            for a in d["axes"]:
                vals = a["values"]
                if a["kind"] == "float":
                    vals = [float(v) for v in vals]
                axes[a["name"]] = vals
            if d.get("rows") is not None:
                return cls.from_rows(
                    d["rows"],
                    constraints=list(d.get("constraints", [])),
                    fixed=d.get("fixed") or None,
                    derived=d.get("derived") or None,
                    model_axis=d.get("model_axis"),
                )
            return cls(
                axes,
                constraints=list(d.get("constraints", [])),
                fixed=d.get("fixed") or None,
                derived=d.get("derived") or None,
                model_axis=d.get("model_axis"),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"space file: malformed content ({type(e).__name__}: {e})") from None

    @classmethod
    def from_json(cls, text: str) -> ConfigSpace:
        """Read a space written by :meth:`to_json`."""
        return cls.from_dict(parse_json(text, "space file"))

    def save(self, path: str | Path) -> None:
        """Write the space as versioned JSON."""
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ConfigSpace:
        """Read a space written by :meth:`save`; ``ValueError`` for unreadable or bad files."""
        return cls.from_dict(read_json(path, "space file"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigSpace) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------------------- from_rows input
#: The axis :meth:`ConfigSpace.from_rows` adds beside an ``n_gpus`` column: the GPUs per
#: pipeline stage, ``n_gpus / pp``, which the models' per-GPU terms read as ``tp``.
GPUS_PER_STAGE = "gpus_per_stage"


def _columns_of(rows: Any) -> dict[str, Any]:
    """The columns of a DataFrame, mapping, structured array or ``(2-D array, names)``."""
    if isinstance(rows, tuple) and len(rows) == 2 and not isinstance(rows[1], (int, float)):
        arr, names = np.asarray(rows[0]), list(rows[1])
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ValueError(
                f"rows: a 2-D array of shape (n, {len(names)}) is needed for {len(names)} "
                f"names, got shape {arr.shape}"
            )
        return {str(k): arr[:, j] for j, k in enumerate(names)}
    if isinstance(rows, np.ndarray):
        if rows.dtype.names:
            return {k: rows[k] for k in rows.dtype.names}
        raise ValueError(
            "rows: a plain array has no column names; pass a structured array, a DataFrame, "
            "a dict of columns or (array, names)"
        )
    if hasattr(rows, "columns") and hasattr(rows, "__getitem__"):  # a DataFrame
        return {k: np.asarray(rows[k]) for k in rows.columns}
    if isinstance(rows, Mapping):
        if not rows:
            raise ValueError("rows: no columns")
        return dict(rows)
    raise ValueError(
        f"rows: expected a DataFrame, a mapping of columns or a structured array, got "
        f"{type(rows).__name__}"
    )


def _with_gpus_per_stage(columns: dict[str, Any]) -> dict[str, Any]:
    """The columns with ``gpus_per_stage = n_gpus / pp`` added (or checked, when given, as in
    a saved space); ``ValueError`` naming the row of an ``n_gpus`` that is not a positive
    integer, a multiple of ``pp`` and at least ``tp * pp``."""
    n = len(columns[N_GPUS]) if np.ndim(columns[N_GPUS]) == 1 else -1
    if n < 0:
        raise ValueError(f"rows: column {N_GPUS!r} must be one-dimensional")

    def numbers(name: str) -> np.ndarray:
        if name not in columns:
            return np.ones(n)
        col = columns[name]
        try:
            a = np.asarray(col, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"rows: column {name!r} must be numeric with {N_GPUS!r}") from None
        if a.shape != (n,):
            raise ValueError(f"rows: column {name!r} has {a.size} values, {N_GPUS!r} {n}")
        bad = np.flatnonzero(~np.isfinite(a) | (a <= 0))
        if len(bad):
            i = int(bad[0])
            raise ValueError(f"rows: column {name!r} row {i}: {a[i]:g} is not a positive number")
        return a

    per_stage = gpus_per_stage(numbers(N_GPUS), numbers("tp"), numbers("pp"), what="rows")
    if GPUS_PER_STAGE in columns:
        given = numbers(GPUS_PER_STAGE)
        if not np.array_equal(given, per_stage):
            i = int(np.flatnonzero(given != per_stage)[0])
            raise ValueError(
                f"rows: {GPUS_PER_STAGE!r} is n_gpus / pp, got {given[i]:g} at row {i} "
                f"(n_gpus / pp = {per_stage[i]:g}); leave the column out"
            )
    out = dict(columns)
    out[GPUS_PER_STAGE] = per_stage.astype(np.int64)
    return out


def _axis_of(name: str, col: Any) -> tuple[list[Any], np.ndarray]:
    """(distinct values, each row's position among them) of one column; ``ValueError``
    naming the column and row of a bad value."""
    if isinstance(col, (str, bytes)) or np.ndim(col) != 1:
        raise ValueError(f"rows: column {name!r} must be one-dimensional")
    # A list keeps its items' types (numpy would turn [1, "2"] into two strings).
    a = np.asarray(col, dtype=object) if isinstance(col, (list, tuple)) else np.asarray(col)
    if a.dtype.kind == "b":
        vals, codes = np.unique(a, return_inverse=True)
        return [bool(v) for v in vals], codes.astype(np.int64)
    if a.dtype.kind in "iu":
        big = np.flatnonzero(np.abs(a.astype(np.float64)) > MAX_EXACT_INT)
        if len(big):
            raise ValueError(f"rows: column {name!r} row {int(big[0])}: {a[big[0]]} is past 2**53")
        vals, codes = np.unique(a, return_inverse=True)
        return [int(v) for v in vals], codes.astype(np.int64)
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(a))
        if len(bad):
            raise ValueError(
                f"rows: column {name!r} row {int(bad[0])}: {a[bad[0]]} is not a finite number"
            )
        vals, codes = np.unique(a, return_inverse=True)
        return [float(v) for v in vals], codes.astype(np.int64)
    if a.dtype.kind in "US":
        a = a.astype(object)
    if a.dtype.kind == "O":
        items = a.tolist()
        types = set(map(type, items))
        if types == {str}:
            # distinct values in order of first appearance, each row's position among them
            u = np.asarray(items, dtype=str)
            vals, first, inv = np.unique(u, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            return [str(v) for v in vals[order]], rank[inv.reshape(-1)]
        if items and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items
        ):
            return _axis_of(name, np.asarray(items, dtype=np.int64))
        if all(
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_))
            for v in items
        ):
            return _axis_of(name, np.asarray(items, dtype=np.float64))
        if all(isinstance(v, (bool, np.bool_)) for v in items):
            return _axis_of(name, np.asarray(items, dtype=bool))
        kind0 = type(items[0])
        j = next((i for i, v in enumerate(items) if v is None or type(v) is not kind0), 0)
        raise ValueError(
            f"rows: column {name!r} row {j}: {items[j]!r} ({type(items[j]).__name__}); a "
            "column holds numbers, strings or booleans, all of one kind, with no missing values"
        )
    raise ValueError(
        f"rows: column {name!r} has unsupported type {a.dtype} (row 0: {a[0]!r}); use "
        "numbers, strings or booleans"
    )


def _refuse_duplicates(D: np.ndarray, names: Sequence[str]) -> None:
    """``ValueError`` naming the first row that repeats an earlier one."""
    sizes = D.max(axis=0).astype(np.float64) + 1
    if float(np.prod(sizes)) < 2.0**62:  # one int64 key per row: sort those
        key = np.zeros(len(D), dtype=np.int64)
        for j in range(D.shape[1]):
            key = key * int(sizes[j]) + D[:, j]
        k = np.sort(key)
        if not (k[1:] == k[:-1]).any():
            return
    else:
        _, counts = np.unique(D, axis=0, return_counts=True)
        if (counts == 1).all():
            return
    seen: dict[bytes, int] = {}
    for i, row in enumerate(D):
        key = row.tobytes()
        if key in seen:
            cols = ", ".join(f"{n}" for n in names)
            raise ValueError(
                f"rows: row {i} repeats row {seen[key]} (same {cols}); duplicates are refused "
                "(they would be counted and scored twice): drop them, e.g. "
                "frame.drop_duplicates()"
            )
        seen[key] = i
