"""Closed-form models fitted by the C++ Levenberg-Marquardt solver.

``EnergyModel`` is the energy template of DESIGN.md: joules per batch over all GPUs, twelve
coefficients in a prefill, a decode and a fixed term, with tensor- and pipeline-parallel terms
kept apart (``energy_v2`` by default, ``energy_v1`` on request; see ``docs/model.md``).
``TtftModel`` and ``TpotModel`` are the two halves of a latency model in the same shape. Every
model is a thin Python object around a template of the C++ core: the core evaluates, fits,
bootstraps; this module holds validation, names, persistence and presentation.
"""

from __future__ import annotations

import functools
import html
import json
import math
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

import numpy as np

from energycore import _core
from energycore._util.columns import (
    FEATURE_MAX,
    FEATURES,
    FloatArray,
    as_feature_array,
    as_model_features,
    as_target,
    as_weights,
)
from energycore._util.persist import check_format, read_json
from energycore.errors import ConvergenceWarning
from energycore.fit import provenance as _prov
from energycore.fit._filecheck import check_fit_section
from energycore.fit.results import (
    BootstrapResult,
    FitResult,
    IdentifiabilityWarning,
    check_level,
)

__all__ = [
    "BootstrapResult",
    "ConvergenceWarning",
    "EnergyModel",
    "FitManyResult",
    "FitResult",
    "IdentifiabilityWarning",
    "SolverParams",
    "TemplateModel",
    "TpotModel",
    "TtftModel",
]

#: Version of the JSON written by :meth:`TemplateModel.save`; older versions keep loading.
#: 2 added the ``reduce`` hyper-parameter and the fit's ``reduced`` and ``ranges``; 3 the
#: ``outliers`` hyper-parameter and the fit's ``outliers`` (rows the screen excluded).
FORMAT_VERSION = 3
_PKG_DIR = str(Path(__file__).resolve().parents[1])
#: Singular-value ratio below which columns of the scaled Jacobian count as collinear.
_COLLINEAR_RTOL = 1e-7
_LOSSES = ("linear", "huber", "soft_l1", "cauchy", "arctan")

M = TypeVar("M", bound="TemplateModel")
P = TypeVar("P", bound="SolverParams")


@functools.cache
def _template_info(name: str) -> dict[str, Any]:
    return _core.template_info(name)


_PERCENTILES = np.asarray(_prov.RESID_PERCENTILES, dtype=np.float64)
_FEATURE_LIMIT = np.array([FEATURE_MAX[f] for f in FEATURES], dtype=np.float64)


@functools.cache
def _param_names(template: str) -> tuple[str, ...]:
    return tuple(p["name"] for p in _template_info(template)["params"])


@functools.cache
def _param_arrays(template: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(typical, lower, upper) of a template's coefficients, read-only (copy to modify)."""
    info = _template_info(template)["params"]
    out = tuple(
        np.array([p[k] for p in info], dtype=np.float64) for k in ("typical", "lower", "upper")
    )
    for a in out:
        a.flags.writeable = False
    return out  # type: ignore[return-value]


def user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` made by the caller: the first frame outside energycore."""
    f = sys._getframe(1)
    level = 1
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back  # type: ignore[assignment]
        level += 1
    return level


@dataclass(frozen=True)
class _Prepared:
    """Validated fit input: features, target, weights, fixed flags/values, pinned indices.

    ``reduced`` maps the index of each coefficient the data cannot identify (set to its neutral
    value in ``values`` and flagged in ``flags``) to the reason; ``n_rows`` counts rows of
    positive weight.
    """

    X: FloatArray
    y: FloatArray
    w: FloatArray
    flags: list[bool]
    values: FloatArray
    pinned: list[int]
    n_free: int
    reduced: dict[int, str]
    n_rows: int
    #: Per feature (min, max) over the rows of positive weight, when the checks computed them.
    ranges: tuple[list[float], list[float]] | None = None

    @property
    def fixed_arg(self) -> list[bool]:
        return self.flags if any(self.flags) else []

    @property
    def fixed_values_arg(self) -> FloatArray:
        return self.values if any(self.flags) else np.empty(0)


def _check_outliers(d: Any, n_samples: int) -> dict[int, float]:
    """The ``outliers`` field of a model file (absent in older files): row index -> log ratio."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"model file: 'outliers' must be a mapping, got {type(d).__name__}")
    out: dict[int, float] = {}
    for k, v in d.items():
        if not (isinstance(k, str) and k.isdigit() and int(k) < max(n_samples, 1)):
            raise ValueError(f"model file: outliers: {k!r} is not a row index below {n_samples}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"model file: outliers[{k!r}] must be a finite number, got {v!r}")
        out[int(k)] = float(v)
    return out


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.4g}"


def _median(a: FloatArray) -> float:
    """``np.median`` of a non-empty 1-D float array (same value), without its dispatch overhead."""
    s = np.sort(a)
    h = len(s) // 2
    return float(s[h]) if len(s) % 2 else float((s[h - 1] + s[h]) / 2.0)


def _as_features(X: Any) -> FloatArray:
    """The feature table of ``X``: a plain ``(n, 5)`` numeric array (columns in the order of
    ``FEATURES``; the fast path, no copy when C-contiguous float64) or named columns."""
    if isinstance(X, np.ndarray) and X.dtype.names is None:
        if (
            type(X) is np.ndarray  # not a subclass (a masked array, say): as_feature_array
            and X.ndim == 2
            and X.shape[0] >= 1
            and X.shape[1] == len(FEATURES)
            and X.dtype == np.float64
            and X.flags.c_contiguous
            and _core.features_valid(X, _FEATURE_LIMIT)
        ):
            return X  # the checks passed in one C++ pass; a failure is named below
        return as_feature_array(X)
    return as_model_features(X)


class SolverParams:
    """Constructor parameters shared by every model fitted with the C++ LM solver.

    Parameters
    ----------
    loss : {"soft_l1", "linear", "huber", "cauchy", "arctan"}
        Robust loss applied to the log ratios, as in ``scipy.optimize.least_squares``.
    f_scale : float
        Soft margin between inlier and outlier log ratios (0.1 is about 10 %).
    n_starts : int
        Number of starting points (the first at typical values of the nonlinear coefficients,
        the rest drawn from their ranges with ``seed``); the best fit is kept.
    seed : int
        Seed of the multi-start draws and of ``bootstrap`` unless given there.
    fixed : dict of str to float, optional
        Coefficients held at given values, e.g. ``{"t3": 0.0}``.
    max_iter : int
        Maximum LM iterations per start.
    n_threads : int
        Threads for multi-start and bootstrap (0: all cores). Results do not depend on it.
    tol : float
        Stopping tolerance on the relative cost reduction, the relative step and the scaled
        gradient (scipy's ``ftol``, ``xtol``, ``gtol``; 1e-8 as scipy's default).
    reduce : bool
        ``True`` (default): fit what the data can identify. Coefficients whose term has no
        effect on any row (an axis that never varies), or that the rows cannot tell apart from
        others (collinear columns), are set to their neutral value (the one that removes the
        term); then nested reductions of the template that fit the number of rows are fitted
        and the one of least AICc (a Huber deviance of the log-ratio residuals on the
        largest model's robust scale) is kept. What was reduced and why is in
        ``reduced_``. ``False``: fit every coefficient not in ``fixed`` (terms with no effect on
        any row are still held, with an :class:`IdentifiabilityWarning`).
    outliers : float
        Gross-outlier screen (default 5; 0 turns it off). After the fit, a row whose log ratio
        ``log(predicted / measured)`` lies more than ``outliers`` robust standard deviations
        (``1.4826 * MAD`` of the log ratios, at least 0.02) from their median is excluded
        (weight 0) and the fit is repeated, up to three rounds; at most a fifth of the rows,
        the largest first, and only with at least 10 rows and 5 more than free coefficients.
        Excluded rows are never dropped silently: they are in ``outliers_`` (row index ->
        log ratio under the final fit), the repr and the model file.
    """

    def __init__(
        self,
        loss: str = "soft_l1",
        f_scale: float = 0.1,
        n_starts: int = 8,
        seed: int = 0,
        fixed: dict[str, float] | None = None,
        max_iter: int = 200,
        n_threads: int = 0,
        tol: float = 1e-8,
        reduce: bool = True,
        outliers: float = 5.0,
    ) -> None:
        self.loss = loss
        self.f_scale = f_scale
        self.n_starts = n_starts
        self.seed = seed
        self.fixed = fixed
        self.max_iter = max_iter
        self.n_threads = n_threads
        self.tol = tol
        self.reduce = reduce
        self.outliers = outliers

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        del deep
        return {
            "loss": self.loss,
            "f_scale": self.f_scale,
            "n_starts": self.n_starts,
            "seed": self.seed,
            "fixed": self.fixed,
            "max_iter": self.max_iter,
            "n_threads": self.n_threads,
            "tol": self.tol,
            "reduce": self.reduce,
            "outliers": self.outliers,
        }

    def set_params(self: P, **params: Any) -> P:
        """Set constructor parameters (scikit-learn convention); unknown names raise."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{k}: unknown parameter of {type(self).__name__}")
            setattr(self, k, v)
        return self

    def _check_solver_params(self) -> None:
        """``ValueError`` naming the first bad constructor parameter."""
        if self.loss not in _LOSSES:
            raise ValueError(
                f"loss: unknown loss {self.loss!r} (expected one of {', '.join(_LOSSES)})"
            )
        f = self.f_scale
        if not (isinstance(f, (int, float)) and math.isfinite(f) and f > 0):
            raise ValueError(f"f_scale: must be a positive finite number, got {f!r}")
        for name in ("n_starts", "max_iter"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        if not (isinstance(self.tol, (int, float)) and 0 < self.tol < 1):
            raise ValueError(f"tol: must lie in (0, 1), got {self.tol!r}")
        if not (
            isinstance(self.seed, (int, np.integer))
            and not isinstance(self.seed, bool)
            and 0 <= self.seed < 2**64
        ):
            raise ValueError(f"seed: must be an integer in [0, 2**64), got {self.seed!r}")
        if not (isinstance(self.n_threads, (int, np.integer)) and self.n_threads >= 0):
            raise ValueError(f"n_threads: must be a non-negative integer, got {self.n_threads!r}")
        if not isinstance(self.reduce, (bool, np.bool_)):
            raise ValueError(f"reduce: must be True or False, got {self.reduce!r}")
        o = self.outliers
        if not (
            isinstance(o, (int, float, np.integer, np.floating))
            and not isinstance(o, bool)
            and math.isfinite(o)
            and (o == 0 or o >= 2)
        ):
            raise ValueError(f"outliers: must be 0 (off) or a number >= 2, got {o!r}")


class TemplateModel(SolverParams):
    """A closed-form model of the C++ core fitted to positive data by log-ratio least squares.

    The fit minimises ``sum_i w_i * rho(log(f(x_i) / y_i))`` under the template's bounds with a
    robust loss ``rho``, multi-started from non-negative linear solves, so that small and large
    configurations weigh alike. Subclasses only name the template and the target. The
    constructor parameters are those of :class:`SolverParams`.
    """

    #: The template a model of this class uses unless its ``template`` parameter says otherwise.
    default_template: ClassVar[str] = ""
    #: Templates a model of this class may use (same coefficient names, same phases); a class
    #: that lists them takes the choice as its ``template`` constructor parameter.
    templates: ClassVar[tuple[str, ...]] = ()
    target: ClassVar[str] = ""
    #: Order in which the adaptive fit drops coefficients (first dropped first): refinements
    #: before the terms that carry most of the target. The last one is the smallest model.
    reduction_order: ClassVar[tuple[str, ...]] = ()
    #: The smallest model the choice among reductions goes down to (the terms that carry the
    #: target's main dependence, e.g. a batch-independent and a per-sequence part); only the
    #: identifiability checks and the number of rows remove them.
    core: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ metadata
    @property
    def template_name(self) -> str:
        """Name of the C++ template this model evaluates and fits."""
        return str(getattr(self, "template", None) or self.default_template)

    def template_info(self) -> dict[str, Any]:
        """Coefficient metadata of the template: names, units, bounds, descriptions, phases."""
        return _template_info(self.template_name)

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """Coefficient names in template order (the same for every template of the class)."""
        return _param_names(cls.default_template)

    @classmethod
    def phase_names(cls) -> tuple[str, ...]:
        """Names of the phases :meth:`predict_phases` splits a prediction into."""
        return tuple(_template_info(cls.default_template)["phases"])

    # ------------------------------------------------------------------ validation
    def _check_hyper(self) -> tuple[list[bool], FloatArray]:
        self._check_solver_params()
        info = self.template_info()["params"]
        names = self.param_names()
        flags = [False] * len(names)
        values = _param_arrays(self.template_name)[0].copy()
        for k, v in (self.fixed or {}).items():
            if k not in names:
                raise ValueError(
                    f"fixed: unknown coefficient {k!r} of {self.template_name} (known: {', '.join(names)})"
                )
            j = names.index(k)
            if not (
                isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))
            ):
                raise ValueError(f"fixed: value of {k!r} must be a finite number, got {v!r}")
            if not (info[j]["lower"] <= float(v) <= info[j]["upper"]):
                raise ValueError(
                    f"fixed: {k}={v} is outside its bounds [{info[j]['lower']}, {info[j]['upper']}]"
                )
            flags[j] = True
            values[j] = float(v)
        return flags, values

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _collinear(
        self, X: FloatArray, flags: list[bool], values: FloatArray, typical: FloatArray
    ) -> dict[int, str]:
        """Free coefficients to drop until the log-scaled Jacobian has full column rank.

        The Jacobian of ``log f`` at typical coefficients (the user's fixed values kept),
        columns normalised, is checked for a (near) null direction; of the coefficients in it,
        a nonlinear one (an exponent or overhead on an axis that does not vary enough) goes
        first, then the earliest in :attr:`reduction_order`.
        """
        names = self.param_names()
        info = self.template_info()["params"]
        theta = np.where(flags, values, typical)
        J = _core.template_jacobian(self.template_name, X, theta)
        f = np.abs(_core.template_value(self.template_name, X, theta))
        G = J / np.maximum(f, 1e-300)[:, None]
        order = {n: k for k, n in enumerate(self.reduction_order)}
        free = [j for j in range(len(names)) if not flags[j]]
        out: dict[int, str] = {}
        while len(free) > 1:
            A = G[:, free]
            norm = np.linalg.norm(A, axis=0)
            A = A / np.where(norm > 0, norm, 1.0)
            if A.shape[0] < A.shape[1]:  # fewer rows than terms: the budget decides, not here
                break
            sv = np.linalg.svd(A, compute_uv=False)  # the singular vectors only when needed
            if sv[-1] > _COLLINEAR_RTOL * sv[0]:
                break
            _, sv, Vt = np.linalg.svd(A, full_matrices=False)
            v = np.abs(Vt[-1])
            involved = [free[k] for k in range(len(free)) if v[k] > 0.1 * v.max()]
            drop = min(
                involved,
                key=lambda j: (info[j]["linear"], order.get(names[j], len(order)), -j),
            )
            others = [names[j] for j in involved if j != drop]
            out[drop] = "not separable from " + ", ".join(others) + " on these rows"
            free.remove(drop)
        return out

    # ------------------------------------------------------------------ fitting
    def fit(self: M, X: Any, y: Any, sample_weight: Any = None, x0: Any = None) -> M:
        """Fit the coefficients to measurements.

        With ``reduce=True`` (the default) the fit first decides from the rows which terms
        they can identify and fits the best nested reduction of the template (see
        :class:`SolverParams`); ``reduced_`` says what was reduced and why.

        Parameters
        ----------
        X : DataFrame, dict of arrays, structured array or ndarray of shape (n, 5)
            Columns ``tp``, ``pp``, ``batch``, ``input_len``, ``output_len`` and optionally
            ``n_gpus`` (others ignored). ``batch`` may be fractional (a time-averaged batch).
            A plain 2-D array holds the five columns in that order (``FEATURES``); a
            C-contiguous float64 one is checked in place (one vectorised pass per rule) and
            not copied: the fast path for many small fits.
        y : array-like or str
            The measured target (e.g. joules per batch), positive; or the name of a column of X.
        sample_weight : array-like, optional
            Non-negative weight of each row.
        x0 : dict of str to float or array-like, optional
            Start one LM run from these coefficients (all of them, by name or in template
            order) instead of the multi-start; e.g. a warm start from an earlier fit. A warm
            start fits the coefficients the data identify, with no choice among reductions.

        Returns
        -------
        self
        """
        prep = self._prepare(X, y, sample_weight)
        start = self._check_x0(x0, self.param_names(), *_param_arrays(self.template_name)[1:])
        return self._screen_outliers(prep, start)

    def _fit_recorded(self, prep: _Prepared, start: FloatArray) -> list[warnings.WarningMessage]:
        """:meth:`_fit_prepared`, its warnings recorded (only the kept fit's are shown)."""
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            self._fit_prepared(prep, start)
        return rec

    def _fit_prepared(self: M, prep: _Prepared, start: FloatArray) -> M:
        """One fit of prepared data: adaptive, or of every free coefficient (``x0`` given)."""
        if self.reduce and not len(start):
            return self._fit_adaptive(prep)
        prep = self._budget(prep)
        if len(start):
            start = np.where(prep.flags, prep.values, start)
        empty = np.empty(0)
        res = _core.fit_template(
            self.template_name, prep.X, prep.y, prep.w, prep.fixed_arg, prep.fixed_values_arg,
            empty, empty, x0=start, n_starts=int(self.n_starts), seed=int(self.seed),
            n_threads=int(self.n_threads), **self._solver_kwargs(),
        )  # fmt: skip
        return self._finish(res, prep)

    def _screen_outliers(self: M, prep: _Prepared, start: FloatArray) -> M:
        """Fit, exclude gross outliers and refit (see ``outliers``); the last fit's warnings."""
        rec = self._fit_recorded(prep, start)
        try:
            self._exclude_outliers(prep, start, rec)
        finally:
            for w in rec:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return self

    def _exclude_outliers(
        self, prep: _Prepared, start: FloatArray, rec: list[warnings.WarningMessage]
    ) -> None:
        self.outliers_: dict[int, float] = {}
        k = float(self.outliers)
        n_free = len(self.fixed_mask_) - sum(self.fixed_mask_)
        if k == 0 or prep.n_rows < 10 or prep.n_rows - n_free < 5:  # n_rows: weight > 0
            return
        if self._n_over == 0:  # the screen's first pass, made in C++ (_finish): nothing to flag
            return
        w0 = prep.w if len(prep.w) else np.ones(len(prep.y))
        rows = np.flatnonzero(w0 > 0)
        cap = len(rows) // 5
        flagged: list[int] = []
        for _ in range(3):
            r = self._log_ratio  # log(max(f, 1e-300) / y) of the last fit (_finish)
            ok = np.setdiff1d(rows, flagged) if flagged else rows
            med = _median(r[ok])
            sigma = max(1.4826 * _median(np.abs(r[ok] - med)), 0.02)
            dev = np.abs(r[rows] - med)
            over = rows[dev > k * sigma]
            new = sorted(over.tolist(), key=lambda i: -abs(r[i] - med))[:cap]
            if set(new) <= set(flagged):
                break
            flagged = sorted(set(flagged) | set(new), key=lambda i: -abs(r[i] - med))[:cap]
            w = w0.copy()
            w[flagged] = 0.0
            try:
                sub = self._prepare_table(prep.X, prep.y, w)
                rec[:] = self._fit_recorded(sub, start)
            except ValueError:  # the rows left cannot be fitted: keep every row, as unscreened
                rec[:] = self._fit_recorded(prep, start)
                return
        if flagged:
            r = self._log_ratio
            self.outliers_ = {int(i): float(r[i]) for i in sorted(flagged)}

    def _candidates(self, prep: _Prepared) -> list[list[bool]]:
        """Fixed-flag vectors of the nested reductions worth fitting, largest first."""
        names = self.param_names()
        order = {n: k for k, n in enumerate(self.reduction_order)}
        free = [j for j in range(len(names)) if not prep.flags[j]]
        seq = sorted(free, key=lambda j: order.get(names[j], -1))  # drop order
        n = prep.n_rows
        if not seq:
            return [list(prep.flags)]
        k_core = max(1, sum(1 for j in seq if names[j] in self.core))
        out = [
            [j not in seq[m:] for j in range(len(names))]
            for m in range(len(seq))
            if k_core <= len(seq) - m <= max(n - 2, 0)
        ]
        if not out and n >= 1:  # so few rows that no larger model leaves a degree of freedom
            m = max(len(seq) - min(k_core, n), 0)
            out.append([j not in seq[m:] for j in range(len(names))])
        if not out:
            raise ValueError(
                f"X: {n} row(s) cannot fit even the smallest {type(self).__name__} (one free "
                "coefficient); measure at least 1 configuration"
            )
        return out

    def _fit_adaptive(self: M, prep: _Prepared) -> M:
        """Fit every candidate reduction in one threaded C++ call; keep the least AICc."""
        names = self.param_names()
        cands = self._candidates(prep)
        # A coefficient a candidate drops is held at its neutral value 0 (its term removed).
        vals = [np.where(np.array(c) & ~np.array(prep.flags), 0.0, prep.values) for c in cands]
        results = _core.fit_template_batch(
            self.template_name, [prep.X] * len(cands), [prep.y] * len(cands),
            [prep.w] * len(cands), cands, vals,
            n_starts=int(self.n_starts), seed=int(self.seed), n_threads=int(self.n_threads),
            **self._solver_kwargs(),
        )  # fmt: skip
        n = prep.n_rows
        w = prep.w if len(prep.w) else np.ones(len(prep.y))
        w = w / w[w > 0].mean()
        resid = [
            np.log(
                np.maximum(
                    _core.template_value(self.template_name, prep.X, np.asarray(r["x"])), 1e-300
                )
                / prep.y
            )
            if r["status"] >= 0  # converged or at the iteration limit: x is usable
            else None
            for r in results
        ]
        # Scale of the residuals from the largest model that converged (a robust MAD with a
        # degrees-of-freedom correction); every candidate is then scored on the same scale,
        # a Huber deviance with the AICc penalty, so outliers the loss discounts do not
        # decide the choice.
        sigma = 1e-6
        for flags, r in zip(cands, resid):
            if r is not None:
                k = len(flags) - sum(flags)
                mad = 1.4826 * float(np.median(np.abs(r[w > 0] - np.median(r[w > 0]))))
                sigma = max(sigma, mad * math.sqrt(n / max(n - k, 1)))
                break
        best, best_score = -1, math.inf
        for c, (flags, res, r) in enumerate(zip(cands, results, resid)):
            if r is None:
                continue
            k = len(flags) - sum(flags)
            z = np.abs(r) / sigma
            if self.loss == "linear":
                dev = float(np.sum(w * z * z))
            else:
                h = 2.0
                dev = float(np.sum(w * np.where(z <= h, z * z, 2 * h * z - h * h)))
            aicc = dev + 2 * k
            aicc += 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else 1e6 * k
            nw = np.asarray(res["null_weight"])
            if len(nw) == len(flags) and any(
                nw[j] > 0.05 and not flags[j] and res["active"][j] == 0 for j in range(len(flags))
            ):
                aicc += 1e3  # a direction the fit cannot pin down: prefer a smaller model
            if aicc < best_score:
                best, best_score = c, aicc
        if best < 0:
            best = len(cands) - 1
        flags = cands[best]
        reduced = dict(prep.reduced)
        budget = n - 2
        for j in range(len(names)):
            if flags[j] and not prep.flags[j]:
                k_full = len(flags) - sum(prep.flags)
                reduced[j] = (
                    f"too few rows ({n}) for {k_full} terms; AICc chose a smaller model"
                    if k_full > budget and best == 0
                    else "AICc prefers the model without it"
                )
        final = _Prepared(
            prep.X, prep.y, prep.w, list(flags), vals[best], prep.pinned,
            len(flags) - sum(flags), reduced, n, prep.ranges,
        )  # fmt: skip
        return self._finish(results[best], final)

    def _solver_kwargs(self) -> dict[str, Any]:
        tol = float(self.tol)
        return {
            "loss": self.loss,
            "f_scale": float(self.f_scale),
            "max_iter": int(self.max_iter),
            "ftol": tol,
            "xtol": tol,
            "gtol": tol,
        }

    def _features(self, X: Any) -> FloatArray:
        """The feature table the template sees (``n_gpus`` applied; a plain ``(n, 5)`` array
        as it is, checked)."""
        return _as_features(X)

    def _prepare(self, X: Any, y: Any, sample_weight: Any) -> _Prepared:
        """Validate the data; set the coefficients the rows cannot identify to neutral values."""
        hyper = self._check_hyper()
        Xt = _as_features(X)
        n = len(Xt)
        yt = as_target(y, n, self.target or "y", X)
        w = as_weights(sample_weight, n)
        return self._prepare_table(Xt, yt, w, hyper)

    def _prepare_table(
        self,
        Xt: FloatArray,
        yt: FloatArray,
        w: FloatArray,
        hyper: tuple[list[bool], FloatArray] | None = None,
    ) -> _Prepared:
        """:meth:`_prepare` on validated arrays (the feature table, target and weights);
        ``hyper`` is :meth:`_check_hyper`'s answer when the caller has it."""
        flags, values = self._check_hyper() if hyper is None else (list(hyper[0]), hyper[1].copy())
        # One C++ call: the Jacobian at the start values on the rows of positive weight, the
        # coefficients it cannot see (a zero column) and, with reduce, a certificate that the
        # log-scaled Jacobian of the others has full rank; without one, _collinear decides.
        ident = _core.template_identify(
            self.template_name, Xt, w, flags, values, bool(self.reduce), _COLLINEAR_RTOL
        )
        pinned: list[int] = ident["pinned"]
        n_rows = int(ident["n_rows"])
        reduced: dict[int, str] = {}
        if pinned and not self.reduce:
            self._warn_unidentified(pinned, values)
        lo, hi = ident["lo"].tolist(), ident["hi"].tolist()
        if pinned:
            constant = [f"{FEATURES[k]}={lo[k]:g}" for k in range(len(lo)) if lo[k] == hi[k]]
            why = "no effect on any row" + (
                f" (constant {', '.join(constant)})" if constant else ""
            )
            for j in pinned:
                flags[j] = True
                if self.reduce:
                    values[j] = 0.0  # the neutral value: it removes the term
                    reduced[j] = why
        if self.reduce and not ident["full_rank"]:
            typical = _param_arrays(self.template_name)[0]
            Xr = Xt[w > 0] if len(w) else Xt
            for j, reason in self._collinear(Xr, flags, values, typical).items():
                flags[j] = True
                values[j] = 0.0
                reduced[j] = reason
        return _Prepared(
            Xt, yt, w, flags, values, pinned, len(flags) - sum(flags), reduced, n_rows, (lo, hi)
        )

    def _warn_unidentified(self, pinned: list[int], values: FloatArray) -> None:
        """Warn (without ``reduce``) that the ``pinned`` coefficients have no effect on any row
        and are held at ``values``."""
        names = self.param_names()
        warnings.warn(
            f"{type(self).__name__}: coefficients {', '.join(names[j] for j in pinned)} cannot "
            "be identified from these data (they have no effect on any row, e.g. every row "
            "has tp == 1 or pp == 1); they are held at "
            + ", ".join(f"{names[j]}={values[j]:g}" for j in pinned)
            + ". Predictions outside the measured range of tp/pp are unreliable; pass "
            "fixed={...} to choose their values, or reduce=True to let the fit decide.",
            IdentifiabilityWarning,
            stacklevel=user_stacklevel(),
        )

    def _budget(self, prep: _Prepared) -> _Prepared:
        """``ValueError`` unless the rows can determine the free coefficients (no reduction)."""
        if prep.n_rows < prep.n_free:
            raise ValueError(
                f"X: {prep.n_rows} row(s) cannot determine {prep.n_free} free coefficients; "
                f"measure at least {prep.n_free} configurations, fix some coefficients or pass "
                "reduce=True"
            )
        return prep

    def _finish(self: M, res: dict[str, Any], prep: _Prepared) -> M:
        """Store a solver result as the fitted state of this model."""
        if res["status"] < 0:
            raise ValueError(
                f"{type(self).__name__}: the fit failed ({res['message']}); check the data for "
                "rows the model cannot describe"
            )
        if res["status"] == 0:
            warnings.warn(
                f"{type(self).__name__}: the fit did not converge within max_iter="
                f"{self.max_iter} iterations (cost {res['cost']:.4g}, optimality "
                f"{res['optimality']:.3g}); the coefficients are the best reached. Raise max_iter, "
                "or check the data for rows the model cannot describe.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        names = self.param_names()
        n, flags = len(prep.X), prep.flags
        coef = np.asarray(res["x"], dtype=np.float64)
        cov = np.asarray(res["covariance"], dtype=np.float64)
        var = cov.diagonal().copy()
        var[np.asarray(flags)] = np.nan
        stderr = np.sqrt(np.where(var >= 0, var, np.nan))
        at_bound = {
            names[j]: ("lower" if a == -1 else "upper")
            for j, a in enumerate(res["active"])
            if a in (-1, 1)
        }
        self.coef_: FloatArray = coef
        self.params_: dict[str, float] = dict(zip(names, map(float, coef)))
        self.stderr_: dict[str, float] = dict(zip(names, map(float, stderr)))
        self.covariance_: FloatArray = cov
        self.fixed_mask_: tuple[bool, ...] = tuple(flags)
        self.unidentified_: tuple[str, ...] = tuple(names[j] for j in prep.pinned)
        self.reduced_: dict[str, str] = {names[j]: why for j, why in sorted(prep.reduced.items())}
        if prep.ranges is not None:
            lo, hi = prep.ranges
        else:
            rows = prep.w > 0 if len(prep.w) else np.ones(n, dtype=bool)
            Xr = prep.X[rows]
            lo, hi = Xr.min(axis=0).tolist(), Xr.max(axis=0).tolist()
        self.ranges_: dict[str, tuple[float, float]] | None = {
            f: (lo[k], hi[k]) for k, f in enumerate(FEATURES)
        }
        self.fit_result_ = FitResult(
            status=int(res["status"]), message=str(res["message"]), success=bool(res["success"]),
            iterations=int(res["iterations"]), n_fev=int(res["n_fev"]), n_jev=int(res["n_jev"]),
            cost=float(res["cost"]), optimality=float(res["optimality"]),
            start_index=int(res["start_index"]), at_bound=at_bound, n_samples=n,
        )  # fmt: skip
        self.residual_scale_: float = (
            math.sqrt(2 * res["cost"] / (n - prep.n_free)) if n > prep.n_free else float("nan")
        )
        if not self.reduce:
            self._warn_degenerate(np.asarray(res["null_weight"]))
        # log(measured / predicted) quantiles, for percentile serving limits (the same values
        # as provenance.residual_quantiles, computed in C++ with the residuals the outlier
        # screen reads)
        lr, q, n_over = _core.template_residuals(
            self.template_name, prep.X, prep.y, prep.w, coef, _PERCENTILES, float(self.outliers)
        )
        self._log_ratio: FloatArray = lr
        self._n_over: int = n_over  # rows past the outlier screen's threshold, -1: not known
        self.resid_quantiles_: dict[float, float] | None = (
            None if q is None else dict(zip(_prov.RESID_PERCENTILES, q.tolist()))
        )
        return self

    @overload
    @classmethod
    def fit_many(
        cls: type[M],
        Xs: Any,
        ys: Any,
        sample_weights: Any = None,
        *,
        as_arrays: Literal[False] = False,
        **params: Any,
    ) -> list[M]: ...

    @overload
    @classmethod
    def fit_many(
        cls: type[M],
        Xs: Any,
        ys: Any,
        sample_weights: Any = None,
        *,
        as_arrays: Literal[True],
        **params: Any,
    ) -> FitManyResult[M]: ...

    @classmethod
    def fit_many(
        cls: type[M],
        Xs: Any,
        ys: Any,
        sample_weights: Any = None,
        *,
        as_arrays: bool = False,
        **params: Any,
    ) -> list[M] | FitManyResult[M]:
        """Fit one model per independent problem, in one threaded C++ call (GIL released).

        The same as ``[cls(**params).fit(X, y, w) for X, y, w in zip(Xs, ys, sample_weights)]``
        (same coefficients), through :meth:`fit_groups`: with ``reduce=False`` every problem is
        fitted in a single call across threads; with ``reduce=True`` (the default) one call
        per problem fits its candidate reductions.

        ``as_arrays=True`` is the fast path for thousands of small problems: every problem is
        fitted in one threaded C++ call that writes into arrays, with no Python object per
        problem, and a :class:`FitManyResult` comes back (coefficients, costs, convergence as
        arrays; :meth:`FitManyResult.model` builds one problem's model on demand). It fits
        every coefficient the rows identify (``reduce=False``; a coefficient with no effect on
        any row of a problem is held at its typical value, as ``fit`` holds it) with the
        outlier screen off (``outliers=0``); passing ``reduce=True`` or ``outliers`` > 0 with it
        is a ``ValueError``. A problem whose fit fails or stops at ``max_iter`` is reported in
        ``status_`` / ``success_`` (one :class:`~energycore.errors.ConvergenceWarning` for all
        that stopped at the limit), not raised. Each coefficient vector equals the one
        ``fit_many(..., reduce=False, outliers=0)`` gives for that problem.

        Parameters
        ----------
        Xs : sequence or ndarray
            One feature table per problem (anything :meth:`fit` takes as ``X``). With
            ``as_arrays=True``: an array of shape ``(n_problems, n_rows, 5)`` (columns in the
            order of ``FEATURES``; C-contiguous float64 is used in place), or a sequence of
            tables with the same number of rows.
        ys : sequence or ndarray
            One target per problem (array-like, as ``y`` of :meth:`fit`); with
            ``as_arrays=True`` an array of shape ``(n_problems, n_rows)``.
        sample_weights : sequence or ndarray, optional
            One weight vector (or ``None``) per problem; with ``as_arrays=True`` an array of
            shape ``(n_problems, n_rows)``.
        as_arrays : bool
            Return a :class:`FitManyResult` (the fast path above) instead of a list of models.
        **params
            Constructor parameters shared by every model (``n_starts=1`` is the fastest; the
            default 8 starts cost about 8 times as much).

        Returns
        -------
        list or FitManyResult
            The fitted models, in the order of ``Xs``; or the arrays of every fit.
        """
        if as_arrays:
            return FitManyResult._fit(cls, Xs, ys, sample_weights, params)
        Xs, ys = list(Xs), list(ys)
        if len(Xs) != len(ys):
            raise ValueError(f"ys: {len(ys)} targets for {len(Xs)} problems in Xs")
        if not Xs:
            raise ValueError("Xs: no problems to fit")
        ws = [None] * len(Xs) if sample_weights is None else list(sample_weights)
        if len(ws) != len(Xs):
            raise ValueError(f"sample_weights: {len(ws)} entries for {len(Xs)} problems")
        tables, targets, weights = [], [], []
        for g, (X, y, w) in enumerate(zip(Xs, ys, ws)):
            try:
                Xt = _as_features(X)
                targets.append(as_target(y, len(Xt), cls.target or "y", X))
                wt = as_weights(w, len(Xt))
            except ValueError as e:
                raise ValueError(f"problem {g}: {e}") from None
            tables.append(Xt)
            weights.append(wt if len(wt) else np.ones(len(Xt)))
        labels = np.repeat(np.arange(len(tables)), [len(t) for t in tables])
        X_all = {f: np.concatenate([t[:, k] for t in tables]) for k, f in enumerate(FEATURES)}
        out = cls.fit_groups(
            X_all,
            np.concatenate(targets),
            labels,
            np.concatenate(weights) if sample_weights is not None else None,
            **params,
        )
        return [out[g] for g in range(len(tables))]

    @classmethod
    def fit_groups(
        cls: type[M], X: Any, y: Any, by: Any, sample_weight: Any = None, **params: Any
    ) -> dict[Any, M]:
        """Fit one model per group of rows, all groups in one threaded C++ call.

        Parameters
        ----------
        X, y, sample_weight
            As for :meth:`fit`.
        by : str or array-like
            A column of ``X`` (e.g. ``"gpu"``) or one label per row.
        **params
            Constructor parameters shared by every group's model.

        Returns
        -------
        dict
            Group label -> fitted model, in sorted label order.
        """
        from energycore._util.columns import get_column

        Xt_all = as_model_features(X)
        n = len(Xt_all)
        labels = get_column(X, by) if isinstance(by, str) else np.asarray(by)
        if labels.shape != (n,):
            raise ValueError(f"by: expected one label per row ({n}), got shape {labels.shape}")
        y_all = as_target(y, n, cls.target or "y", X)
        w_all = as_weights(sample_weight, n)
        keys = sorted(set(labels.tolist()))
        models, preps = [], []
        for key in keys:
            rows = np.flatnonzero(labels == key)
            m = cls(**params)
            sub = {name: Xt_all[rows, k] for k, name in enumerate(FEATURES)}
            try:
                prep = m._prepare(sub, y_all[rows], w_all[rows] if len(w_all) else None)
                if not m.reduce:
                    prep = m._budget(prep)
            except ValueError as e:
                raise ValueError(f"group {key!r}: {e}") from None
            models.append(m)
            preps.append(prep)
        if not models:
            raise ValueError("X: needs at least 1 row(s), got 0")
        if models[0].reduce:  # one threaded C++ call per group, over its candidate reductions
            out_r: dict[Any, M] = {}
            for key, m, prep in zip(keys, models, preps):
                try:
                    out_r[key] = m._screen_outliers(prep, np.empty(0))
                except ValueError as e:
                    raise ValueError(f"group {key!r}: {e}") from None
            return out_r
        first = models[0]
        results = _core.fit_template_batch(
            first.template_name, [p.X for p in preps], [p.y for p in preps], [p.w for p in preps],
            [p.fixed_arg for p in preps], [p.fixed_values_arg for p in preps],
            n_starts=int(first.n_starts), seed=int(first.seed), n_threads=int(first.n_threads),
            **first._solver_kwargs(),
        )  # fmt: skip
        out: dict[Any, M] = {}
        for key, m, prep, res in zip(keys, models, preps, results):
            try:
                out[key] = m._finish(res, prep)
                rec: list[warnings.WarningMessage] = []
                m._exclude_outliers(prep, np.empty(0), rec)
                for w in rec:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            except ValueError as e:
                raise ValueError(f"group {key!r}: {e}") from None
        return out

    @staticmethod
    def _check_x0(x0: Any, names: tuple[str, ...], lo: FloatArray, hi: FloatArray) -> FloatArray:
        """``x0`` as an array in template order, finite and within the bounds ``[lo, hi]``."""
        if x0 is None:
            return np.empty(0)
        if isinstance(x0, dict):
            unknown = sorted(set(x0) - set(names))
            if unknown:
                raise ValueError(f"x0: unknown coefficient(s) {', '.join(unknown)}")
            missing = [n for n in names if n not in x0]
            if missing:
                raise ValueError(f"x0: missing coefficient(s) {', '.join(missing)}")
            x0 = [x0[n] for n in names]
        a = np.asarray(x0, dtype=np.float64)
        if a.shape != (len(names),):
            raise ValueError(f"x0: expected {len(names)} coefficients, got shape {a.shape}")
        bad = ~(np.isfinite(a) & (lo <= a) & (a <= hi))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"x0: {names[j]}={a[j]} is not finite or outside [{float(lo[j])}, {float(hi[j])}]"
            )
        return a

    def _warn_degenerate(self, null_weight: FloatArray) -> None:
        """Warn about coefficients in directions the data cannot tell apart (from the solver)."""
        names = self.param_names()
        bad = [
            names[j]
            for j in range(len(names))
            if len(null_weight) == len(names)
            and null_weight[j] > 0.05
            and not self.fixed_mask_[j]
            and names[j] not in self.fit_result_.at_bound
        ]
        if bad:
            warnings.warn(
                f"{type(self).__name__}: the data cannot separate coefficients {', '.join(bad)} "
                "(their effects are proportional on every row, e.g. a single input_len); their "
                "individual values and standard errors are not meaningful, predictions on similar "
                "rows still are. Pass fixed={...} for some of them to remove the ambiguity.",
                IdentifiabilityWarning,
                stacklevel=user_stacklevel(),
            )

    # ------------------------------------------------------------------ prediction
    def predict(self, X: Any) -> FloatArray:
        """Predicted target for each row of ``X`` (e.g. joules per batch)."""
        self._check_fitted()
        out = _core.template_value(
            self.template_name, self._features(X), self.coef_, self.n_threads
        )
        bad = ~np.isfinite(out)
        if bad.any():  # inputs are within physical bounds: only absurd coefficients get here
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"X: row {i} gives a non-finite prediction ({out[i]}) with these coefficients"
            )
        return out

    def outside_range(self, X: Any) -> np.ndarray:
        """Which rows of ``X`` lie outside the range of some axis the model was fitted on.

        A prediction there is an extrapolation: for an axis that never varied in the fit (its
        terms reduced to neutral values) any other value is outside. Returns a boolean array
        (all ``False`` for a model loaded from a file that did not record ranges).
        """
        self._check_fitted()
        Xt = self._features(X)
        out = np.zeros(len(Xt), dtype=bool)
        for k, f in enumerate(FEATURES):
            lo, hi = (self.ranges_ or {}).get(f, (-math.inf, math.inf))
            out |= (Xt[:, k] < lo * (1 - 1e-9)) | (Xt[:, k] > hi * (1 + 1e-9))
        return out

    def predict_phases(self, X: Any) -> dict[str, FloatArray]:
        """The prediction split into phases (e.g. prefill, decode, fixed); they sum to predict."""
        self._check_fitted()
        P = _core.template_phases(self.template_name, self._features(X), self.coef_)
        return {name: np.ascontiguousarray(P[:, k]) for k, name in enumerate(self.phase_names())}

    def confidence_interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Asymptotic (normal) confidence interval of each coefficient from ``covariance_``.

        Fixed and unidentified coefficients get ``(nan, nan)``.
        """
        self._check_fitted()
        check_level(level)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return {
            n: (v - z * self.stderr_[n], v + z * self.stderr_[n]) for n, v in self.params_.items()
        }

    def predict_interval(self, X: Any, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
        """Prediction interval of each row at ``level``.

        The variance of ``log(prediction)`` is the delta-method propagation of ``covariance_``
        plus the residual variance of the fit (the scatter of new measurements), so the interval
        is multiplicative: ``(pred / k, pred * k)``.
        """
        self._check_fitted()
        check_level(level)
        pred, var = self._log_variance(self._features(X))
        s2 = self.residual_scale_**2 if math.isfinite(self.residual_scale_) else 0.0
        k = np.exp(NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(var + s2))
        return pred / k, pred * k

    def _log_variance(self, Xt: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(prediction, delta-method variance of ``log(prediction)`` from ``covariance_``) of
        each row of a feature table; coefficients without a covariance count as exact."""
        pred = _core.template_value(self.template_name, Xt, self.coef_)
        G = (
            _core.template_jacobian(self.template_name, Xt, self.coef_)
            / np.maximum(pred, 1e-300)[:, None]
        )
        cov = np.nan_to_num(self.covariance_, nan=0.0, posinf=0.0, neginf=0.0)
        return pred, np.maximum(np.einsum("ij,jk,ik->i", G, cov, G), 0.0)

    #: scikit-learn < 1.6 reads the estimator type from this attribute.
    _estimator_type: ClassVar[str] = "regressor"

    def __sklearn_tags__(self) -> Any:
        """scikit-learn (1.6+) estimator tags: a regressor of positive targets on 2-D input
        (five feature columns, or a frame / dict with them) that needs ``fit`` first."""
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags

        return Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True, positive_only=True),
            regressor_tags=RegressorTags(),
            input_tags=InputTags(two_d_array=True, dict=True),
            requires_fit=True,
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 of the predictions on ``(X, y)`` (the scikit-learn regressor convention, so that
        ``cross_val_score`` and ``GridSearchCV`` work); :meth:`metrics` gives the percentage
        error and the log-ratio RMSE too."""
        pred = self.predict(X)
        yt = as_target(y, len(pred), self.target or "y", X)
        w = np.ones_like(yt) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w.shape != yt.shape:
            raise ValueError(f"sample_weight: expected {len(yt)} weights, got shape {w.shape}")
        mean = float(np.average(yt, weights=w))
        ss_res = float(np.sum(w * (yt - pred) ** 2))
        ss_tot = float(np.sum(w * (yt - mean) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")

    def metrics(self, X: Any, y: Any) -> dict[str, float]:
        """Accuracy on ``(X, y)``: mean absolute percentage error, R^2 and RMSE of log ratios
        (what ``score`` returned before; ``score`` is now the R^2 float)."""
        pred = self.predict(X)
        yt = as_target(y, len(pred), self.target or "y", X)
        mape = float(np.mean(np.abs(pred - yt) / yt))
        ss_res = float(np.sum((yt - pred) ** 2))
        ss_tot = float(np.sum((yt - yt.mean()) ** 2))
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
        return {"mape": mape, "r2": r2, "rmse_log": float(np.sqrt(np.mean(np.log(pred / yt) ** 2)))}

    def bootstrap(
        self, X: Any, y: Any, n: int = 1000, seed: int | None = None, sample_weight: Any = None
    ) -> BootstrapResult:
        """Refit on ``n`` resampled data sets in one C++ call (threads, GIL released).

        Each replicate draws the rows with replacement (seeded per replicate, so the result does
        not depend on the thread count) and starts from the fitted coefficients.
        """
        self._check_fitted()
        if not (isinstance(n, (int, np.integer)) and n >= 1):
            raise ValueError(f"n: must be a positive integer, got {n!r}")
        if seed is not None and not (
            isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and 0 <= seed < 2**64
        ):
            raise ValueError(f"seed: must be an integer in [0, 2**64), got {seed!r}")
        Xt = self._features(X)
        yt = as_target(y, len(Xt), self.target or "y", X)
        w = as_weights(sample_weight, len(Xt))
        flags = list(self.fixed_mask_)
        empty = np.empty(0)
        B = _core.bootstrap_template(
            self.template_name, Xt, yt, w, self.coef_, flags if any(flags) else [],
            self.coef_ if any(flags) else empty, empty, empty,
            loss=self.loss, f_scale=float(self.f_scale), max_iter=int(self.max_iter), n=int(n),
            ftol=float(self.tol), xtol=float(self.tol), gtol=float(self.tol),
            seed=int(self.seed if seed is None else seed), n_threads=int(self.n_threads),
        )  # fmt: skip
        ok = np.isfinite(B).all(axis=1)
        return BootstrapResult(self.param_names(), np.ascontiguousarray(B[ok]), int((~ok).sum()))

    # ------------------------------------------------------------------ provenance
    def set_provenance(
        self: M,
        gpu: str | None = None,
        served_model: str | None = None,
        engine: str | None = None,
    ) -> M:
        """Record the GPU, served model and serving engine the data were measured on.

        Free text (``"H100"``, ``"llama-3.1-70b"``, ``"vllm"``), ``None`` for unknown; saved in
        the model file and shown in the repr. ``energycore select`` checks the recorded GPU and
        model against the simulator's catalogue to refuse configurations that cannot fit.
        Returns ``self``.
        """
        self._provenance = _prov.check_provenance(
            {"gpu": gpu, "served_model": served_model, "engine": engine}, "provenance"
        )
        return self

    @property
    def provenance(self) -> dict[str, str | None]:
        """``{"gpu", "served_model", "engine"}`` as recorded (``None``: unknown)."""
        return dict(getattr(self, "_provenance", None) or dict.fromkeys(_prov.PROVENANCE_FIELDS))

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (hyper-parameters and, when fitted, the fit)."""
        d: dict[str, Any] = {
            "format": "energycore.model",
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "template": self.template_name,
            "hyper": self.get_params(),
        }
        if hasattr(self, "coef_"):
            d["fit"] = {
                "params": self.params_,
                "stderr": {k: (v if math.isfinite(v) else None) for k, v in self.stderr_.items()},
                "covariance": [
                    [(v if math.isfinite(v) else None) for v in row]
                    for row in self.covariance_.tolist()
                ],
                "fixed_mask": list(self.fixed_mask_),
                "unidentified": list(self.unidentified_),
                "reduced": dict(self.reduced_),
                "ranges": None
                if self.ranges_ is None
                else {k: list(v) for k, v in self.ranges_.items()},
                "residual_scale": self.residual_scale_
                if math.isfinite(self.residual_scale_)
                else None,
                "result": asdict(self.fit_result_),
                "outliers": {str(i): r for i, r in getattr(self, "outliers_", {}).items()},
            }
            rq = _prov.dump_resid_quantiles(getattr(self, "resid_quantiles_", None))
            if rq is not None:
                d["fit"]["resid_quantiles"] = rq
        if any(self.provenance.values()):
            d["provenance"] = self.provenance
        return d

    def save(self, path: str | Path) -> None:
        """Write the model as versioned JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls: type[M], d: Any) -> M:
        """Rebuild a model from :meth:`to_dict` output; ``ValueError`` on anything malformed."""
        try:
            return cls._from_dict(d)
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"model file: malformed content ({type(e).__name__}: {e})") from None

    @classmethod
    def _from_dict(cls: type[M], d: Any) -> M:
        version = check_format(
            d, "energycore.model", FORMAT_VERSION, "model file", "an energycore model"
        )
        template = d.get("template")
        if version < 2:  # fitted before the adaptive fit: the full template, as it was
            d = {**d, "hyper": {**d["hyper"], "reduce": False}}
        allowed = cls.templates or (cls.default_template,)
        for sub in cls.__subclasses__():  # a file of a specialised class (MoeTpotModel, say)
            if template not in allowed and template == sub.default_template:
                return sub._from_dict(d)  # type: ignore[return-value]
        if template not in allowed:
            raise ValueError(
                f"model file: holds template {template!r}, {cls.__name__} takes "
                f"{' or '.join(map(repr, allowed))}"
            )
        hyper = dict(d["hyper"])
        if cls.templates:  # a class with a choice of templates takes a `template` parameter
            hyper.setdefault("template", template)  # files written before the parameter existed
        model = cls(**hyper)
        if model.template_name != template:
            raise ValueError(
                f"model file: 'template' is {template!r} but hyper-parameters say "
                f"{model.template_name!r}"
            )
        model._check_hyper()
        if d.get("provenance") is not None:  # absent in older files: unknown
            model._provenance = _prov.check_provenance(d["provenance"])
        fit = d.get("fit")
        if fit is None:
            return model
        names = cls.param_names()
        check_fit_section(fit, names, _template_info(template)["params"])
        params = fit["params"]
        if set(params) != set(names):
            raise ValueError(
                f"model file: coefficients {sorted(params)} do not match {list(names)}"
            )
        coef = np.array([params[k] for k in names], dtype=np.float64)
        if not np.isfinite(coef).all():
            raise ValueError("model file: non-finite coefficient")
        cov = np.array(
            [[np.nan if v is None else v for v in row] for row in fit["covariance"]],
            dtype=np.float64,
        )
        if cov.shape != (len(names), len(names)):
            raise ValueError(
                f"model file: covariance has shape {cov.shape}, expected {(len(names),) * 2}"
            )
        model.coef_ = coef
        model.params_ = dict(zip(names, map(float, coef)))
        model.stderr_ = {
            k: (np.nan if fit["stderr"][k] is None else float(fit["stderr"][k])) for k in names
        }
        model.covariance_ = cov
        model.fixed_mask_ = tuple(bool(b) for b in fit["fixed_mask"])
        if len(model.fixed_mask_) != len(names):
            raise ValueError("model file: fixed_mask has the wrong length")
        model.unidentified_ = tuple(fit.get("unidentified", ()))
        reduced = fit.get("reduced") or {}
        if not isinstance(reduced, dict) or not set(reduced) <= set(names):
            raise ValueError("model file: 'reduced' must map coefficient names to reasons")
        model.reduced_ = {str(k): str(v) for k, v in reduced.items()}
        ranges = fit.get("ranges")
        model.ranges_ = (
            None
            if ranges is None
            else {str(k): (float(v[0]), float(v[1])) for k, v in dict(ranges).items()}
        )
        rs = fit.get("residual_scale")
        model.residual_scale_ = float("nan") if rs is None else float(rs)
        result = dict(fit["result"])
        result["success"] = result["status"] > 0  # older files said True at the iteration limit
        model.fit_result_ = FitResult(**result)
        model.resid_quantiles_ = _prov.check_resid_quantiles(fit.get("resid_quantiles"))
        model.outliers_ = _check_outliers(fit.get("outliers"), model.fit_result_.n_samples)
        return model

    @classmethod
    def load(cls: type[M], path: str | Path) -> M:
        """Read a model written by :meth:`save`; ``ValueError`` for corrupt or future files."""
        return cls.from_dict(read_json(path, "model file"))

    # ------------------------------------------------------------------ presentation
    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        info = {p["name"]: p for p in self.template_info()["params"]}
        rows = []
        bounds = self.fit_result_.at_bound
        for j, (name, v) in enumerate(self.params_.items()):
            note = "fixed" if self.fixed_mask_[j] else ""
            if name in self.reduced_:
                note = f"reduced: {self.reduced_[name]}"
            elif name in self.unidentified_:
                note = "unidentified"
            elif name in bounds:
                note = f"at {bounds[name]} bound"
            rows.append((name, _fmt(v), _fmt(self.stderr_[name]), info[name]["unit"], note))
        return rows

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        head = f"{type(self).__name__}({hyper})"
        if not hasattr(self, "coef_"):
            return head + "  [not fitted]"
        r = self.fit_result_
        lines = [
            head,
            f"  {self.template_name}: {r.n_samples} rows, cost {r.cost:.4g}, "
            f"{r.iterations} iterations, {r.message.split(':')[0]}",
            f"  {'coef':<5} {'value':>11} {'stderr':>11}  {'unit':<10} note",
        ]
        for name, v, s, unit, note in self._rows():
            lines.append(f"  {name:<5} {v:>11} {s:>11}  {unit:<10} {note}".rstrip())
        out = getattr(self, "outliers_", {})
        if out:
            shown = ", ".join(f"{i} (x{math.exp(-r):.3g})" for i, r in list(out.items())[:8])
            more = f" and {len(out) - 8} more" if len(out) > 8 else ""
            lines.append(f"  outliers excluded (row, measured / predicted): {shown}{more}")
        where = _prov.describe(self.provenance)
        if where:
            lines.append(f"  fitted on (gpu, served model, engine): {where}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not hasattr(self, "coef_"):
            return f"<pre>{html.escape(repr(self))}</pre>"
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self._rows()
        )
        r = self.fit_result_
        return (
            f"<div><b>{html.escape(type(self).__name__)}</b> ({self.template_name}, "
            f"{r.n_samples} rows, cost {r.cost:.4g}, {html.escape(r.message)})"
            "<table><thead><tr><th>coef</th><th>value</th><th>stderr</th><th>unit</th>"
            f"<th>note</th></tr></thead><tbody>{cells}</tbody></table></div>"
        )


class FitManyResult(Generic[M]):
    """The fits of :meth:`TemplateModel.fit_many` with ``as_arrays=True``: one row per problem.

    Attributes
    ----------
    coef_ : ndarray of shape (n_problems, n_params)
        Fitted coefficients, template order (:attr:`param_names`).
    cost_ : ndarray of shape (n_problems,)
        Final robust, weighted cost of each fit.
    success_ : ndarray of bool, shape (n_problems,)
        The solver converged (``status_ > 0``).
    status_ : ndarray of int, shape (n_problems,)
        As :attr:`FitResult.status`: 0 ``max_iter`` reached, 1-3 converged, -1 failed (the
        model gave non-finite values at the start; its ``coef_`` row is not a fit).
    n_iter_ : ndarray of int, shape (n_problems,)
        LM iterations of each fit.
    optimality_ : ndarray of shape (n_problems,)
        Scaled projected-gradient norm at the solution.
    fixed_mask_ : ndarray of bool, shape (n_problems, n_params)
        Coefficients held: the user's ``fixed`` and those with no effect on a problem's rows.
    covariance_ : ndarray of shape (n_problems, n_params, n_params)
        Coefficient covariance of each fit (as ``covariance_`` of a model).
    param_names : tuple of str
        Coefficient names.
    """

    def __init__(
        self,
        cls: type[M],
        params: dict[str, Any],
        X: FloatArray,
        y: FloatArray,
        w: FloatArray,
        values: FloatArray,
        res: dict[str, Any],
    ) -> None:
        self._cls = cls
        self._params = params
        self._X, self._y, self._w, self._values = X, y, w, values
        self._res = res
        self.param_names: tuple[str, ...] = cls.param_names()
        self.coef_: FloatArray = res["x"]
        self.cost_: FloatArray = res["cost"]
        self.status_: np.ndarray = res["status"]
        self.success_: np.ndarray = res["status"] > 0
        self.n_iter_: np.ndarray = res["iterations"]
        self.optimality_: FloatArray = res["optimality"]
        self.fixed_mask_: np.ndarray = res["active"] == 2
        self.covariance_: FloatArray = res["covariance"]

    def __len__(self) -> int:
        return int(self.coef_.shape[0])

    def __repr__(self) -> str:
        n_limit = int((self.status_ == 0).sum())
        n_failed = int((self.status_ < 0).sum())
        return (
            f"FitManyResult({self._cls.__name__}, {len(self)} problems, "
            f"{int(self.success_.sum())} converged, {n_limit} at max_iter, {n_failed} failed)"
        )

    def model(self, i: int) -> M:
        """The fitted model of problem ``i``, built on demand (the same state as the model
        ``fit_many(..., reduce=False, outliers=0)`` returns for it); ``ValueError`` for a
        problem whose fit failed."""
        n = len(self)
        if not (isinstance(i, (int, np.integer)) and not isinstance(i, bool) and -n <= i < n):
            raise ValueError(f"i: must be a problem index in [0, {n}), got {i!r}")
        i = int(i) % n
        m = self._cls(**self._params)
        r = self._res
        flags = [bool(v) for v in self.fixed_mask_[i]]
        pinned = [int(j) for j in np.flatnonzero(r["pinned"][i])]
        values = self._values.copy()
        w = self._w[i] if len(self._w) else np.empty(0)
        n_rows = int((w > 0).sum()) if len(w) else len(self._y[i])
        prep = _Prepared(
            self._X[i], self._y[i], w, flags, values, pinned,
            len(flags) - sum(flags), {}, n_rows,
        )  # fmt: skip
        status = int(r["status"][i])
        one = {
            "x": self.coef_[i].copy(), "cost": float(self.cost_[i]), "status": status,
            "message": r["messages"][status], "success": status > 0,
            "iterations": int(r["iterations"][i]), "n_fev": int(r["n_fev"][i]),
            "n_jev": int(r["n_jev"][i]), "optimality": float(r["optimality"][i]),
            "start_index": int(r["start_index"][i]), "active": [int(a) for a in r["active"][i]],
            "covariance": self.covariance_[i].copy(), "null_weight": r["null_weight"][i],
        }  # fmt: skip
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", IdentifiabilityWarning)  # reported by fit_many
                m._finish(one, prep)
        except ValueError as e:
            raise ValueError(f"problem {i}: {e}") from None
        m.outliers_ = {}
        return m

    @staticmethod
    def _fit(
        cls: type[M], Xs: Any, ys: Any, sample_weights: Any, params: dict[str, Any]
    ) -> FitManyResult[M]:
        for name, off in (("reduce", False), ("outliers", 0)):
            if name in params and params[name] != off:
                raise ValueError(
                    f"{name}: fit_many(as_arrays=True) fits every coefficient with the outlier "
                    f"screen off (reduce=False, outliers=0), got {name}={params[name]!r}; use "
                    "as_arrays=False for the adaptive or screened fit of each problem"
                )
        params = {**params, "reduce": False, "outliers": 0}
        proto = cls(**params)
        flags, values = proto._check_hyper()
        if isinstance(Xs, np.ndarray) and Xs.dtype.names is None:
            X = as_feature_array(Xs, what="Xs", ndim=3)
        else:
            tables = []
            for g, Xg in enumerate(Xs):
                try:
                    tables.append(_as_features(Xg))
                except ValueError as e:
                    raise ValueError(f"problem {g}: {e}") from None
            if not tables:
                raise ValueError("Xs: no problems to fit")
            if len({len(t) for t in tables}) > 1:
                raise ValueError(
                    "Xs: as_arrays=True needs the same number of rows in every problem, got "
                    f"{sorted({len(t) for t in tables})}; pad with zero-weight rows or use "
                    "as_arrays=False"
                )
            X = np.stack(tables)
        k, n = X.shape[0], X.shape[1]
        y = _as_stack(ys, (k, n), cls.target or "ys", positive=True)
        w = np.empty(0)
        if sample_weights is not None:
            w = _as_stack(sample_weights, (k, n), "sample_weights", positive=False)
            none = np.flatnonzero(~(w > 0).any(axis=1))
            if len(none):
                raise ValueError(f"sample_weights: all weights are zero in problem {none[0]}")
        res = _core.fit_template_arrays(
            proto.template_name, X, y, w, flags if any(flags) else [],
            values if any(flags) else np.empty(0), n_starts=int(proto.n_starts),
            seed=int(proto.seed), n_threads=int(proto.n_threads), pin_unidentified=True,
            covariance=True, **proto._solver_kwargs(),
        )  # fmt: skip
        names = cls.param_names()
        pinned = np.asarray(res["pinned"])
        if pinned.any():
            held = ", ".join(names[j] for j in np.flatnonzero(pinned.any(axis=0)))
            warnings.warn(
                f"{cls.__name__}.fit_many: in {int(pinned.any(axis=1).sum())} of {k} problems "
                f"some coefficients ({held}) have no effect on any row and are held at their "
                "typical values (fixed_mask_ says which); predictions outside the measured "
                "range of tp/pp are unreliable for those problems.",
                IdentifiabilityWarning,
                stacklevel=user_stacklevel(),
            )
        n_limit = int((res["status"] == 0).sum())
        if n_limit:
            warnings.warn(
                f"{cls.__name__}.fit_many: {n_limit} of {k} fits did not converge within "
                f"max_iter={proto.max_iter} iterations (status_ == 0; their coefficients are the "
                "best reached). Raise max_iter or check those problems' data.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return FitManyResult(cls, params, X, y, w, values, res)


def _as_stack(a: Any, shape: tuple[int, int], what: str, *, positive: bool) -> FloatArray:
    """A ``(n_problems, n_rows)`` float64 array of finite values, positive (targets) or
    non-negative (weights); ``ValueError`` naming the problem and the row."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and arr.dtype.itemsize > 8):
        raise ValueError(f"{what}: expected real numbers (float64), got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{what}: expected shape {shape} (one row per problem), got {arr.shape}")
    for bad, rule in (
        (~np.isfinite(arr), "must be finite"),
        (
            arr <= 0 if positive else arr < 0,
            "must be positive" if positive else "must be non-negative",
        ),
    ):
        if bad.any():
            g, i = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"{what}: {rule}, got {arr[g, i]} at problem {g}, row {i}")
    return arr


class EnergyModel(TemplateModel):
    """Energy of one batch over all GPUs, in joules (DESIGN.md's template, twelve coefficients).

    ``E = E_prefill + E_decode + E_fixed``: prefill work and attention with a tensor-parallel power
    law ``tp**t3`` and a pipeline overhead ``1 + t4*(pp-1)`` plus all-reduce energy; decode steps
    with a batch-independent part ``t6`` (why batching saves energy), per-token work, KV-cache reads,
    ``tp**t9``, ``1 + t10*(pp-1)`` and all-reduce; ``t12`` joules per GPU per batch. Energy per
    request is ``predict(X) / batch``.

    Parameters
    ----------
    template : {"energy_v2", "energy_v1"}, default "energy_v2"
        ``energy_v2`` charges all-reduce energy (``t5``, ``t11``) in proportion to ``tp - 1``,
        the GPU-time a ring all-reduce costs summed over the tp GPUs taking part; ``energy_v1``
        uses the per-GPU share ``1 - 1/tp`` of the first design. Same coefficient names, bounds
        and phases. See ``docs/model.md`` for why v2 is the default.
    loss, f_scale, n_starts, seed, fixed, max_iter, n_threads, tol
        As for every template model (:class:`SolverParams`).

    Examples
    --------
    >>> model = EnergyModel().fit(frame, frame["energy_j"])        # doctest: +SKIP
    >>> model.predict(frame.head())                                  # doctest: +SKIP
    """

    default_template: ClassVar[str] = "energy_v2"
    templates: ClassVar[tuple[str, ...]] = ("energy_v2", "energy_v1")
    target: ClassVar[str] = "energy_j"
    reduction_order: ClassVar[tuple[str, ...]] = (
        "t2", "t8", "t4", "t10", "t5", "t11", "t3", "t9", "t1", "t12", "t6", "t7",
    )  # fmt: skip
    core: ClassVar[tuple[str, ...]] = ("t6", "t7")

    def __init__(
        self,
        loss: str = "soft_l1",
        f_scale: float = 0.1,
        n_starts: int = 8,
        seed: int = 0,
        fixed: dict[str, float] | None = None,
        max_iter: int = 200,
        n_threads: int = 0,
        tol: float = 1e-8,
        template: str = "energy_v2",
        reduce: bool = True,
        outliers: float = 5.0,
    ) -> None:
        super().__init__(
            loss, f_scale, n_starts, seed, fixed, max_iter, n_threads, tol, reduce, outliers
        )
        self.template = template

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        return {**super().get_params(deep), "template": self.template}

    def _check_hyper(self) -> tuple[list[bool], FloatArray]:
        if self.template not in self.templates:
            raise ValueError(
                f"template: unknown energy template {self.template!r} "
                f"(expected one of {', '.join(self.templates)})"
            )
        return super()._check_hyper()

    def predict_per_request(self, X: Any) -> FloatArray:
        """Predicted energy per request, joules: ``predict(X) / batch``."""
        return self.predict(X) / _as_features(X)[:, FEATURES.index("batch")]


class TtftModel(TemplateModel):
    """Time to first token of a batch, seconds (template ``ttft_v1``, six coefficients)."""

    default_template: ClassVar[str] = "ttft_v1"
    target: ClassVar[str] = "ttft_s"
    reduction_order: ClassVar[tuple[str, ...]] = ("a2", "a4", "a5", "a3", "a1", "a6")
    core: ClassVar[tuple[str, ...]] = ("a1", "a6")


class TpotModel(TemplateModel):
    """Time per output token during decode, seconds (template ``tpot_v2``, seven coefficients).

    ``tpot = (c1 + c2 b^(1 + c7) + c3 b (Lin + Lout/2)) tp^c4 pp^c5 + c6 b (1 - 1/tp)``: the
    ``tpot_v1`` form with a power law in the batch for the per-sequence decode time (``c7 = 0``
    is ``tpot_v1``; the adaptive fit keeps ``c7`` only when the rows support it). Files written
    with ``tpot_v1`` load as ``tpot_v2`` with ``c7 = 0`` (the same predictions), recorded in
    ``reduced_``. See docs/model.md.
    """

    default_template: ClassVar[str] = "tpot_v2"
    target: ClassVar[str] = "tpot_s"
    reduction_order: ClassVar[tuple[str, ...]] = ("c3", "c5", "c6", "c7", "c4", "c2", "c1")
    core: ClassVar[tuple[str, ...]] = ("c1", "c2")

    @classmethod
    def _from_dict(cls: type[M], d: Any) -> M:
        if (
            cls.default_template == "tpot_v2"
            and isinstance(d, dict)
            and d.get("template") == "tpot_v1"
        ):
            d = _tpot_v1_as_v2(d)
        return super()._from_dict(d)  # type: ignore[misc]


def _tpot_v1_as_v2(d: dict[str, Any]) -> dict[str, Any]:
    """A ``tpot_v1`` model file as the ``tpot_v2`` one of the same predictions (``c7 = 0``)."""
    d = {**d, "template": "tpot_v2"}
    fit = d.get("fit")
    if not isinstance(fit, dict):
        return d
    fit = dict(fit)
    try:
        fit["params"] = {**fit["params"], "c7": 0.0}
        fit["stderr"] = {**fit["stderr"], "c7": None}
        fit["covariance"] = [[*row, None] for row in fit["covariance"]] + [
            [None] * (len(fit["covariance"]) + 1)
        ]
        fit["fixed_mask"] = [*fit["fixed_mask"], True]
        fit["reduced"] = {**(fit.get("reduced") or {}), "c7": "fitted as tpot_v1 (no batch power)"}
    except (TypeError, AttributeError):
        return d  # malformed: the checks of _from_dict name the field
    d["fit"] = fit
    return d


class MoeTpotModel(TpotModel):
    """Time per output token of a mixture-of-experts model (template ``tpot_moe_v1``).

    ``tpot_v1`` plus expert coverage: a decode step over ``b`` sequences, each routed to a
    fraction ``c8`` (= k/E) of the experts, reads the expected share ``1 - (1 - c8)^b`` of the
    expert weights, so its weight-streaming time grows with the batch and saturates::

        tpot = (c1 + c7 (1 - (1 - c8)^b) + c2 b + c3 b (Lin + Lout/2)) tp^c4 pp^c5
               + c6 b (1 - 1/tp)

    ``c1`` is the step time of the always-read weights, ``c7`` that of all experts. Pin ``c8``
    when the routing is known (``fixed={"c8": k / E}``, e.g. 2/8 for Mixtral-8x7B); otherwise it
    is fitted, which needs rows at several batch sizes. The adaptive fit can drop the expert
    term (``c7``, ``c8``) and fall back to ``tpot_v1``'s form when the data do not support it.
    See docs/model.md.
    """

    default_template: ClassVar[str] = "tpot_moe_v1"
    reduction_order: ClassVar[tuple[str, ...]] = (
        "c3", "c5", "c6", "c4", "c8", "c7", "c2", "c1",
    )  # fmt: skip
