"""Transfer of a fitted energy model to another GPU: a zero-shot prior and a fit regularised by it.

:func:`transfer_model` scales the coefficients of a fitted :class:`~energycore.EnergyModel` by
the physical ratios of two GPUs. Energy is power x time, so a coefficient that pays for
arithmetic scales by ``(power / FLOP/s)`` of the target over the source, one that pays for
memory traffic by ``(power / bandwidth)``, one that pays for GPU-to-GPU traffic by
``(power / link bandwidth)``, and the fixed energy per GPU by the idle power; exponents and
pipeline overheads are dimensionless and carry over unchanged:

==========================  =====================================  ========================
coefficient                 what it pays for                       scaled by
==========================  =====================================  ========================
t1, t2, t7                  prefill GEMMs, attention, decode work  tdp / tflops
t6, t8                      weight reads per step, KV-cache reads  tdp / hbm_tbps
t5, t11                     all-reduce per token                   tdp / link_gbps
t12                         fixed energy per GPU                   idle_w
t3, t4, t9, t10             exponents, pipeline overheads          1
==========================  =====================================  ========================

:func:`fit_with_prior` refits from a few target measurements with the transferred model as
regularisation: the prior's predictions at the **neighbourhood** of the target rows (each row
with its batch halved and doubled and its tensor-parallel degree halved and doubled) are added
as pseudo-observations whose weights sum to ``strength`` rows (default 4), after scaling the
prior by the target rows' mean log ratio, and the C++ solver starts from the prior's coefficients. With no target row
the result predicts exactly what the prior does; as target rows accumulate they outweigh it.
Coefficients that no row (real or pseudo) can identify are held at the prior's values.

The spec figures below are those of the simulator's catalogue (``energycore.simulate.catalog``,
sources in ``docs/simulator.md``: vendor datasheets; idle power an estimate). They are copied
here because ``fit`` sits below ``simulate`` in the layer order; pass ``spec=`` for any other GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from energycore import _core
from energycore._util.columns import FEATURES, as_feature_table, as_target, as_weights
from energycore.fit.energy import TemplateModel

__all__ = ["GPU_SPECS", "GpuSpec", "fit_with_prior", "get_spec", "scale_factors", "transfer_model"]

M = TypeVar("M", bound=TemplateModel)


@dataclass(frozen=True)
class GpuSpec:
    """The figures of one GPU that the energy model's coefficients scale with.

    Attributes
    ----------
    tflops : float
        Peak dense BF16 tensor throughput, TFLOP/s.
    hbm_tbps : float
        Memory bandwidth, TB/s.
    link_gbps : float
        GPU-to-GPU bandwidth per direction, GB/s.
    tdp_w : float
        Board power limit, W.
    idle_w : float
        Power of an idle GPU with a model loaded, W.
    """

    tflops: float
    hbm_tbps: float
    link_gbps: float
    tdp_w: float
    idle_w: float

    def __post_init__(self) -> None:
        for f in ("tflops", "hbm_tbps", "link_gbps", "tdp_w", "idle_w"):
            v = getattr(self, f)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not (math.isfinite(v) and v > 0)
            ):
                raise ValueError(f"spec: '{f}' must be a positive finite number, got {v!r}")


#: Figures of the simulator's catalogue (vendor datasheets, see docs/simulator.md):
#: A100 80GB SXM, H100 SXM5, H200 SXM, B200 (HGX/DGX), L40S (PCIe), MI300X OAM.
GPU_SPECS: dict[str, GpuSpec] = {
    "A100": GpuSpec(312.0, 2.039, 300.0, 400.0, 55.0),
    "H100": GpuSpec(989.0, 3.35, 450.0, 700.0, 75.0),
    "H200": GpuSpec(989.0, 4.8, 450.0, 700.0, 75.0),
    "B200": GpuSpec(2250.0, 8.0, 900.0, 1000.0, 140.0),
    "L40S": GpuSpec(362.0, 0.864, 32.0, 350.0, 35.0),
    "MI300X": GpuSpec(1307.0, 5.3, 448.0, 750.0, 90.0),
}

#: Which figure each energy coefficient scales with (``None``: dimensionless).
SCALING: dict[str, str | None] = {
    "t1": "compute", "t2": "compute", "t3": None, "t4": None, "t5": "link", "t6": "memory",
    "t7": "compute", "t8": "memory", "t9": None, "t10": None, "t11": "link", "t12": "idle",
}  # fmt: skip


def get_spec(gpu: Any, spec: Any = None, what: str = "to_gpu") -> GpuSpec:
    """The :class:`GpuSpec` of ``gpu``: ``spec`` if given (a GpuSpec, a mapping of its fields
    or any object with those attributes, e.g. a simulator ``GPU``), else the table entry."""
    src = spec if spec is not None else gpu
    if isinstance(src, GpuSpec):
        return src
    if isinstance(src, str):
        if src in GPU_SPECS:
            return GPU_SPECS[src]
        raise ValueError(
            f"{what}: unknown GPU {src!r} (known: {', '.join(GPU_SPECS)}); pass spec= with its "
            "tflops, hbm_tbps, link_gbps, tdp_w and idle_w"
        )
    fields = ("tflops", "hbm_tbps", "link_gbps", "tdp_w", "idle_w")
    if isinstance(src, Mapping):
        missing = [f for f in fields if f not in src]
        if missing:
            raise ValueError(f"{what}: spec lacks {', '.join(missing)}")
        return GpuSpec(*(src[f] for f in fields))
    if all(hasattr(src, f) for f in fields):
        return GpuSpec(*(getattr(src, f) for f in fields))
    raise ValueError(
        f"{what}: expected a GPU name, a GpuSpec or a mapping of its figures, got "
        f"{type(src).__name__}"
    )


def scale_factors(from_gpu: Any, to_gpu: Any, *, from_spec: Any = None,
                  spec: Any = None) -> dict[str, float]:  # fmt: skip
    """Multiplier of each energy coefficient from ``from_gpu`` to ``to_gpu`` (see the table)."""
    a = get_spec(from_gpu, from_spec, "from_gpu")
    b = get_spec(to_gpu, spec, "to_gpu")
    kind = {
        "compute": (b.tdp_w / b.tflops) / (a.tdp_w / a.tflops),
        "memory": (b.tdp_w / b.hbm_tbps) / (a.tdp_w / a.hbm_tbps),
        "link": (b.tdp_w / b.link_gbps) / (a.tdp_w / a.link_gbps),
        "idle": b.idle_w / a.idle_w,
    }
    return {k: (1.0 if v is None else kind[v]) for k, v in SCALING.items()}


def _check_model(model: Any, what: str) -> None:
    names = getattr(type(model), "param_names", None)
    if names is None or tuple(names()) != tuple(SCALING):
        raise ValueError(
            f"{what}: expected an EnergyModel (coefficients t1..t12), got {type(model).__name__}"
        )
    if not hasattr(model, "coef_"):
        raise ValueError(f"{what}: the model is not fitted (call fit() first)")


def transfer_model(model: M, to_gpu: Any, *, from_gpu: Any, spec: Any = None,
                   from_spec: Any = None) -> M:  # fmt: skip
    """A copy of a fitted energy model with its coefficients scaled to another GPU.

    Parameters
    ----------
    model : EnergyModel
        Fitted on ``from_gpu``.
    to_gpu, from_gpu : str or GpuSpec
        GPU names of :data:`GPU_SPECS` or spec objects.
    spec, from_spec : GpuSpec, mapping or object with the spec attributes, optional
        Figures of ``to_gpu`` / ``from_gpu`` when they are not (or should not be) taken from
        the table; a ``GPU`` of the simulator's catalogue works as is.

    Returns
    -------
    EnergyModel
        A new fitted model (same class and hyper-parameters); covariance and standard errors
        are scaled alike. ``transfer_`` records the GPUs and factors (not saved by ``save``).
    """
    _check_model(model, "model")
    f = scale_factors(from_gpu, to_gpu, from_spec=from_spec, spec=spec)
    names = list(SCALING)
    d = model.to_dict()  # type: ignore[attr-defined]
    fit = d["fit"]
    fit["params"] = {k: float(fit["params"][k]) * f[k] for k in names}
    fit["stderr"] = {k: (None if v is None else float(v) * f[k]) for k, v in fit["stderr"].items()}
    fac = np.array([f[k] for k in names])
    cov = np.array([[np.nan if v is None else v for v in row] for row in fit["covariance"]])
    cov = cov * np.outer(fac, fac)
    fit["covariance"] = [[None if not math.isfinite(v) else float(v) for v in row] for row in cov]
    out = type(model).from_dict(d)  # type: ignore[attr-defined]
    out.transfer_ = {  # type: ignore[attr-defined]
        "from_gpu": from_gpu if isinstance(from_gpu, str) else repr(from_gpu),
        "to_gpu": to_gpu if isinstance(to_gpu, str) else repr(to_gpu),
        "factors": f,
    }
    return out  # type: ignore[no-any-return]


def _neighbourhood(Xt: np.ndarray, spread: float) -> np.ndarray:
    """Each row with batch x {1/spread, 1, spread} and tp x {1/2, 1, 2} (integers >= 1)."""
    j_tp, j_b = FEATURES.index("tp"), FEATURES.index("batch")
    rows = []
    for x in Xt:
        for tb in (0.5, 1.0, 2.0):
            tp = x[j_tp] * tb
            if tp < 1 or tp != round(tp):
                continue
            for bb in (1.0 / spread, 1.0, spread):
                r = x.copy()
                r[j_tp] = tp
                r[j_b] = max(1.0, round(x[j_b] * bb))
                rows.append(r)
    return np.unique(np.asarray(rows), axis=0)


def fit_with_prior(model: M, X: Any, y: Any, prior: Any, *, sample_weight: Any = None,
                   strength: float | None = None, at: Any = None, spread: float = 2.0,
                   rescale: bool = True) -> M:  # fmt: skip
    """Fit ``model`` to target rows with ``prior`` (e.g. :func:`transfer_model`'s) as regulariser.

    Parameters
    ----------
    model : EnergyModel
        The model to fit (in place; its hyper-parameters are kept).
    X, y, sample_weight
        As for ``EnergyModel.fit``; ``X`` may have no rows (then ``model`` becomes the prior).
    prior : EnergyModel
        A fitted model of the same class.
    strength : float, optional
        Total weight of the pseudo-observations, in rows (default: a third of the number of
        coefficients, 4; with 12, ``prior + 10 target rows`` picked worse on ML.ENERGY v3,
        see ``docs/transfer.md``).
    at : table, optional
        Rows where the prior is imposed instead of the neighbourhood of ``X`` (e.g. the
        configurations one will choose from).
    spread : float
        Factor by which the neighbourhood varies the batch (> 1).
    rescale : bool
        First scale the prior by the geometric mean of ``y / prior.predict(X)`` over the target
        rows (one factor, identifiable from one row): the spec ratios get the hardware's
        relative efficiency only roughly, and without this the robust loss treats target rows
        that disagree with the prior's level as outliers.

    Returns
    -------
    model, fitted.
    """
    _check_model(prior, "prior")
    if type(prior) is not type(model):
        raise ValueError(f"prior: expected a {type(model).__name__}, got {type(prior).__name__}")
    names = list(SCALING)
    if strength is None:
        strength = len(names) / 3.0
    if (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not (math.isfinite(strength) and strength > 0)
    ):
        raise ValueError(f"strength: must be a positive finite number, got {strength!r}")
    if isinstance(spread, bool) or not isinstance(spread, int | float) or not spread > 1:
        raise ValueError(f"spread: must be a number > 1, got {spread!r}")
    Xt = _table_or_empty(X)
    n = len(Xt)
    yt = as_target(y, n, getattr(model, "target", "") or "y", X) if n else np.empty(0)
    w = as_weights(sample_weight, n) if n else np.empty(0)
    if len(w) == 0:
        w = np.ones(n)
    if n == 0 and at is None:
        return _become(model, prior)
    P = as_feature_table(at) if at is not None else _neighbourhood(Xt, float(spread))
    if len(P) == 0:
        return _become(model, prior)
    yp = prior.predict({k: P[:, j] for j, k in enumerate(FEATURES)})
    c = 1.0
    if rescale and n:
        pt = prior.predict({k: Xt[:, j] for j, k in enumerate(FEATURES)})
        good = (w > 0) & (pt > 0)
        if good.any():
            c = float(np.exp(np.average(np.log(yt[good] / pt[good]), weights=w[good])))
        yp = yp * c
    Xc = np.vstack([Xt, P]) if n else P
    yc = np.concatenate([yt, yp])
    wc = np.concatenate([w, np.full(len(P), strength / len(P))])
    theta = np.asarray(prior.coef_, dtype=np.float64)
    J = _core.template_jacobian(model.template_name, Xc, theta)  # type: ignore[attr-defined]
    dead = np.abs(J).max(axis=0) == 0.0
    user_fixed = dict(model.fixed or {})  # type: ignore[attr-defined]
    lin = np.array([p["linear"] for p in model.template_info()["params"]])  # type: ignore[attr-defined]
    theta = np.where(lin, theta * c, theta)  # every linear coefficient carries the scale
    fixed = {**{names[j]: float(theta[j]) for j in np.flatnonzero(dead)}, **user_fixed}
    tmp = type(model)(**{**model.get_params(), "fixed": fixed or None})  # type: ignore[attr-defined]
    x0 = theta.copy()
    for k, v in fixed.items():
        x0[names.index(k)] = v
    tmp.fit({k: Xc[:, j] for j, k in enumerate(FEATURES)}, yc, sample_weight=wc, x0=x0)
    state = tmp.to_dict()
    state["hyper"]["fixed"] = model.fixed  # type: ignore[attr-defined]
    fitted = type(model).from_dict(state)  # type: ignore[attr-defined]
    fitted.fixed_mask_ = tmp.fixed_mask_
    model.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    model.prior_ = {"strength": float(strength), "n_target": n, "n_pseudo": len(P), "scale": c}  # type: ignore[attr-defined]
    return model


def _table_or_empty(X: Any) -> np.ndarray:
    """The feature table of X, or an empty (0, 5) table for an empty input."""
    from energycore._util.columns import column_names

    if X is None:
        return np.empty((0, len(FEATURES)))
    try:
        cols = column_names(X)
    except ValueError:
        cols = None
    if cols is not None:
        lengths = [len(np.asarray(X[c])) for c in cols] if cols else [0]
        if max(lengths, default=0) == 0:
            return np.empty((0, len(FEATURES)))
    return as_feature_table(X)


def _become(model: M, prior: Any) -> M:
    """Give ``model`` the prior's fitted state (its own hyper-parameters kept)."""
    d = prior.to_dict()
    d["hyper"] = model.get_params()  # type: ignore[attr-defined]
    fitted = type(model).from_dict(d)  # type: ignore[attr-defined]
    model.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    model.prior_ = {"n_target": 0, "n_pseudo": 0}  # type: ignore[attr-defined]
    return model
