"""Fitted models attached to a space query: their template coefficients, by kind and key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from energycore.space.uncertainty import bound_of

__all__ = ["ModelSet", "collect"]

#: Engine argument of a bounded latency half: ([z^2 cov per key], [z^2 resid_var per key], sign z)
BoundArgs = tuple[list[np.ndarray], list[float], float]
#: The model kinds each length-monotone objective is computed from (Selector pruning).
_KINDS_OF: dict[str, tuple[str, ...]] = {
    "energy_j": ("energy",),
    "energy_per_request_j": ("energy",),
    "ttft_s": ("ttft",),
    "tpot_s": ("tpot",),
    "latency_s": ("ttft", "tpot"),
}


@dataclass(frozen=True)
class ModelSet:
    """Coefficients per model kind: (template, [theta]) with one theta per key or one for all.

    ``objects`` holds the fitted model objects per kind (in the order of the thetas), for
    :meth:`with_confidence`; ``bounds`` the engine arguments of the upper bounds (latency
    halves and energy); ``bound_errors`` why a kind could not be bounded (an energy model
    without recorded uncertainty: raised only when a query needs its bound).
    """

    energy: tuple[Any, list[np.ndarray]] | None = None
    ttft: tuple[Any, list[np.ndarray]] | None = None
    tpot: tuple[Any, list[np.ndarray]] | None = None
    keyed: bool = False
    objects: dict[str, list[Any]] = field(default_factory=dict, compare=False)
    confidence: float | None = None
    bounds: dict[str, BoundArgs] = field(default_factory=dict, compare=False)
    bound_errors: dict[str, str] = field(default_factory=dict, compare=False)
    #: Per kind, per object: positions of its parameters in a merged term-sum template (keyed
    #: discovered models of different structures, see :func:`merge`); absent: the identity.
    param_maps: dict[str, list[np.ndarray]] = field(default_factory=dict, compare=False)
    #: Per kind, per object: the factor of each parameter folded from the space's fixed
    #: values (DiscoveredModel.engine_scale); absent: none folded.
    param_scales: dict[str, list[np.ndarray]] = field(default_factory=dict, compare=False)

    def monotone(self, objective: str) -> bool:
        """Whether the models behind an objective never decrease with the lengths (fixed
        templates do; a discovered model with a negative length exponent does not)."""
        for kind in _KINDS_OF.get(objective, ()):
            for obj in self.objects.get(kind, []):
                check = getattr(obj, "monotone_in_lengths", None)
                if check is not None and not check():
                    return False
        return True

    @property
    def kinds(self) -> set[str]:
        out = set()
        if self.energy:
            out.add("energy")
        if self.ttft:
            out.add("ttft")
        if self.tpot:
            out.add("tpot")
        if self.ttft and self.tpot:
            out.add("latency")
        for k in ("ttft", "tpot"):
            if k in self.bounds:
                out.add(f"{k}_upper")
        if "latency" in out and {"ttft_upper", "tpot_upper"} <= out:
            out.add("latency_upper")
        if self.energy and "energy" in self.bounds:
            out.add("energy_upper")
            if "latency_upper" in out:
                out.add("power_upper")
        return out

    def with_confidence(self, confidence: float | None, what: str = "confidence") -> ModelSet:
        """This set with the upper bounds of its models at ``confidence`` (``None``: without
        bounds). ``ValueError`` naming a latency model that records no uncertainty; an energy
        model without it is recorded in :attr:`bound_errors` (its bound is needed only by
        power limits and the energy and power bound columns)."""
        if confidence is None:
            return replace(self, confidence=None, bounds={}, bound_errors={})
        bounds: dict[str, BoundArgs] = {}
        errors: dict[str, str] = {}
        for kind in ("energy", "ttft", "tpot"):
            if getattr(self, kind) is None:
                continue
            covs, vars_, sign = [], [], 0.0
            maps = self.param_maps.get(kind)
            n_params = len(getattr(self, kind)[1][0])
            scale = self.param_scales.get(kind)
            try:
                for i, obj in enumerate(self.objects.get(kind, [])):
                    b = bound_of(obj, confidence, f"{what} ({kind} model)")
                    cov, var = b.engine_args()
                    if scale is not None:
                        cov = cov * np.outer(scale[i], scale[i])
                    if maps is not None:
                        full = np.zeros((n_params, n_params))
                        full[np.ix_(maps[i], maps[i])] = cov
                        cov = full
                    covs.append(cov)
                    vars_.append(var)
                    sign = math.copysign(1.0, b.z) if b.z != 0 else 0.0
            except ValueError as e:
                if kind != "energy":
                    raise
                errors["energy_upper"] = errors["power_upper"] = str(e)
                continue
            if covs:
                bounds[kind] = (covs, vars_, sign)
        return replace(self, confidence=confidence, bounds=bounds, bound_errors=errors)

    def engine_parts(self) -> tuple[Any, Any, Any]:
        """(energy, ttft, tpot) for the C++ engine, which takes latency models in pairs.

        A time-per-output-token model alone (real serving data often has inter-token latency
        and no time to first token) is paired with a ``ttft`` of all-zero coefficients, and
        the other way round; :attr:`kinds` keeps ``latency_s`` unavailable then.
        """
        ttft, tpot = self.ttft, self.tpot
        if tpot is not None and ttft is None:
            ttft = ("ttft_v1", [np.zeros(6) for _ in tpot[1]])
        if ttft is not None and tpot is None:
            tpot = ("tpot_v1", [np.zeros(6) for _ in ttft[1]])
        return self.energy, ttft, tpot

    def fingerprint(self) -> tuple[Any, ...]:
        def fp(x: tuple[Any, list[np.ndarray]] | None) -> Any:
            return None if x is None else (x[0], tuple(t.tobytes() for t in x[1]))

        return (fp(self.energy), fp(self.ttft), fp(self.tpot), self.keyed, self.confidence)

    def engine_bounds(self) -> tuple[BoundArgs | None, BoundArgs | None]:
        """(ttft_bound, tpot_bound) for the C++ engine (``None`` when unbounded)."""
        return self.bounds.get("ttft"), self.bounds.get("tpot")

    def energy_bound(self) -> BoundArgs | None:
        """The energy model's bound for the C++ engine (``None`` when unbounded)."""
        return self.bounds.get("energy")


def _split_model(
    m: Any, where: str, constants: Mapping[str, float] | None = None
) -> dict[str, tuple[Any, np.ndarray, Any]]:
    """The template parts of one fitted model: {"energy"|"ttft"|"tpot": (template, coef,
    the fitted part)}. The template is a name, or a term-sum model (a DiscoveredModel's
    :meth:`~energycore.fit.DiscoveredModel.engine_template`, with the space's fixed values
    ``constants`` folded into its coefficients)."""
    if callable(getattr(m, "engine_template", None)):
        kind = {"energy_j": "energy", "ttft_s": "ttft", "tpot_s": "tpot"}.get(
            str(getattr(m, "target", ""))
        )
        if kind is None:
            raise ValueError(
                f"models: {where} is a {type(m).__name__} of {getattr(m, 'target', None)!r}; a "
                "ConfigSpace takes discovered models of energy_j, ttft_s or tpot_s (discover("
                "..., target=...))"
            )
        tmpl, theta = m.engine_template(constants)
        return {kind: (tmpl, theta, m)}
    parts = (
        [("ttft", m.ttft_model_), ("tpot", m.tpot_model_)] if hasattr(m, "ttft_model_") else None
    )
    if parts is None:
        target = getattr(m, "target", None)
        kind = {"energy_j": "energy", "ttft_s": "ttft", "tpot_s": "tpot"}.get(str(target))
        if kind is None or not hasattr(m, "template_name"):
            if hasattr(m, "tpot_model") or type(m).__name__ == "LatencyModel":
                raise ValueError(f"models: the LatencyModel {where} is not fitted yet")
            raise ValueError(
                f"models: {where} is a {type(m).__name__}, expected an EnergyModel, a "
                "LatencyModel, a TtftModel or a TpotModel"
            )
        parts = [(kind, m)]
    else:
        parts = [(k, sub) for k, sub in parts if sub is not None]
    out = {}
    for kind, sub in parts:
        coef = getattr(sub, "coef_", None)
        if coef is None:
            raise ValueError(f"models: the {type(sub).__name__} {where} is not fitted yet")
        out[kind] = (str(sub.template_name), np.ascontiguousarray(coef, dtype=np.float64), sub)
    return out


def collect(
    models: Any, where: str, constants: Mapping[str, float] | None = None
) -> dict[str, tuple[Any, np.ndarray, Any]]:
    items = list(models) if isinstance(models, (list, tuple)) else [models]
    out: dict[str, tuple[Any, np.ndarray, Any]] = {}
    for m in items:
        for kind, part in _split_model(m, where, constants).items():
            if kind in out:
                raise ValueError(f"models: two {kind} models {where}")
            out[kind] = part
    return out


def scales(
    objects: dict[str, list[Any]], constants: Mapping[str, float] | None
) -> dict[str, list[np.ndarray]]:
    """ModelSet.param_scales of the objects: for the kinds with a discovered model that folds
    a fixed value into its coefficients (the others get ones)."""
    out: dict[str, list[np.ndarray]] = {}
    for kind, objs in objects.items():
        s = [
            np.asarray(o.engine_scale(constants)) if callable(getattr(o, "engine_scale", None))
            else None
            for o in objs
        ]  # fmt: skip
        if any(x is not None and (x != 1.0).any() for x in s):
            out[kind] = [
                x if x is not None else np.ones(len(getattr(o, "coef_", [])))
                for x, o in zip(s, objs)
            ]
    return out


def merge(
    kind: str, parts: list[tuple[Any, np.ndarray]]
) -> tuple[Any, list[np.ndarray], list[np.ndarray] | None]:
    """One template for the models of one kind, one per value of the model axis.

    Named templates must agree. Term-sum models (discovered forms) of different structures
    are merged into one term-sum over the union of their terms: each model's coefficient vector
    holds zeros for the terms it lacks (the engine skips a term with a zero coefficient) and a
    neutral 1 for their free exponents. Returns (template, one theta per model, the positions
    of each model's parameters in the merged vector, or ``None`` when nothing was merged).
    """
    tmpls = [t for t, _ in parts]
    thetas = [th for _, th in parts]
    named = [isinstance(t, str) for t in tmpls]
    if all(named):
        if len(set(tmpls)) > 1:
            raise ValueError(f"models: {kind} models use different templates {set(tmpls)}")
        return tmpls[0], thetas, None
    if any(named):
        names = sorted({t if isinstance(t, str) else "term_sum (a DiscoveredModel)" for t in tmpls})
        raise ValueError(f"models: {kind} models use different templates {names}")
    if all(t == tmpls[0] for t in tmpls):
        return tmpls[0], thetas, None
    # union of the terms: a term's shape is its variables with their fixed exponents (free
    # ones marked), numbered by occurrence within a model
    keys: list[tuple[Any, ...]] = []
    index: dict[tuple[Any, ...], int] = {}
    for terms, _ in tmpls:
        seen: dict[tuple[Any, ...], int] = {}
        for t in terms:
            shape = tuple((v, None if f >= 0 else e) for v, e, f in t)
            n = seen.get(shape, 0)
            seen[shape] = n + 1
            if (shape, n) not in index:
                index[(shape, n)] = len(keys)
                keys.append((shape, n))
    free_pos: dict[tuple[int, int], int] = {}
    union_terms = []
    for u, (shape, _) in enumerate(keys):
        factors = []
        for k, (v, e) in enumerate(shape):
            if e is None:
                free_pos[(u, k)] = len(free_pos)
                factors.append((v, 1.0, free_pos[(u, k)]))
            else:
                factors.append((v, float(e), -1))
        union_terms.append(tuple(factors))
    n_terms, n_free = len(keys), len(free_pos)
    out_thetas, maps = [], []
    for (terms, _), th in zip(tmpls, thetas):
        full = np.zeros(n_terms + n_free)
        full[n_terms:] = 1.0
        pos = np.empty(len(th), dtype=np.intp)
        seen = {}
        for j, t in enumerate(terms):
            shape = tuple((v, None if f >= 0 else e) for v, e, f in t)
            n = seen.get(shape, 0)
            seen[shape] = n + 1
            u = index[(shape, n)]
            pos[j] = u
            full[u] = th[j]
            for k, (_, _, f) in enumerate(t):
                if f >= 0:
                    pos[len(terms) + f] = n_terms + free_pos[(u, k)]
                    full[n_terms + free_pos[(u, k)]] = th[len(terms) + f]
        out_thetas.append(np.ascontiguousarray(full))
        maps.append(pos)
    return (tuple(union_terms), n_free), out_thetas, maps
