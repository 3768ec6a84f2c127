"""Measurement plans: which ``n`` configurations of a space a campaign measures.

- ``random``: ``n`` distinct valid points, uniformly, in random order;
- ``latin_hypercube``: a Latin hypercube over the axes (each axis's value range cut into ``n``
  strata, one point per stratum), each design point snapped to the nearest unused valid point;
- ``d_optimal``: the ``n`` points that maximise ``det(G^T G)``, ``G`` the Jacobian of
  ``log E`` of the energy model (the default template of :class:`~energycore.EnergyModel`, or
  the prior model's) at a prior, by greedy selection followed by Fedorov exchanges; the
  log-Jacobian matches the fit's log-ratio loss;
- ``all``: every candidate in the given order (``n`` must be None or the number of them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from energycore import _core
from energycore._util.columns import FEATURES
from energycore.campaign.journal import normalize_config

PLANS = ("random", "latin_hypercube", "d_optimal", "all")
#: Valid points a space may have for planning (they are enumerated).
MAX_CANDIDATES = 1_000_000
#: Candidates the D-optimal search considers at most (a seeded random subset beyond that).
MAX_D_OPTIMAL = 20_000


def candidates(space_or_configs: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The candidate configurations and the names of the axes that vary.

    A :class:`~energycore.ConfigSpace` gives its valid points (axes and fixed values, not derived
    columns); a sequence of mappings (or a DataFrame) is taken as it is.
    """
    from energycore.space.configspace import ConfigSpace

    if isinstance(space_or_configs, ConfigSpace):
        space = space_or_configs
        n_valid = space.count_valid()
        if n_valid == 0:
            raise ValueError("space: no valid configuration (check the constraints)")
        if n_valid > MAX_CANDIDATES:
            raise ValueError(
                f"space: {n_valid} valid configurations, more than {MAX_CANDIDATES} to plan "
                "from; add constraints or pass a list of configurations"
            )
        cols = space.to_frame(limit=None, as_frame=False)
        names = [a.name for a in space.axes] + [
            k for k in space.fixed if k in cols and k not in space.derived
        ]
        n = len(cols["index"])
        configs = [normalize_config({k: _item(cols[k][i]) for k in names}) for i in range(n)]
        varying = [a.name for a in space.axes if len(a.values) > 1]
        return configs, varying
    if hasattr(space_or_configs, "to_dict") and hasattr(space_or_configs, "columns"):
        space_or_configs = space_or_configs.to_dict("records")
    if isinstance(space_or_configs, (str, bytes, Mapping)) or not isinstance(
        space_or_configs, Sequence
    ):
        raise ValueError(
            "space_or_configs: expected a ConfigSpace, a list of configuration dicts or a "
            f"DataFrame, got {type(space_or_configs).__name__}"
        )
    if not space_or_configs:
        raise ValueError("space_or_configs: the list of configurations is empty")
    configs = []
    for i, c in enumerate(space_or_configs):
        try:
            configs.append(normalize_config(c))
        except ValueError as e:
            raise ValueError(f"space_or_configs[{i}]: {e}") from None
    keys = [tuple(sorted(c.items())) for c in configs]
    if len(set(keys)) != len(keys):
        dup = next(c for c, k in zip(configs, keys) if keys.count(k) > 1)
        raise ValueError(f"space_or_configs: configuration {dup} is given more than once")
    names = sorted({k for c in configs for k in c})
    varying = [k for k in names if len({repr(c.get(k)) for c in configs}) > 1]
    return configs, varying


def _item(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def check_n(n: Any, n_candidates: int, plan: str) -> int:
    if n is None:
        return n_candidates
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n: expected a positive integer or None, got {n!r}")
    if n <= 0:
        raise ValueError(f"n: must be positive, got {n}")
    if n > n_candidates:
        raise ValueError(
            f"n: {n} configurations asked but the space has only {n_candidates} valid ones"
        )
    if plan == "all" and n != n_candidates:
        raise ValueError(f"n: plan 'all' measures all {n_candidates} configurations, got n={n}")
    return int(n)


def make_plan(
    plan: str,
    configs: list[dict[str, Any]],
    varying: list[str],
    n: int,
    seed: int,
    prior: Any = None,
) -> list[dict[str, Any]]:
    """The planned configurations (distinct, in measuring order)."""
    rng = np.random.default_rng(seed)
    if plan == "all":
        idx = np.arange(len(configs))
    elif plan == "random":
        idx = rng.choice(len(configs), size=n, replace=False)
    elif plan == "latin_hypercube":
        idx = _latin_hypercube(configs, varying, n, rng)
    elif plan == "d_optimal":
        idx = _d_optimal(configs, n, rng, prior)
    else:
        raise ValueError(f"plan: unknown plan {plan!r}; expected one of {', '.join(PLANS)}")
    return [configs[int(i)] for i in idx]


# ------------------------------------------------------------------ latin hypercube
def _coordinates(configs: list[dict[str, Any]], varying: list[str]) -> np.ndarray:
    """Each candidate as a point of [0, 1]^d: per axis, the rank of its value among the axis's
    distinct values (numbers sorted, categories in order of appearance)."""
    cols = []
    for k in varying:
        vals = [c.get(k) for c in configs]
        distinct = list(dict.fromkeys(vals))
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct):
            distinct.sort()
        rank = {repr(v): i for i, v in enumerate(distinct)}
        denom = max(len(distinct) - 1, 1)
        cols.append([rank[repr(v)] / denom for v in vals])
    return np.array(cols, dtype=np.float64).T.reshape(len(configs), len(varying))


def _latin_hypercube(
    configs: list[dict[str, Any]], varying: list[str], n: int, rng: np.random.Generator
) -> np.ndarray:
    X = _coordinates(configs, varying)
    d = X.shape[1]
    design = np.empty((n, d))
    for j in range(d):
        design[:, j] = (rng.permutation(n) + rng.random(n)) / n
    free = np.ones(len(configs), dtype=bool)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        dist = ((X - design[i]) ** 2).sum(axis=1)
        dist[~free] = np.inf
        # ties (a coarse axis) broken at random, not by enumeration order
        best = np.flatnonzero(dist == dist.min())
        k = int(rng.choice(best))
        out[i] = k
        free[k] = False
    return out


# ------------------------------------------------------------------ D-optimal
def _prior(prior: Any) -> tuple[str, np.ndarray]:
    """The energy template and the coefficients at which the design is evaluated."""
    from energycore.fit.energy import EnergyModel

    name = EnergyModel.default_template
    if isinstance(prior, EnergyModel):
        name = prior.template_name
        if getattr(prior, "coef_", None) is None:
            raise ValueError("prior: the EnergyModel is not fitted (fit it, or give coefficients)")
    info = _core.template_info(name)
    names = [p["name"] for p in info["params"]]
    if prior is None:
        return name, np.array([p["typical"] for p in info["params"]], dtype=np.float64)
    if hasattr(prior, "coef_"):
        prior = prior.coef_
    if isinstance(prior, Mapping):
        missing = [k for k in names if k not in prior]
        if missing:
            raise ValueError(f"prior: missing coefficient(s) {', '.join(missing)}")
        prior = [prior[k] for k in names]
    theta = np.asarray(prior, dtype=np.float64).reshape(-1)
    if theta.shape != (len(names),) or not np.all(np.isfinite(theta)):
        raise ValueError(
            f"prior: expected a fitted EnergyModel, a dict or {len(names)} finite coefficients"
        )
    return name, theta


def design_matrix(configs: Sequence[Mapping[str, Any]], prior: Any = None) -> np.ndarray:
    """Rows d log E / d theta of the energy model at the prior, for each configuration."""
    missing = sorted({f for c in configs for f in FEATURES if f not in c})
    if missing:
        raise ValueError(
            f"plan 'd_optimal': every configuration needs {', '.join(FEATURES)}; missing "
            f"{', '.join(missing)} (make it an axis or a fixed value of the space)"
        )
    X = np.array([[float(c[f]) for f in FEATURES] for c in configs], dtype=np.float64)
    name, theta = _prior(prior)
    J = np.asarray(_core.template_jacobian(name, X, theta))
    E = np.asarray(_core.template_value(name, X, theta, 1)).reshape(-1)
    if np.any(~np.isfinite(E)) or np.any(E <= 0):
        raise ValueError("prior: the energy model is not positive on every configuration")
    return J / E[:, None]


def log_det_information(G: np.ndarray) -> float:
    """log det(G^T G) (``-inf`` when singular)."""
    sign, val = np.linalg.slogdet(G.T @ G)
    return float(val) if sign > 0 else -np.inf


def _d_optimal(
    configs: list[dict[str, Any]], n: int, rng: np.random.Generator, prior: Any
) -> np.ndarray:
    pool = np.arange(len(configs))
    if len(pool) > MAX_D_OPTIMAL:
        pool = np.sort(rng.choice(len(pool), size=MAX_D_OPTIMAL, replace=False))
        if n > len(pool):
            raise ValueError(f"n: at most {MAX_D_OPTIMAL} configurations for plan 'd_optimal'")
    G = design_matrix([configs[int(i)] for i in pool], prior)
    scale = np.linalg.norm(G, axis=0)
    scale[scale == 0] = 1.0
    G = G / scale  # det changes by a constant factor only; conditioning improves
    p = G.shape[1]
    ridge = 1e-8 * np.eye(p)  # keeps M invertible while fewer than p points are chosen
    chosen: list[int] = []
    free = np.ones(len(pool), dtype=bool)
    M = ridge.copy()
    for _ in range(n):  # greedy: det(M + g g^T) = det(M) (1 + g^T M^-1 g)
        Minv = np.linalg.inv(M)
        gain = np.einsum("ij,jk,ik->i", G, Minv, G)
        gain[~free] = -np.inf
        k = int(np.argmax(gain))
        chosen.append(k)
        free[k] = False
        M += np.outer(G[k], G[k])
    for _ in range(10):  # Fedorov exchange until no swap improves the determinant
        improved = False
        for pos in range(n):
            i = chosen[pos]
            Minv = np.linalg.inv(M)
            MG = G @ Minv
            d = np.einsum("ij,ij->i", MG, G)
            dij = MG @ G[i]
            delta = d - (d[i] * d - dij**2) - d[i]  # det ratio minus 1 for swapping i with j
            delta[~free] = -np.inf
            j = int(np.argmax(delta))
            if delta[j] > 1e-9:
                chosen[pos] = j
                free[i], free[j] = True, False
                M += np.outer(G[j], G[j]) - np.outer(G[i], G[i])
                improved = True
        if not improved:
            break
    return pool[np.array(chosen)]
