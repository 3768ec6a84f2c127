"""Structure discovery: find a closed form for energy from profiling data (issue 14).

:func:`discover` searches sparse sums of candidate terms, each a product of powers of the model
features (``batch``, ``input_len``, ``output_len``, ``tp``, ``pp``, ``n_gpus``, ``tp-1``, ``pp-1``,
user columns) times a non-negative coefficient::

    y ~ c_1 * t_1(x) + ... + c_k * t_k(x),    c_j >= 0

The search is a forward beam search over the candidate terms with a swap refinement at each
size, each subset fitted by non-negative least squares on the relative error (the C++
Lawson-Hanson ``_core.nnls``), each size's best subset scored by K-fold cross-validated RMS of
``log(prediction / y)``. The subsets on the front are then refitted by the C++
Levenberg-Marquardt solver (``_core.least_squares``) on log-ratio residuals, like
:class:`~energycore.fit.EnergyModel`, with bounds, an optional robust loss and optional free
exponents. The result (:class:`Discovery`) holds the Pareto front of CV error against the number
of terms, each entry a :class:`DiscoveredModel` with the ``EnergyModel`` API (``predict``,
``predict_interval``, ``score``, ``to_dict``/``from_dict``, ``save``/``load``), a printable
formula (plain text and LaTeX) and coefficients with units.

Constraints combine (:class:`Constraints`): every coefficient is non-negative (so energy and
each phase are non-negative); ``monotone_batch`` keeps energy per request ``y / batch``
non-increasing in ``batch`` (every term's batch exponent at most 1, also as the bound of a free
batch exponent); ``exponent_bounds`` bound any variable's exponent; ``require`` and ``exclude``
name variables that must / must not appear.

Use in a :class:`~energycore.space.ConfigSpace`: a model is usable everywhere an
``EnergyModel`` is, ``space.argmin("energy_j", models=model)``, ``models={"H100": m1, ...}``
and :class:`~energycore.space.Selector`: the C++ engine evaluates it as a generic term-sum
template (:meth:`DiscoveredModel.engine_template`), with its gradient for the confidence bounds
when its target is a latency (``ttft_s``, ``tpot_s``). Its terms may use the model inputs of a
space (``tp``, ``pp``, ``batch``, ``input_len``, ``output_len``, ``n_gpus``, ``tp-1``,
``pp-1``); a form over user columns is a scorer (``scorers={"e": model}``) or a derived column
(``derived={"e": model.to_expression()}``) instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from energycore import _core
from energycore._util.columns import as_float, column_names, get_column
from energycore._util.persist import check_format, read_json
from energycore.fit import provenance as _prov
from energycore.fit.results import check_level

__all__ = [
    "BASE_VARIABLES",
    "ENGINE_VARIABLES",
    "Constraints",
    "DiscoveredModel",
    "Discovery",
    "Term",
    "default_terms",
    "discover",
]

FloatArray = npt.NDArray[np.float64]
FORMAT = "energycore.discovered"
FORMAT_VERSION = 1

#: Variables available without user columns: name -> (unit, how it is computed).
BASE_VARIABLES: dict[str, str] = {
    "batch": "seq",
    "input_len": "tok",
    "output_len": "tok",
    "tp": "GPU",
    "pp": "GPU",
    "n_gpus": "GPU",
    "tp-1": "GPU",
    "pp-1": "GPU",
}
_LATEX = {
    "batch": "b",
    "input_len": r"L_{\mathrm{in}}",
    "output_len": r"L_{\mathrm{out}}",
    "tp": r"\mathrm{tp}",
    "pp": r"\mathrm{pp}",
    "n_gpus": "N",
    "tp-1": r"(\mathrm{tp}-1)",
    "pp-1": r"(\mathrm{pp}-1)",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(-1)?$")


def _fmt_exp(e: float) -> str:
    return str(int(e)) if float(e).is_integer() else f"{e:.6g}"


# ------------------------------------------------------------------------------------ terms
@dataclass(frozen=True, order=True)
class Term:
    """A product of powers of variables, e.g. ``batch*output_len*tp^-1``; ``()`` is the constant.

    ``factors`` is a sorted tuple of ``(variable, exponent)`` with non-zero exponents.
    """

    factors: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, factors: Mapping[str, float] | Iterable[tuple[str, float]]) -> Term:
        """A term from ``{variable: exponent}`` (zero exponents dropped, repeats multiplied)."""
        items = factors.items() if isinstance(factors, Mapping) else factors
        acc: dict[str, float] = {}
        for v, e in items:
            if not isinstance(v, str) or not _NAME.match(v):
                raise ValueError(f"terms: {v!r} is not a variable name")
            e = float(e)
            if not math.isfinite(e):
                raise ValueError(f"terms: exponent of {v!r} must be finite, got {e}")
            acc[v] = acc.get(v, 0.0) + e
        return cls(tuple(sorted((v, e) for v, e in acc.items() if e != 0.0)))

    @classmethod
    def parse(cls, text: str) -> Term:
        """Parse ``"1"``, ``"batch*input_len"``, ``"output_len/tp"``, ``"batch^0.5*tp**-1"``."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"terms: expected a term like 'batch*output_len', got {text!r}")
        src = text.replace(" ", "").replace("**", "^")
        if src == "1":
            return cls()
        parts = re.split(r"([*/])", src)
        factors: list[tuple[str, float]] = []
        sign = 1.0
        for p in parts:
            if p in ("*", "/"):
                sign = 1.0 if p == "*" else -1.0
                continue
            if p == "1":
                continue
            name, _, exp = p.partition("^")
            if name.startswith("(") and name.endswith(")"):
                name = name[1:-1]
            try:
                e = float(exp) if exp else 1.0
            except ValueError:
                raise ValueError(f"terms: bad exponent {exp!r} in {text!r}") from None
            if not _NAME.match(name):
                raise ValueError(f"terms: {name!r} in {text!r} is not a variable name")
            factors.append((name, sign * e))
        return cls.of(factors)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self.factors)

    def exponent(self, var: str) -> float:
        return dict(self.factors).get(var, 0.0)

    def __str__(self) -> str:
        if not self.factors:
            return "1"
        out = []
        for v, e in self.factors:
            name = f"({v})" if v.endswith("-1") else v
            out.append(name if e == 1.0 else f"{name}^{_fmt_exp(e)}")
        return "*".join(out)

    def latex(self) -> str:
        if not self.factors:
            return "1"
        out = []
        for v, e in self.factors:
            sym = _LATEX.get(v, r"\mathrm{" + v.replace("_", r"\_") + "}")
            out.append(sym if e == 1.0 else f"{sym}^{{{_fmt_exp(e)}}}")
        return r" \, ".join(out)

    def expression(self) -> str:
        """The term in the ConfigSpace expression language (``tp - 1`` spelled out)."""
        if not self.factors:
            return "1"
        out = []
        for v, e in self.factors:
            base = f"({v[:-2]} - 1)" if v.endswith("-1") else v
            out.append(base if e == 1.0 else f"{base} ** {e!r}")
        return " * ".join(out)

    def unit(self, target_unit: str, units: Mapping[str, str]) -> str:
        """Unit of this term's coefficient: the target's over the variables'."""
        power: dict[str, float] = {}
        for v, e in self.factors:
            u = units.get(v, "1")
            if u != "1":
                power[u] = power.get(u, 0.0) + e
        num: list[str] = []
        den: list[str] = []
        for u, e in power.items():
            if e == 0:
                continue
            p = abs(e)
            s = u if p == 1.0 else f"{u}^{_fmt_exp(p)}"
            (den if e > 0 else num).append(s)
        top = "·".join([target_unit, *num]) if num else target_unit
        return top if not den else f"{top}/({'·'.join(den)})" if len(den) > 1 else f"{top}/{den[0]}"

    def phase(self) -> str:
        """``decode`` if it has output_len, ``prefill`` if input_len (not output_len), else fixed."""
        vs = self.variables
        return "decode" if "output_len" in vs else "prefill" if "input_len" in vs else "fixed"


def _as_term(t: Any) -> Term:
    if isinstance(t, Term):
        return t
    if isinstance(t, str):
        return Term.parse(t)
    if isinstance(t, Mapping):
        return Term.of(t)
    raise ValueError(f"terms: expected a str, a Term or a mapping, got {type(t).__name__}")


def default_terms(variables: Sequence[str] | None = None) -> list[Term]:
    """The default candidate library (40 terms over the base variables present).

    Token products (1, b, L_in, L_out, b L_in, b L_out, L_in L_out, b L_in L_out, b L_in^2)
    alone, the first six of them times each parallelism factor (n_gpus, tp-1, pp-1, 1/tp),
    attention-like products over tp or n_gpus and sqrt(b) L_out (alone and times n_gpus). No
    ``tp`` or ``pp`` factor: ``x*tp = x + x*(tp-1)`` would make the library linearly dependent.
    Terms naming an absent variable are left out.
    """
    have = set(BASE_VARIABLES if variables is None else variables)
    tok = [
        {},
        {"batch": 1},
        {"input_len": 1},
        {"output_len": 1},
        {"batch": 1, "input_len": 1},
        {"batch": 1, "output_len": 1},
        {"input_len": 1, "output_len": 1},
        {"batch": 1, "input_len": 1, "output_len": 1},
        {"batch": 1, "input_len": 2},
    ]
    # no `tp` or `pp` factor: x*tp = x + x*(tp-1) would make the library linearly dependent
    par = [{"n_gpus": 1}, {"tp-1": 1}, {"pp-1": 1}, {"tp": -1}]
    out = [Term.of(t) for t in tok]
    for p in par:
        for t in tok[:6]:
            out.append(Term.of({**t, **p}))
    for t, p in ((tok[8], {"tp": -1}), (tok[7], {"tp": -1}), (tok[7], {"n_gpus": 1}),
                 (tok[8], {"n_gpus": 1}), (tok[6], {"n_gpus": 1})):  # fmt: skip
        out.append(Term.of({**t, **p}))
    out.append(Term.of({"output_len": 1, "batch": 0.5}))
    out.append(Term.of({"output_len": 1, "batch": 0.5, "n_gpus": 1}))
    seen: set[Term] = set()
    res: list[Term] = []
    for term in out:
        if term not in seen and set(term.variables) <= have:
            seen.add(term)
            res.append(term)
    return res


# ------------------------------------------------------------------------------ constraints
@dataclass(frozen=True)
class Constraints:
    """Constraints on the discovered form (they combine).

    Parameters
    ----------
    monotone_batch : bool
        Energy per request ``y / batch`` non-increasing in ``batch`` (``y`` is energy per
        batch): every term's ``batch`` exponent is at most 1. Default False.
    exponent_bounds : mapping of str to (lo, hi)
        Bounds on each variable's exponent in every term (``None`` for no bound); free
        exponents are fitted within them.
    require : sequence of str
        Variables that must appear in the form (``pp`` appears through ``pp-1`` or ``n_gpus``).
    exclude : sequence of str
        Variables that must not appear (excluding ``pp`` excludes ``pp-1`` and ``n_gpus``).

    Notes
    -----
    Coefficients are always non-negative, so energy and each phase are non-negative.
    """

    monotone_batch: bool = False
    exponent_bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, c: Any) -> Constraints:
        if c is None:
            return cls()
        if isinstance(c, Constraints):
            return c
        if not isinstance(c, Mapping):
            raise ValueError(
                f"constraints: expected a Constraints or a mapping, got {type(c).__name__}"
            )
        known = {"monotone_batch", "exponent_bounds", "require", "exclude"}
        unknown = sorted(set(c) - known)
        if unknown:
            raise ValueError(
                f"constraints: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        req, exc = c.get("require", ()), c.get("exclude", ())
        return cls(
            monotone_batch=bool(c.get("monotone_batch", False)),
            exponent_bounds=dict(c.get("exponent_bounds", {})),
            require=(req,) if isinstance(req, str) else tuple(req),
            exclude=(exc,) if isinstance(exc, str) else tuple(exc),
        )

    def bounds(self, var: str) -> tuple[float, float]:
        lo, hi = self.exponent_bounds.get(var, (None, None))
        lo_f = -math.inf if lo is None else float(lo)
        hi_f = math.inf if hi is None else float(hi)
        if self.monotone_batch and var == "batch":
            hi_f = min(hi_f, 1.0)
        return lo_f, hi_f

    def allows(self, t: Term) -> bool:
        for v, e in t.factors:
            if _depends(v) & set(self.exclude):
                return False
            lo, hi = self.bounds(v)
            if not lo <= e <= hi:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "monotone_batch": self.monotone_batch,
            "exponent_bounds": {k: list(v) for k, v in self.exponent_bounds.items()},
            "require": list(self.require),
            "exclude": list(self.exclude),
        }


def _depends(var: str) -> set[str]:
    """The variables a variable stands for: ``tp-1`` is ``tp``, ``n_gpus`` is ``tp`` and ``pp``."""
    out = {var}
    if var.endswith("-1"):
        out.add(var[:-2])
    if var == "n_gpus":
        out |= {"tp", "pp"}
    return out


def _mentions(t: Term, var: str) -> bool:
    return any(var in _depends(v) for v in t.variables)


# ------------------------------------------------------------------------------------ data
def _variables(X: Any, names: Iterable[str], what: str = "X") -> dict[str, FloatArray]:
    """The needed variables of X as float arrays (derived ones computed), checked finite."""
    cols = column_names(X)
    out: dict[str, FloatArray] = {}

    def col(name: str) -> FloatArray:
        if name not in out:
            a = as_float(get_column(X, name, what=what), name, what=what)
            bad = ~np.isfinite(a)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{what}: column '{name}' has a non-finite value at row {i}")
            if (a < 0).any() and name in BASE_VARIABLES:
                i = int(np.flatnonzero(a < 0)[0])
                raise ValueError(f"{what}: column '{name}' must be non-negative (row {i})")
            out[name] = a
        return out[name]

    res: dict[str, FloatArray] = {}
    for n in names:
        if n == "n_gpus" and "n_gpus" not in cols:
            res[n] = col("tp") * col("pp")
        elif n.endswith("-1") and n not in cols:
            res[n] = col(n[:-2]) - 1.0
            if (res[n] < 0).any():
                raise ValueError(f"{what}: column '{n[:-2]}' must be >= 1 for the term '{n}'")
        else:
            res[n] = col(n)
    return res


def _term_values(
    t: Term, V: Mapping[str, FloatArray], exps: Sequence[float] | None = None, n: int = 0
):
    """Values of a term over the rows of V (``n`` rows when V is empty: a constant form)."""
    n = len(next(iter(V.values()))) if V else n
    out = np.ones(n)
    for k, (v, e) in enumerate(t.factors):
        ek = e if exps is None else exps[k]
        x = V[v]
        with np.errstate(divide="ignore", invalid="ignore"):
            zero = 0.0 if ek > 0 else 1.0 if ek == 0 else np.inf
            out = out * np.where(x == 0, zero, np.abs(x) ** ek)
    return out


#: The variables the C++ term-sum template computes from a feature row (term_sum.hpp), by index.
ENGINE_VARIABLES: dict[str, int] = {
    "tp": 0,
    "pp": 1,
    "batch": 2,
    "input_len": 3,
    "output_len": 4,
    "n_gpus": 5,
    "tp-1": 6,
    "pp-1": 7,
}
#: The targets a discovered model can stand for in a ConfigSpace, and the role it takes there.
ENGINE_ROLES: dict[str, str] = {"energy_j": "energy", "ttft_s": "ttft", "tpot_s": "tpot"}

#: A term-sum template for the engine: ((variable index, exponent, free index) per factor, per
#: term), and the number of free exponents (theta = coefficients, then free exponents).
EngineTerms = tuple[tuple[tuple[tuple[int, float, int], ...], ...], int]


# ------------------------------------------------------------------------------------ model
class DiscoveredModel:
    """A fitted sparse closed form ``y = sum_j c_j t_j(x)`` from :func:`discover`.

    Attributes
    ----------
    terms : tuple of Term
        The terms, with their (possibly fitted) exponents.
    coef_ : ndarray
        Non-negative coefficients, one per term.
    covariance_ : ndarray
        Covariance of the fitted parameters (coefficients, then free exponents) from the LM
        Jacobian of the log-ratio residuals.
    residual_scale_ : float
        RMS of the log-ratio residuals of the fit.
    cv_error_ : float
        K-fold cross-validated RMS of ``log(prediction / y)``.
    """

    def __init__(
        self,
        terms: Sequence[Term | str],
        coef: Sequence[float] | FloatArray,
        *,
        target: str = "energy_j",
        target_unit: str = "J",
        units: Mapping[str, str] | None = None,
        free: Sequence[tuple[int, int]] = (),
        covariance: Any = None,
        residual_scale: float = math.nan,
        cv_error: float = math.nan,
        train_error: float = math.nan,
        n_rows: int = 0,
    ) -> None:
        self.terms = tuple(_as_term(t) for t in terms)
        c = np.asarray(coef, dtype=np.float64).reshape(-1)
        if len(c) != len(self.terms):
            raise ValueError(f"coef: {len(c)} values for {len(self.terms)} terms")
        if not np.isfinite(c).all() or (c < 0).any():
            raise ValueError("coef: coefficients must be finite and non-negative")
        self.coef_ = c
        self.target = target
        self.target_unit = target_unit
        self.units = dict(BASE_VARIABLES if units is None else units)
        #: (term index, factor index) of the exponents fitted by LM
        self.free = tuple((int(a), int(b)) for a, b in free)
        p = len(c) + len(self.free)
        cov = np.full((p, p), np.nan) if covariance is None else np.asarray(covariance, float)
        if cov.shape != (p, p):
            raise ValueError(f"covariance: shape {cov.shape}, expected {(p, p)}")
        self.covariance_ = cov
        self.residual_scale_ = float(residual_scale)
        self.cv_error_ = float(cv_error)
        self.train_error_ = float(train_error)
        self.n_rows = int(n_rows)
        self._provenance: dict[str, str | None] | None = None

    # -------------------------------------------------------------------- properties
    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @property
    def n_params(self) -> int:
        """Fitted parameters: coefficients plus free exponents."""
        return len(self.terms) + len(self.free)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(sorted({v for t in self.terms for v in t.variables}))

    @property
    def params_(self) -> dict[str, float]:
        return {str(t): float(c) for t, c in zip(self.terms, self.coef_)}

    def coefficients(self) -> list[dict[str, Any]]:
        """One row per term: the term, its coefficient, its unit and its standard error."""
        se = np.sqrt(np.maximum(np.diag(self.covariance_), 0.0))
        return [
            {
                "term": str(t),
                "coef": float(c),
                "unit": t.unit(self.target_unit, self.units),
                "stderr": float(se[j]),
                "phase": t.phase(),
            }
            for j, (t, c) in enumerate(zip(self.terms, self.coef_))
        ]

    def formula(self, latex: bool = False, digits: int = 4) -> str:
        """The form as text (``energy_j = 0.0123*batch*input_len + ...``) or LaTeX."""
        if latex:
            parts = []
            for t, c in zip(self.terms, self.coef_):
                m, e = f"{c:.{digits - 1}e}".split("e")
                num = m if int(e) == 0 else rf"{m} \times 10^{{{int(e)}}}"
                parts.append(num if not t.factors else rf"{num} \, {t.latex()}")
            lhs = r"\hat{E}" if self.target.startswith("energy") else r"\hat{y}"
            return f"{lhs} = " + " + ".join(parts or ["0"])
        parts = [
            f"{c:.{digits}g}" if not t.factors else f"{c:.{digits}g}*{t}"
            for t, c in zip(self.terms, self.coef_)
        ]
        return f"{self.target} = " + " + ".join(parts or ["0"])

    def to_expression(self) -> str:
        """The form in the ConfigSpace expression language (for ``derived=``)."""
        return " + ".join(
            f"{float(c)!r} * {t.expression()}" for t, c in zip(self.terms, self.coef_)
        )

    # -------------------------------------------------------------------- space engine
    def engine_template(
        self, constants: Mapping[str, float] | None = None
    ) -> tuple[EngineTerms, FloatArray]:
        """The model as the C++ engine's term-sum template: ``(terms, theta)``.

        ``terms`` is ``(((variable index, exponent, free index), ...) per term, n_free)`` with
        the variable indices of :data:`ENGINE_VARIABLES` (free index -1: a fixed exponent) and
        ``theta`` the coefficients, then the free exponents. This is what a
        :class:`~energycore.space.ConfigSpace` passes to the engine for ``models=``.

        Parameters
        ----------
        constants : mapping of str to float, optional
            Values of variables that are constant over the query (a space's fixed values, e.g.
            ``fixed={"gpu_tdp": 700}``): their factors are folded into the coefficients
            (``c * x^e`` with ``x`` fixed is a coefficient); see :meth:`engine_scale`.

        Raises
        ------
        ValueError
            A variable that is neither a model input of a space (``tp``, ``pp``, ``batch``,
            ``input_len``, ``output_len``, ``n_gpus``, ``tp-1``, ``pp-1``) nor in
            ``constants`` (a numeric axis or derived column is not a model input), a constant
            that is not given (NaN) or not finite, a free exponent on a constant, or a negative
            power of a zero constant.
        """
        scale = self.engine_scale(constants)
        free_of = {jk: i for i, jk in enumerate(self.free)}
        terms = tuple(
            tuple(
                (ENGINE_VARIABLES[v], float(e), free_of.get((j, k), -1))
                for k, (v, e) in enumerate(t.factors)
                if v in ENGINE_VARIABLES
            )
            for j, t in enumerate(self.terms)
        )
        exps = [self.terms[j].factors[k][1] for j, k in self.free]
        theta = np.concatenate([self.coef_, exps]) * scale
        return (terms, len(self.free)), np.ascontiguousarray(theta, dtype=np.float64)

    def engine_scale(self, constants: Mapping[str, float] | None = None) -> FloatArray:
        """Per parameter (coefficients, then free exponents), the factor the engine's
        coefficient carries: the product of the folded constants' powers (1 without any).
        The engine's covariance is the model's scaled by it on both sides."""
        consts = dict(constants or {})
        for v in self.variables:
            if v in ENGINE_VARIABLES:
                continue
            if v not in consts:
                raise ValueError(
                    f"models: the DiscoveredModel uses the variable {v!r}, which is neither a "
                    f"model input of a ConfigSpace ({', '.join(ENGINE_VARIABLES)}) nor a fixed "
                    f"value of the space (declare it with fixed={{{v!r}: ...}}); as an axis or "
                    "a derived column, score the model as a scorer (scorers={'pred': model}) "
                    "or a derived column (derived={'pred': model.to_expression()}) instead"
                )
            x = float(consts[v])
            if not math.isfinite(x):
                raise ValueError(f"{v}: the DiscoveredModel needs it; pass {v}=... (a number)")
        for j, k in self.free:
            v = self.terms[j].factors[k][0]
            if v not in ENGINE_VARIABLES:
                raise ValueError(
                    f"models: the DiscoveredModel has a free exponent on the fixed value {v!r}; "
                    "the engine folds fixed values into the coefficients, which needs a fixed "
                    "exponent (refit without it in free_exponents)"
                )
        scale = np.ones(self.n_params)
        for j, t in enumerate(self.terms):
            for v, e in t.factors:
                if v not in ENGINE_VARIABLES:
                    x = float(consts[v])
                    scale[j] *= (
                        (0.0 if e > 0 else 1.0 if e == 0 else math.inf) if x == 0 else (abs(x) ** e)
                    )
            if not math.isfinite(scale[j]):
                raise ValueError(
                    f"models: the term {self.terms[j]} of the DiscoveredModel is infinite at the "
                    "fixed values given (a negative power of zero)"
                )
        return scale

    @property
    def template_name(self) -> str:
        """``"term_sum"``: the C++ template a ConfigSpace evaluates this model with."""
        return "term_sum"

    def monotone_in_lengths(self) -> bool:
        """Whether the prediction never decreases when ``input_len`` or ``output_len`` grow
        (non-negative coefficients and no negative length exponent), which a
        :class:`~energycore.space.Selector` relies on to prune workload cells."""
        return all(
            e >= 0 for t in self.terms for v, e in t.factors if v in ("input_len", "output_len")
        )

    # -------------------------------------------------------------------- prediction
    def _values(self, X: Any) -> tuple[FloatArray, dict[str, FloatArray]]:
        V = _variables(X, self.variables)
        if not V:  # a constant form: the row count from any column
            names = column_names(X)
            n = len(get_column(X, names[0])) if names else 0
            return np.ones((n, len(self.terms))), V
        T = np.column_stack([_term_values(t, V) for t in self.terms])
        return T, V

    def predict(self, X: Any) -> FloatArray:
        """Predicted target for each row of ``X`` (a DataFrame, dict of arrays, ...)."""
        T, _ = self._values(X)
        return np.ascontiguousarray(T @ self.coef_)

    def __call__(self, columns: Mapping[str, Any]) -> FloatArray:
        """Same as :meth:`predict`: a model is a ConfigSpace scorer."""
        return self.predict(columns)

    def predict_per_request(self, X: Any) -> FloatArray:
        """Predicted target divided by ``batch`` (energy per request)."""
        return self.predict(X) / as_float(get_column(X, "batch"), "batch")

    def predict_phases(self, X: Any) -> dict[str, FloatArray]:
        """The prediction split by term phase (prefill, decode, fixed); they sum to predict."""
        T, _ = self._values(X)
        out = {p: np.zeros(len(T)) for p in ("prefill", "decode", "fixed")}
        for j, t in enumerate(self.terms):
            out[t.phase()] += T[:, j] * self.coef_[j]
        return out

    def _log_jacobian(self, X: Any) -> tuple[FloatArray, FloatArray]:
        T, V = self._values(X)
        pred = T @ self.coef_
        cols = [T]
        for j, k in self.free:
            v = V[self.terms[j].factors[k][0]]
            with np.errstate(divide="ignore"):
                lv = np.where(v > 0, np.log(np.where(v > 0, v, 1.0)), 0.0)
            cols.append((self.coef_[j] * T[:, j] * lv)[:, None])
        G = np.column_stack(cols) / np.maximum(pred, 1e-300)[:, None]
        return pred, G

    def _features(self, X: Any) -> Any:
        """The rows as given (columns by name): :func:`~energycore.space.upper_bound` hook."""
        return X

    def _log_variance(self, X: Any) -> tuple[FloatArray, FloatArray]:
        """(prediction, delta-method variance of ``log(prediction)`` from ``covariance_``)."""
        pred, G = self._log_jacobian(X)
        cov = np.nan_to_num(self.covariance_, nan=0.0, posinf=0.0, neginf=0.0)
        return pred, np.maximum(np.einsum("ij,jk,ik->i", G, cov, G), 0.0)

    def predict_interval(self, X: Any, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
        """Prediction interval at ``level``, multiplicative like ``EnergyModel``'s.

        The variance of ``log(prediction)`` is the delta-method propagation of ``covariance_``
        plus the residual variance of the fit.
        """
        check_level(level)
        pred, G = self._log_jacobian(X)
        cov = np.nan_to_num(self.covariance_, nan=0.0, posinf=0.0, neginf=0.0)
        var = np.einsum("ij,jk,ik->i", G, cov, G)
        s2 = self.residual_scale_**2 if math.isfinite(self.residual_scale_) else 0.0
        k = np.exp(NormalDist().inv_cdf(0.5 + level / 2) * np.sqrt(np.maximum(var, 0.0) + s2))
        return pred / k, pred * k

    def score(self, X: Any, y: Any) -> dict[str, float]:
        """Accuracy on ``(X, y)``: MAPE, R^2 and RMSE of log ratios."""
        pred = self.predict(X)
        yt = _target(y, len(pred))
        mape = float(np.mean(np.abs(pred - yt) / yt))
        ss_res = float(np.sum((yt - pred) ** 2))
        ss_tot = float(np.sum((yt - yt.mean()) ** 2))
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
        with np.errstate(divide="ignore"):
            lr = np.log(np.maximum(pred, 1e-300) / yt)
        return {"mape": mape, "r2": r2, "rmse_log": float(np.sqrt(np.mean(lr**2)))}

    def metrics(self, X: Any, y: Any) -> dict[str, float]:
        """Same as :meth:`score` (the name ``EnergyModel`` uses for this dict)."""
        return self.score(X, y)

    def set_provenance(
        self,
        gpu: str | None = None,
        served_model: str | None = None,
        engine: str | None = None,
    ) -> DiscoveredModel:
        """Record the GPU, served model and engine the data were measured on (as
        ``EnergyModel.set_provenance``; saved in the model file). Returns ``self``."""
        self._provenance = _prov.check_provenance(
            {"gpu": gpu, "served_model": served_model, "engine": engine}, "provenance"
        )
        return self

    @property
    def provenance(self) -> dict[str, str | None]:
        """``{"gpu", "served_model", "engine"}`` as recorded (``None``: unknown)."""
        return dict(self._provenance or dict.fromkeys(_prov.PROVENANCE_FIELDS))

    def refit(
        self,
        X: Any,
        y: Any,
        *,
        free_exponents: Sequence[str] = (),
        constraints: Constraints | Mapping[str, Any] | None = None,
        loss: str = "linear",
        f_scale: float = 0.1,
        max_iter: int = 100,
    ) -> DiscoveredModel:
        """The same structure with its coefficients fitted to new data (a new model).

        What EnergyLens does with its discovered form: the structure is found once on rich
        profiling data, then each deployment fits only the coefficients from a few
        measurements. NNLS start, then LM on log-ratio residuals (``cv_error_`` is NaN).
        """
        V = _variables(X, self.variables)
        n = len(next(iter(V.values()))) if V else len(get_column(X, column_names(X)[0]))
        yt = _target(y, n)
        if n < self.n_terms:
            raise ValueError(f"X: needs at least {self.n_terms} rows, got {n}")
        T = np.column_stack([_term_values(t, V) for t in self.terms]) if V else np.ones((n, 1))
        c0 = np.asarray(_core.nnls(np.ascontiguousarray(T / yt[:, None]), np.ones(n)))
        c0 = np.where(c0 > 0, c0, 1e-6 * np.maximum(c0.max(), 1e-300))
        cons = Constraints.coerce(constraints)
        c, terms, free, cov, r = _lm_refit(
            list(self.terms), c0, V, yt, cons, free_exponents, loss, f_scale, max_iter
        )
        rs = float(np.sqrt(np.mean(r**2)))
        return DiscoveredModel(
            terms, np.maximum(c, 0.0), target=self.target, target_unit=self.target_unit,
            units=self.units, free=free, covariance=cov, residual_scale=rs,
            train_error=rs, n_rows=n,
        )  # fmt: skip

    # -------------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (format ``energycore.discovered``, versioned)."""

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "target": self.target,
            "target_unit": self.target_unit,
            "units": dict(self.units),
            "terms": [[[v, e] for v, e in t.factors] for t in self.terms],
            "coef": [float(c) for c in self.coef_],
            "free": [list(f) for f in self.free],
            "covariance": [[num(v) for v in row] for row in self.covariance_.tolist()],
            "residual_scale": num(self.residual_scale_),
            "cv_error": num(self.cv_error_),
            "train_error": num(self.train_error_),
            "n_rows": self.n_rows,
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, d: Any) -> DiscoveredModel:
        """Rebuild a model from :meth:`to_dict`; ``ValueError`` on anything malformed."""
        check_format(d, FORMAT, FORMAT_VERSION, "model file", "an energycore discovered model")
        try:

            def f(v: Any) -> float:
                return math.nan if v is None else float(v)

            out = cls(
                [Term.of((str(v), float(e)) for v, e in t) for t in d["terms"]],
                [float(c) for c in d["coef"]],
                target=str(d["target"]),
                target_unit=str(d.get("target_unit", "J")),
                units={str(k): str(v) for k, v in d.get("units", BASE_VARIABLES).items()},
                free=[(int(a), int(b)) for a, b in d.get("free", [])],
                covariance=[[f(v) for v in row] for row in d["covariance"]],
                residual_scale=f(d.get("residual_scale")),
                cv_error=f(d.get("cv_error")),
                train_error=f(d.get("train_error")),
                n_rows=int(d.get("n_rows", 0)),
            )
            prov = d.get("provenance")
            if prov is not None:
                out._provenance = _prov.check_provenance(prov, "model file: provenance")
            return out
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"model file: malformed content ({type(e).__name__}: {e})") from None

    def save(self, path: str | Path) -> None:
        """Write the model as versioned JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DiscoveredModel:
        """Read a model written by :meth:`save`."""
        return cls.from_dict(read_json(path, "model file"))

    def __repr__(self) -> str:
        cv = f", cv_error={self.cv_error_:.4g}" if math.isfinite(self.cv_error_) else ""
        return f"DiscoveredModel({self.formula()!r}{cv})"


# -------------------------------------------------------------------------------- discovery
@dataclass
class Discovery:
    """The result of :func:`discover`.

    Attributes
    ----------
    front : list of DiscoveredModel
        The Pareto front: CV error against the number of terms, fewest terms first, each
        entry with a lower CV error than every smaller one.
    best : DiscoveredModel
        The chosen entry: the lowest ``score`` (CV error plus the complexity penalty).
    path : list of dict
        Every size searched: ``n_terms``, ``terms``, ``cv_error``, ``cv_se``, ``train_error``,
        ``score``.
    candidates : list of Term
        The candidate terms searched (after the constraints and the column checks).
    dropped : dict of str to str
        Candidate terms left out and why (a zero or duplicate column, a constraint).
    """

    front: list[DiscoveredModel]
    best: DiscoveredModel
    path: list[dict[str, Any]]
    candidates: list[Term]
    dropped: dict[str, str]
    n_fits: int = 0

    def predict(self, X: Any) -> FloatArray:
        return self.best.predict(X)

    def refit(
        self,
        X: Any,
        y: Any,
        *,
        cv: int = 5,
        seed: int = 0,
        one_se: bool = True,
        **refit_kw: Any,
    ) -> DiscoveredModel:
        """The front entry that the new data supports best, refitted on it.

        The structure search ran on rich profiling data; a deployment has few measurements
        (say 50), which may not support as many coefficients as the profiling set did. Each
        front structure is refitted (:meth:`DiscoveredModel.refit`) on ``cv - 1`` folds of
        ``(X, y)`` and scored on the held-out fold (RMS of ``log(prediction / y)``); the entry
        chosen is the smallest whose CV error is within one standard error of the lowest
        (``one_se=True``, the one-standard-error rule) or the lowest, then refitted on all
        rows. Its ``cv_error_`` is that CV error on ``(X, y)``.

        Parameters
        ----------
        X, y
            The new measurements (as for :meth:`DiscoveredModel.refit`).
        cv : int
            Folds (at least 2); structures with more terms than a training fold has rows are
            skipped.
        seed : int
            Seed of the fold assignment.
        one_se : bool
            Prefer the smallest structure within one standard error of the best.
        **refit_kw
            Passed to :meth:`DiscoveredModel.refit` (``free_exponents``, ``loss``, ...).
        """
        _check_cv(cv)
        names, n, yt = _cv_data(X, y, cv)
        folds = _folds(n, cv, seed)
        rows = {k: np.asarray(get_column(X, k)) for k in names}
        scored: list[tuple[float, float, DiscoveredModel]] = []
        for m in self.front:
            if m.n_terms > n - max(len(f) for f in folds):
                continue
            sq = np.empty(n)
            errs = []
            for k, test in enumerate(folds):
                train = np.concatenate([f for j, f in enumerate(folds) if j != k])
                fit = m.refit({c: v[train] for c, v in rows.items()}, yt[train], **refit_kw)
                pred = fit.predict({c: v[test] for c, v in rows.items()})
                lr = np.log(np.maximum(pred, 1e-300) / yt[test])
                sq[test] = lr**2
                errs.append(float(np.sqrt(np.mean(lr**2))))
            scored.append((float(np.sqrt(np.mean(sq))), float(np.std(errs) / math.sqrt(cv)), m))
        if not scored:
            raise ValueError(f"X: {n} rows are too few to refit any structure of the front")
        err, se, _ = min(scored, key=lambda s: s[0])
        pick = (
            next(s for s in scored if s[0] <= err + se)
            if one_se
            else min(scored, key=lambda s: s[0])
        )
        out = pick[2].refit(X, yt, **refit_kw)
        out.cv_error_ = pick[0]
        return out

    def table(self) -> str:
        """The front as a Markdown table."""
        lines = ["| terms | CV RMS log | formula |", "|---:|---:|---|"]
        for m in self.front:
            mark = " (best)" if m is self.best else ""
            lines.append(f"| {m.n_terms}{mark} | {m.cv_error_:.4f} | `{m.formula()}` |")
        return "\n".join(lines)


def _check_cv(cv: Any) -> None:
    if not (isinstance(cv, (int, np.integer)) and cv >= 2):
        raise ValueError(f"cv: must be an integer >= 2, got {cv!r}")


def _cv_data(X: Any, y: Any, cv: Any) -> tuple[list[str], int, FloatArray]:
    """(column names, rows, target) of a cross-validated fit on ``(X, y)`` with a checked
    ``cv`` (:func:`_check_cv`); ``ValueError`` for fewer than two rows per fold."""
    names = column_names(X)
    n = len(get_column(X, names[0])) if names else 0
    yt = _target(y, n)
    if n < 2 * cv:
        raise ValueError(f"X: needs at least {2 * cv} rows for cv={cv}, got {n}")
    return names, n, yt


def _target(y: Any, n: int, name: str = "y") -> FloatArray:
    a = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    try:
        a = a.astype(np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers") from None
    if len(a) != n:
        raise ValueError(f"{name}: has {len(a)} values for {n} rows of X")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{name}: non-finite value at row {int(np.flatnonzero(bad)[0])}")
    if (a <= 0).any():
        raise ValueError(f"{name}: must be positive, got {a[a <= 0][0]} at row "
                         f"{int(np.flatnonzero(a <= 0)[0])}")  # fmt: skip
    return a


class _Fitter:
    """NNLS on the relative error for column subsets, with K-fold CV."""

    def __init__(self, A: FloatArray, y: FloatArray, folds: list[np.ndarray]) -> None:
        self.B = A / y[:, None]  # relative-error design: B c ~ 1
        self.n = len(y)
        self.folds = folds
        self.n_fits = 0
        self._cache: dict[tuple[int, ...], tuple[float, FloatArray]] = {}

    def fit(self, S: tuple[int, ...], rows: np.ndarray | None = None) -> FloatArray:
        self.n_fits += 1
        B = self.B[:, S] if rows is None else self.B[np.ix_(rows, np.asarray(S, dtype=np.intp))]
        return np.asarray(_core.nnls(np.ascontiguousarray(B), np.ones(len(B))))

    def train(self, S: tuple[int, ...]) -> tuple[float, FloatArray]:
        """(RSS of the relative error, coefficients); inf RSS if a coefficient is zero."""
        got = self._cache.get(S)
        if got is None:
            c = self.fit(S)
            r = self.B[:, S] @ c - 1.0
            rss = float(r @ r) if (c > 0).all() else math.inf
            got = (rss, c)
            self._cache[S] = got
        return got

    def cv(self, S: tuple[int, ...]) -> tuple[float, float]:
        """(RMS of held-out log ratios, its standard error over folds)."""
        errs = []
        sq = np.empty(self.n)
        for k, test in enumerate(self.folds):
            train = np.concatenate([f for j, f in enumerate(self.folds) if j != k])
            c = self.fit(S, train)
            pred = self.B[np.ix_(test, np.asarray(S, dtype=np.intp))] @ c  # prediction / y
            lr = np.log(np.maximum(pred, 1e-12))
            sq[test] = lr**2
            errs.append(float(np.sqrt(np.mean(lr**2))))
        return float(np.sqrt(np.mean(sq))), float(np.std(errs) / math.sqrt(len(errs)))


def _swap(
    fitter: _Fitter, best: tuple[int, ...], best_rss: float, m: int, keep: tuple[int, ...]
) -> tuple[float, tuple[int, ...]]:
    """Replace one term at a time while that lowers the RSS (first improvement, repeated)."""
    improved = True
    while improved:
        improved = False
        for i in best:
            if i in keep:
                continue
            for j in range(m):
                if j in best:
                    continue
                T = tuple(sorted((*(x for x in best if x != i), j)))
                r = fitter.train(T)[0]
                if r < best_rss * (1 - 1e-9):
                    best_rss, best, improved = r, T, True
                    break
            if improved:
                break
    return best_rss, best


def _backward(
    fitter: _Fitter, m: int, max_k: int, keep: tuple[int, ...]
) -> dict[int, tuple[int, ...]]:
    """Sizes <= max_k reached by dropping, one at a time, the term whose removal costs least."""
    c = fitter.fit(tuple(range(m)))
    S = tuple(j for j in range(m) if c[j] > 0 or j in keep)
    out: dict[int, tuple[int, ...]] = {}
    while len(S) > max(len(keep), 1):
        if len(S) <= max_k and math.isfinite(fitter.train(S)[0]):
            out[len(S)] = S
        opts = [tuple(x for x in S if x != i) for i in S if i not in keep]
        if not opts:
            break
        S = min(opts, key=lambda T: fitter.train(T)[0])
    if math.isfinite(fitter.train(S)[0]):
        out[len(S)] = S
    return out


def _folds(n: int, cv: int, seed: int) -> list[np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[k::cv]) for k in range(cv)]


def _lm_refit(
    terms: Sequence[Term],
    c0: FloatArray,
    V: Mapping[str, FloatArray],
    y: FloatArray,
    cons: Constraints,
    free_vars: Sequence[str],
    loss: str,
    f_scale: float,
    max_iter: int,
) -> tuple[FloatArray, list[Term], list[tuple[int, int]], FloatArray, FloatArray]:
    """LM on log-ratio residuals: coefficients (>= 0, scaled) and free exponents (bounded)."""
    free = [(j, k) for j, t in enumerate(terms) for k, (v, _) in enumerate(t.factors)
            if v in free_vars]  # fmt: skip
    p, q = len(terms), len(free)
    e0 = np.array([terms[j].factors[k][1] for j, k in free], dtype=np.float64)
    lo_e = np.array([cons.bounds(terms[j].factors[k][0])[0] for j, k in free])
    hi_e = np.array([cons.bounds(terms[j].factors[k][0])[1] for j, k in free])
    # a negative exponent on a variable with zeros would make the term infinite
    for i, (j, k) in enumerate(free):
        if (V[terms[j].factors[k][0]] == 0).any():
            lo_e[i] = max(lo_e[i], 0.0)
    e0 = np.clip(e0, lo_e, hi_e)
    scale = np.where(c0 > 0, c0, 1.0)
    logs = {v: np.where(V[v] > 0, np.log(np.where(V[v] > 0, V[v], 1.0)), 0.0) for v in free_vars
            if v in V}  # fmt: skip

    def unpack(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        return x[:p] * scale, x[p:]

    def columns(e: FloatArray) -> FloatArray:
        T = np.empty((len(y), p))
        for j, t in enumerate(terms):
            ex = [fe for _, fe in t.factors]
            for i, (jj, k) in enumerate(free):
                if jj == j:
                    ex[k] = e[i]
            T[:, j] = _term_values(t, V, ex, len(y))
        return T

    def fun(x: FloatArray) -> FloatArray:
        c, e = unpack(np.asarray(x))
        f = columns(e) @ c
        return np.log(np.maximum(f, 1e-300) / y)

    def jac(x: FloatArray) -> FloatArray:
        c, e = unpack(np.asarray(x))
        T = columns(e)
        f = np.maximum(T @ c, 1e-300)
        J = np.empty((len(y), p + q))
        J[:, :p] = T * scale / f[:, None]
        for i, (j, k) in enumerate(free):
            J[:, p + i] = c[j] * T[:, j] * logs[terms[j].factors[k][0]] / f
        return J

    x0 = np.concatenate([c0 / scale, e0])
    lower = np.concatenate([np.zeros(p), lo_e])
    upper = np.concatenate([np.full(p, np.inf), hi_e])
    res = _core.least_squares(
        fun, jac, x0, lower, upper, [], np.ones(len(y)), len(y),
        loss=loss, f_scale=f_scale, max_iter=max_iter,
    )  # fmt: skip
    x = np.asarray(res["x"])
    c, e = unpack(x)
    D = np.concatenate([scale, np.ones(q)])
    cov = np.asarray(res["covariance"]) * np.outer(D, D)
    new_terms = list(terms)
    for i, (j, k) in enumerate(free):
        fs = list(new_terms[j].factors)
        fs[k] = (fs[k][0], float(e[i]))
        new_terms[j] = Term.of(fs)
    r = np.asarray(res["residuals"])
    # terms the LM drove to a zero coefficient are dropped (with their free exponents)
    keep = [j for j in range(p) if c[j] > 0] or list(range(p))
    if len(keep) < p:
        pos = {j: n for n, j in enumerate(keep)}
        idx = keep + [p + i for i, (j, _) in enumerate(free) if j in pos]
        cov = cov[np.ix_(idx, idx)]
        free = [(pos[j], k) for j, k in free if j in pos]
        c = c[keep]
        new_terms = [new_terms[j] for j in keep]
    return c, new_terms, free, cov, r


def discover(
    X: Any,
    y: Any,
    terms: Sequence[Term | str | Mapping[str, float]] | str = "auto",
    max_terms: int = 8,
    constraints: Constraints | Mapping[str, Any] | None = None,
    cv: int = 5,
    seed: int = 0,
    *,
    variables: Sequence[str] | None = None,
    beam: int = 4,
    complexity: float | None = None,
    free_exponents: Sequence[str] = (),
    loss: str = "linear",
    f_scale: float = 0.1,
    max_iter: int = 100,
    target: str = "energy_j",
    target_unit: str = "J",
    units: Mapping[str, str] | None = None,
) -> Discovery:
    """Search sparse sums of candidate terms for the closed form of ``y``.

    Parameters
    ----------
    X : DataFrame, dict of arrays or structured array
        The configurations (columns named as the variables: ``batch``, ``input_len``,
        ``output_len``, ``tp``, ``pp``; ``n_gpus``, ``tp-1``, ``pp-1`` are computed if absent).
    y : array-like
        Positive target, e.g. joules per batch over all GPUs.
    terms : "auto" or sequence
        Candidate terms: ``"auto"`` for :func:`default_terms` over the variables of ``X``, or
        terms as strings (``"batch*output_len/tp"``), :class:`Term` or ``{var: exponent}``.
    max_terms : int
        Largest number of terms searched.
    constraints : Constraints or mapping, optional
        See :class:`Constraints`.
    cv : int
        Folds of the cross-validation that scores each size.
    seed : int
        Seed of the fold assignment (the search is otherwise deterministic).
    variables : sequence of str, optional
        The variables ``"auto"`` builds terms from (default: the base variables whose columns
        are in ``X``, ``n_gpus``/``tp-1``/``pp-1`` when ``tp``/``pp`` are); user columns named
        here get a linear term and a product with each token term.
    beam : int
        Subsets kept per size in the forward search.
    complexity : float, optional
        Penalty per term of the score that picks ``best`` from the front:
        ``n * log(CV mean squared log ratio) + complexity * n_terms``. Default
        ``log(n) + 2 * log(m)`` for ``n`` rows and ``m`` candidate terms, the extended BIC
        (Chen and Chen 2008, gamma = 1), which also charges for the size of the search: a
        spurious term that the search picks as the best of ``m`` lowers the error too.
    free_exponents : sequence of str
        Variables whose exponents the final LM fit refines (within the exponent bounds).
    loss, f_scale, max_iter
        Of the final LM fit on log-ratio residuals (``"linear"``, ``"soft_l1"``, ``"huber"``,
        ``"cauchy"``, ``"arctan"``).
    target, target_unit, units
        Names and units used in formulas and coefficient units.

    Returns
    -------
    Discovery
    """
    cons = Constraints.coerce(constraints)
    if not (isinstance(max_terms, (int, np.integer)) and max_terms >= 1):
        raise ValueError(f"max_terms: must be a positive integer, got {max_terms!r}")
    _check_cv(cv)
    if not (isinstance(beam, (int, np.integer)) and beam >= 1):
        raise ValueError(f"beam: must be a positive integer, got {beam!r}")
    if complexity is not None and not (
        isinstance(complexity, (int, float)) and math.isfinite(complexity) and complexity >= 0
    ):
        raise ValueError(f"complexity: must be a non-negative number, got {complexity!r}")
    names, n_rows, yt = _cv_data(X, y, cv)

    # ---- candidate library
    if isinstance(terms, str):
        if terms != "auto":
            raise ValueError(f"terms: expected 'auto' or a sequence of terms, got {terms!r}")
        have: list[str] = [
            v for v in ("batch", "input_len", "output_len", "tp", "pp") if v in names
        ]
        if "tp" in have:
            have += ["tp-1"]
        if "pp" in have:
            have += ["pp-1"]
        if "n_gpus" in names or ("tp" in have and "pp" in have):
            have += ["n_gpus"]
        extra = [v for v in (variables or ()) if v not in BASE_VARIABLES]
        base = have if variables is None else [v for v in variables if v in BASE_VARIABLES]
        cand = default_terms(base)
        for v in extra:
            cand.append(Term.of({v: 1}))
            for t in default_terms(base)[1:6]:
                cand.append(Term.of([*t.factors, (v, 1.0)]))
    else:
        cand = [_as_term(t) for t in terms]
        if not cand:
            raise ValueError("terms: no candidate terms given")
    for v in (*cons.require, *cons.exclude):
        if not isinstance(v, str):
            raise ValueError(f"constraints: variable names must be strings, got {v!r}")
    dropped: dict[str, str] = {}
    allowed: list[Term] = []
    for t in dict.fromkeys(cand):
        if cons.allows(t):
            allowed.append(t)
        else:
            dropped[str(t)] = "constraint"
    need = sorted({v for t in allowed for v in t.variables})
    V = _variables(X, need)
    # columns: drop zero, non-finite and proportional-to-an-earlier column
    cols: list[FloatArray] = []
    kept: list[Term] = []
    for t in allowed:
        a = _term_values(t, V)
        if not np.isfinite(a).all():
            dropped[str(t)] = "not finite (a negative power of a zero value)"
            continue
        nrm = float(np.linalg.norm(a))
        if nrm == 0:
            dropped[str(t)] = "zero column"
            continue
        u = a / nrm
        dup = next((kept[i] for i, b in enumerate(cols) if abs(float(u @ b)) > 1 - 1e-10), None)
        if dup is not None:
            dropped[str(t)] = f"same column as {dup} on this data"
            continue
        cols.append(u)
        kept.append(t)
    for v in cons.require:
        if not any(_mentions(t, v) for t in kept):
            raise ValueError(f"constraints: required variable {v!r} is in no usable term")
    if not kept:
        raise ValueError("terms: no usable candidate term on this data")
    m = len(kept)
    max_k = int(min(max_terms, m, n_rows - n_rows // cv - 1))
    if max_k < 1:
        raise ValueError(f"X: too few rows ({n_rows}) for a fit")
    A = np.column_stack([_term_values(t, V) for t in kept])
    fitter = _Fitter(A, yt, _folds(n_rows, cv, seed))

    # ---- forward beam search, required variables seeded first
    def covers(S: tuple[int, ...]) -> int:
        return sum(not any(_mentions(kept[j], v) for j in S) for v in cons.require)

    seed_set: tuple[int, ...] = ()
    for v in cons.require:
        if covers(seed_set) == 0:
            break
        if any(_mentions(kept[j], v) for j in seed_set):
            continue
        opts = [j for j in range(m) if _mentions(kept[j], v)]
        seed_set = min(
            (tuple(sorted((*seed_set, j))) for j in opts), key=lambda S: fitter.train(S)[0]
        )
    level: list[tuple[int, ...]] = [seed_set]
    best_per_k: dict[int, tuple[int, ...]] = {}
    if seed_set and math.isfinite(fitter.train(seed_set)[0]):
        best_per_k[len(seed_set)] = seed_set
    for k in range(len(seed_set) + 1, max_k + 1):
        nxt: dict[tuple[int, ...], float] = {}
        for S in level:
            for j in range(m):
                if j in S:
                    continue
                T = tuple(sorted((*S, j)))
                if T not in nxt:
                    nxt[T] = fitter.train(T)[0]
        ranked = sorted((r, T) for T, r in nxt.items() if math.isfinite(r))
        if not ranked:
            break
        level = [T for _, T in ranked[:beam]]
        # swap refinement of the best subset (keeps the required seed terms)
        best_rss, best = ranked[0]
        best_rss, best = _swap(fitter, best, best_rss, m, seed_set)
        if best not in level:
            level = [best, *level[: beam - 1]]
        best_per_k[k] = best
    # backward elimination from the NNLS fit of all candidates (sparse by itself), merged
    for k, S in _backward(fitter, m, max_k, seed_set).items():
        if k not in best_per_k or fitter.train(S)[0] < fitter.train(best_per_k[k])[0]:
            best_per_k[k] = _swap(fitter, S, fitter.train(S)[0], m, seed_set)[1]

    if not best_per_k:
        raise ValueError("terms: no subset of the candidates fits with positive coefficients")
    # ---- score each size, refit the front with LM
    path: list[dict[str, Any]] = []
    for k in sorted(best_per_k):
        S = best_per_k[k]
        cv_err, cv_se = fitter.cv(S)
        path.append({"n_terms": k, "terms": [str(kept[j]) for j in S], "cv_error": cv_err,
                     "cv_se": cv_se, "train_error": math.sqrt(fitter.train(S)[0] / n_rows),
                     "subset": S})  # fmt: skip
    front_rows = []
    best_cv = math.inf
    for row in path:
        if row["cv_error"] < best_cv:
            front_rows.append(row)
            best_cv = row["cv_error"]
    pen = math.log(n_rows) + 2 * math.log(m) if complexity is None else float(complexity)
    for row in path:
        row["score"] = n_rows * math.log(max(row["cv_error"], 1e-300) ** 2) + pen * row["n_terms"]
    chosen = min(front_rows, key=lambda r: (r["score"], r["n_terms"]))
    front: list[DiscoveredModel] = []
    best_model: DiscoveredModel | None = None
    for row in front_rows:
        S = row["subset"]
        c0 = fitter.train(S)[1]
        ts = [kept[j] for j in S]
        c, new_terms, free, cov, r = _lm_refit(
            ts, c0, V, yt, cons, free_exponents, loss, f_scale, max_iter
        )
        model = DiscoveredModel(
            new_terms, np.maximum(c, 0.0), target=target, target_unit=target_unit,
            units={**BASE_VARIABLES, **(units or {})}, free=free, covariance=cov,
            residual_scale=float(np.sqrt(np.mean(r**2))), cv_error=row["cv_error"],
            train_error=float(np.sqrt(np.mean(r**2))), n_rows=n_rows,
        )  # fmt: skip
        front.append(model)
        if row is chosen:
            best_model = model
    assert best_model is not None
    for row in path:
        del row["subset"]
    return Discovery(front, best_model, path, kept, dropped, fitter.n_fits)
