"""Fitted models attached to a space query: their template coefficients, by kind and key."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from energycore.space.uncertainty import bound_of

__all__ = ["ModelSet", "collect"]

#: Engine argument of a bounded latency half: ([z^2 cov per key], [z^2 resid_var per key], sign z)
BoundArgs = tuple[list[np.ndarray], list[float], float]


@dataclass(frozen=True)
class ModelSet:
    """Coefficients per model kind: (template, [theta]) with one theta per key or one for all.

    ``objects`` holds the fitted model objects per kind (in the order of the thetas), for
    :meth:`with_confidence`; ``bounds`` the engine arguments of the upper bounds (latency
    halves and energy); ``bound_errors`` why a kind could not be bounded (an energy model
    without recorded uncertainty: raised only when a query needs its bound).
    """

    energy: tuple[str, list[np.ndarray]] | None = None
    ttft: tuple[str, list[np.ndarray]] | None = None
    tpot: tuple[str, list[np.ndarray]] | None = None
    keyed: bool = False
    objects: dict[str, list[Any]] = field(default_factory=dict, compare=False)
    confidence: float | None = None
    bounds: dict[str, BoundArgs] = field(default_factory=dict, compare=False)
    bound_errors: dict[str, str] = field(default_factory=dict, compare=False)

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
            try:
                for obj in self.objects.get(kind, []):
                    b = bound_of(obj, confidence, f"{what} ({kind} model)")
                    cov, var = b.engine_args()
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
        def fp(x: tuple[str, list[np.ndarray]] | None) -> Any:
            return None if x is None else (x[0], tuple(t.tobytes() for t in x[1]))

        return (fp(self.energy), fp(self.ttft), fp(self.tpot), self.keyed, self.confidence)

    def engine_bounds(self) -> tuple[BoundArgs | None, BoundArgs | None]:
        """(ttft_bound, tpot_bound) for the C++ engine (``None`` when unbounded)."""
        return self.bounds.get("ttft"), self.bounds.get("tpot")

    def energy_bound(self) -> BoundArgs | None:
        """The energy model's bound for the C++ engine (``None`` when unbounded)."""
        return self.bounds.get("energy")


def _split_model(m: Any, where: str) -> dict[str, tuple[str, np.ndarray, Any]]:
    """The template parts of one fitted model: {"energy"|"ttft"|"tpot": (template, coef,
    the fitted part)}."""
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


def collect(models: Any, where: str) -> dict[str, tuple[str, np.ndarray, Any]]:
    items = list(models) if isinstance(models, (list, tuple)) else [models]
    out: dict[str, tuple[str, np.ndarray, Any]] = {}
    for m in items:
        for kind, part in _split_model(m, where).items():
            if kind in out:
                raise ValueError(f"models: two {kind} models {where}")
            out[kind] = part
    return out
