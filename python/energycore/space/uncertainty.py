"""Selection under uncertainty: upper bounds of the latency and power predictions at a confidence.

``confidence=c`` (a number in (0, 1)) on :meth:`ConfigSpace.argmin` and the other queries,
:meth:`Selector.best` and ``energycore select --confidence`` keeps a configuration only when
the *upper bound* of its predicted latency (and power) at one-sided confidence ``c`` meets the
limit. For a fitted latency half (``TtftModel``, ``TpotModel``, ``MoeTpotModel``) or energy
model (``EnergyModel``) with prediction ``m(x; theta)`` the bound is

.. math::

    u_c(x) = m(x) \\exp\\Big(t_{c,\\nu} \\sqrt{s^2 + g(x)^\\top \\Sigma\\, g(x)}\\Big),
    \\qquad g(x) = \\frac{\\partial \\log m(x; \\theta)}{\\partial \\theta}

- ``s`` is the residual scale of the fit in log space (``residual_scale_``: the root mean
  square of ``log(measured / predicted)`` with the degrees-of-freedom correction ``n - k``), the
  scatter of a configuration around the template;
- ``Sigma`` is the coefficient covariance the fit recorded (``covariance_``; fixed and reduced
  coefficients have none) and ``g' Sigma g`` the delta-method variance of the log prediction,
  with the analytic gradient of the C++ template (largest away from the measured rows);
- ``t_{c, nu}`` is the one-sided Student-t quantile at ``c`` with ``nu = n - k`` degrees of
  freedom (``n`` fitted rows, ``k`` free coefficients): the textbook prediction bound of a new
  observation when ``s`` is estimated from few rows (it tends to the normal quantile for many).

``c = 0.5`` gives ``t = 0``: the bound *is* the point prediction, whatever the residuals.
``latency_s`` is bounded by ``ttft_upper_s + output_len * tpot_upper_s`` (conservative: as if
the errors of the two halves were fully correlated); ``energy_upper_j`` is the bound of the
energy model.

**Power.** ``power_w = energy_j / latency_s``, so ``log power = log E - log L``. The energy and
latency models are fitted independently, so the variances of the two logs add (delta method):
with ``a_E = t_E sqrt(s_E^2 + g_E' Sigma_E g_E)`` the exponent of the energy bound and
``a_L = (ttft_s a_T + output_len tpot_s a_P) / latency_s`` that of the latency (the halves'
exponents ``a_T``, ``a_P`` weighted by their share of ``latency_s``: the linearised log of
``latency_upper_s``, fully correlated halves as there),

.. math::

    \\mathrm{power\\_upper\\_w}(x) = \\mathrm{power\\_w}(x) \\exp\\Big(\\sqrt{a_E^2 + a_L^2}\\Big).

Each term is scaled by its own model's quantile ``t_{c, nu}`` (the convention of the latency
bound: each model's Student-t at its own degrees of freedom), and the square root takes the
sign of the exponents (negative below ``c = 0.5``, where every ``t`` is negative). The bound
covers a lower latency as much as a higher energy: a configuration whose power is
overestimated by chance is what a power cap would otherwise select (a winner's curse: the
energy-optimal point under a cap is the one predicted just under it). ``c = 0.5`` gives the
point prediction again. It is computed in the engine from the same template evaluation (with
gradient) that gives the values and the latency bounds.

A model that has no residual scale
(fitted on as many rows as it has free coefficients, ``nu = 0``) or no covariance (a file from
before they were recorded) cannot give a bound: ``ValueError`` naming it (for the energy model, when a query uses a
power limit or the energy or power bound columns: a latency limit under ``confidence=`` still
works with an energy model from an older file).

Composition with an :class:`~energycore.space.slo.SLO`: a *mean* limit is judged on the bound;
a *percentile* limit (``percentile=p``) is judged on the percentile estimate
``m(x) exp(q_p)`` from the residual quantiles, as without confidence, **and** on the bound:
a configuration must satisfy both. The percentile covers the scatter around the template, the
bound the uncertainty of the prediction itself; requiring both is the stricter of the two and
never counts the residual spread twice in one number. The request rate uses the bound of
``latency_s`` (a slower configuration sustains fewer requests).

Only upper limits (``<=``, ``<``) on ``ttft_s``, ``tpot_s``, ``latency_s`` and ``power_w``
(also :class:`Selector`'s ``power_cap_w`` and ``energycore select --power-cap``) move onto the
bounds; other limits (energy, lower limits) keep the point prediction. ``where=`` expressions
are taken as written; they may use the bound columns ``ttft_upper_s``, ``tpot_upper_s``,
``latency_upper_s``, ``energy_upper_j`` and ``power_upper_w`` themselves.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from energycore._util.columns import as_model_features

__all__ = [
    "UPPER_OF",
    "Bound",
    "bound_of",
    "check_confidence",
    "power_upper_bound",
    "student_t_quantile",
    "upper_bound",
]

#: The bound column of each score whose upper limits judge a bound under ``confidence=``.
UPPER_OF: dict[str, str] = {
    "ttft_s": "ttft_upper_s",
    "tpot_s": "tpot_upper_s",
    "latency_s": "latency_upper_s",
    "power_w": "power_upper_w",
}


def check_confidence(confidence: Any, what: str = "confidence") -> float | None:
    """``None`` or a float in (0, 1); ``ValueError`` naming ``what`` otherwise."""
    if confidence is None:
        return None
    if isinstance(confidence, bool) or not isinstance(
        confidence, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"{what}: must be a number in (0, 1) or None, got {confidence!r}")
    c = float(confidence)
    if not (0.0 < c < 1.0):  # NaN fails too
        raise ValueError(f"{what}: must lie strictly between 0 and 1, got {c}")
    return c


def _t_cdf(x: float, dof: int) -> float:
    """CDF of Student's t with ``dof`` degrees of freedom (Simpson's rule on the density)."""
    if x == 0.0:
        return 0.5
    if dof > 100_000:  # the normal, to better than 1e-5
        return NormalDist().cdf(x)
    a = abs(x)
    # Substituting x = tan(phi) makes the integrand smooth and the range finite.
    n = 2000
    phi = np.linspace(0.0, math.atan(a), n + 1)
    v = float(dof)
    log_c = math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)
    t = np.tan(phi)
    f = np.exp(log_c - (v + 1) / 2 * np.log1p(t * t / v)) / np.cos(phi) ** 2
    h = (phi[-1] - phi[0]) / n
    area = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    p = 0.5 + float(area)
    return p if x > 0 else 1.0 - p


def student_t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof >= 1`` degrees of freedom (bisection on
    the CDF, about 1e-9 absolute); the normal quantile for ``dof > 100000``."""
    return _t_quantile(float(p), int(dof))


@functools.lru_cache(maxsize=1024)
def _t_quantile(p: float, dof: int) -> float:
    """:func:`student_t_quantile`, cached: every query under a confidence needs it once per
    model and key, and the bisection costs milliseconds."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: must lie in (0, 1), got {p}")
    if dof < 1:
        raise ValueError(f"dof: must be at least 1, got {dof}")
    if p == 0.5:
        return 0.0
    z = NormalDist().inv_cdf(p)
    if dof > 100_000:
        return z
    if p < 0.5:
        return -_t_quantile(1.0 - p, dof)
    lo, hi = 0.0, max(2.0 * z, 1.0)
    while _t_cdf(hi, dof) < p:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, dof) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Bound:
    """What the engine needs to bound one fitted model (latency half or energy) at a confidence.

    ``z`` is the quantile ``t_{c, nu}``; ``cov`` and ``resid_var`` are the coefficient
    covariance and the squared residual scale (log space), unscaled.
    """

    z: float
    cov: np.ndarray
    resid_var: float
    dof: int

    def engine_args(self) -> tuple[np.ndarray, float]:
        """(z^2 cov, z^2 resid_var): the engine multiplies the square root by sign(z)."""
        z2 = self.z * self.z
        return np.ascontiguousarray(z2 * self.cov), z2 * self.resid_var


def bound_of(model: Any, confidence: float, what: str = "confidence") -> Bound:
    """The :class:`Bound` of a fitted latency half or energy model; ``ValueError`` naming the
    model when it has no recorded uncertainty."""
    if callable(getattr(model, "engine_template", None)):
        return _discovered_bound(model, confidence, what)
    name = type(model).__name__
    cov = getattr(model, "covariance_", None)
    scale = getattr(model, "residual_scale_", None)
    mask = getattr(model, "fixed_mask_", None)
    result = getattr(model, "fit_result_", None)
    if cov is None or scale is None or mask is None or result is None:
        raise ValueError(
            f"{what}: the {name} ({getattr(model, 'template_name', '?')}) records no "
            "uncertainty (coefficient covariance and residual scale); refit it to select "
            "under a confidence, or pass confidence=None"
        )
    n = int(result.n_samples)
    k = int(len(mask) - sum(bool(f) for f in mask))
    dof = n - k
    s = float(scale)
    if dof >= 1 and not math.isfinite(s):
        raise ValueError(
            f"{what}: the {name} records no residual scale (a model file written before it was "
            "recorded, or a failed fit); refit it to select under a confidence, or pass "
            "confidence=None"
        )
    if dof < 1 or not math.isfinite(s):
        raise ValueError(
            f"{what}: the {name} was fitted on {n} row(s) for {k} free coefficient(s), which "
            "leaves no residual spread to bound its predictions with; measure more "
            "configurations, or pass confidence=None"
        )
    return _bound(confidence, cov, s, dof)


def _discovered_bound(model: Any, confidence: float, what: str) -> Bound:
    """The bound of a DiscoveredModel: every coefficient and free exponent fitted on
    ``n_rows`` rows; its ``residual_scale_`` (the RMS of the log ratios) is corrected to
    ``n - k`` degrees of freedom like the templates' scale."""
    n, k = int(model.n_rows), int(model.n_params)
    dof = n - k
    rms = float(model.residual_scale_)
    cov = np.asarray(model.covariance_, dtype=np.float64)
    if dof < 1 or not math.isfinite(rms) or not np.isfinite(cov).any():
        raise ValueError(
            f"{what}: the DiscoveredModel ({n} row(s), {k} fitted parameter(s)) records no "
            "uncertainty to bound its predictions with (residual scale and covariance from a "
            "fit on more rows than parameters); pass confidence=None"
        )
    return _bound(confidence, cov, rms * math.sqrt(n / dof), dof)


def _bound(confidence: float, cov: Any, scale: float, dof: int) -> Bound:
    """The :class:`Bound` from a covariance (non-finite entries, unidentified directions, read
    as 0), a residual scale and its degrees of freedom."""
    c = np.nan_to_num(np.asarray(cov, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return Bound(student_t_quantile(confidence, dof), c, scale * scale, dof)


def _exponent(model: Any, X: Any, confidence: Any) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, exponent ``t sqrt(s^2 + g' Sigma g)`` of its bound) at each row of X."""
    c = check_confidence(confidence)
    if c is None:
        raise ValueError("confidence: a number in (0, 1) is needed for a bound")
    b = bound_of(model, c)
    pred, var = model._log_variance(model._features(X))
    rel = np.where(pred > 0, var, 0.0)
    return pred, b.z * np.sqrt(b.resid_var + rel)


def upper_bound(model: Any, X: Any, confidence: float) -> np.ndarray:
    """The upper bound ``u_c(x)`` of a fitted latency half or energy model at each row of
    ``X`` (numpy; the engine computes the same in C++)."""
    pred, a = _exponent(model, X, confidence)
    return np.asarray(pred * np.exp(a), dtype=np.float64)


def power_upper_bound(
    energy_model: Any, ttft_model: Any, tpot_model: Any, X: Any, confidence: float
) -> np.ndarray:
    """The upper bound of ``power_w = energy_j / latency_s`` at each row of ``X`` (numpy; the
    engine computes the same in C++): ``power_w exp(sqrt(a_E^2 + a_L^2))`` as in the module
    docstring, signed like the exponents. ``X`` needs the five feature columns (the
    ``output_len`` weights the TPOT half)."""
    e, a_e = _exponent(energy_model, X, confidence)
    t, a_t = _exponent(ttft_model, X, confidence)
    p, a_p = _exponent(tpot_model, X, confidence)
    # output_len from the feature table itself: the same column whatever kind the models are
    lout = np.asarray(as_model_features(X)[:, 4], dtype=np.float64)
    lat = t + lout * p
    with np.errstate(divide="ignore", invalid="ignore"):
        a_l = (t * a_t + lout * p * a_p) / lat
        a = np.copysign(np.sqrt(a_e * a_e + a_l * a_l), a_e + a_l)
        out = e / lat * np.exp(a)
    return np.asarray(np.where(lat > 0, out, np.nan), dtype=np.float64)
