"""The fast fit path against a reference: the checks and summaries TemplateModel.fit now makes in
C++ (``_core.template_identify``, ``_core.template_residuals``) give the decisions, messages and
values of the numpy implementation they replaced, which is kept here as the reference."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from energycore import EnergyModel, _core
from energycore._util.columns import FEATURES, FloatArray, as_feature_array
from energycore.fit import provenance
from energycore.fit.energy import (
    _COLLINEAR_RTOL,
    _FEATURE_LIMIT,
    TemplateModel,
    TpotModel,
    TtftModel,
    _Prepared,
)
from tests.helpers import draw_design, noisy_problem, table


# ---------------------------------------------------------------- the numpy reference
def _ref_unidentified(
    m: TemplateModel, X: FloatArray, flags: list[bool], values: FloatArray
) -> list[int]:
    J = _core.template_jacobian(m.template_name, X, values.copy())
    scale = np.abs(J).max(axis=0)
    return [j for j in range(len(flags)) if not flags[j] and scale[j] == 0.0]


def _ref_prepare_table(
    m: TemplateModel, Xt: FloatArray, yt: FloatArray, w: FloatArray, hyper: Any = None
) -> _Prepared:
    flags, values = m._check_hyper() if hyper is None else (list(hyper[0]), hyper[1].copy())
    info = m.template_info()["params"]
    typical = np.array([p["typical"] for p in info], dtype=np.float64)
    rows = w > 0 if len(w) else np.ones(len(Xt), dtype=bool)
    pinned = _ref_unidentified(m, Xt[rows], flags, np.where(flags, values, typical))
    reduced: dict[int, str] = {}
    if pinned and not m.reduce:
        m._warn_unidentified(pinned, values)
    Xr = Xt[rows]
    flat = np.flatnonzero(np.ptp(Xr, axis=0) == 0)
    constant = [f"{FEATURES[k]}={Xr[0, k]:g}" for k in flat]
    why = "no effect on any row" + (f" (constant {', '.join(constant)})" if constant else "")
    for j in pinned:
        flags[j] = True
        if m.reduce:
            values[j] = 0.0
            reduced[j] = why
    if m.reduce:
        for j, reason in m._collinear(Xr, flags, values, typical).items():
            flags[j] = True
            values[j] = 0.0
            reduced[j] = reason
    return _Prepared(
        Xt, yt, w, flags, values, pinned, len(flags) - sum(flags), reduced, int(rows.sum())
    )


class _RefEnergyModel(EnergyModel):
    """EnergyModel on the reference path: numpy checks, numpy residuals and quantiles."""

    def _prepare_table(self, Xt: Any, yt: Any, w: Any, hyper: Any = None) -> _Prepared:
        return _ref_prepare_table(self, Xt, yt, w, hyper)

    def _finish(self, res: Any, prep: _Prepared) -> Any:
        super()._finish(res, prep)
        f = _core.template_value(self.template_name, prep.X, self.coef_)
        self._log_ratio = np.log(np.maximum(f, 1e-300) / prep.y)
        self.resid_quantiles_ = provenance.residual_quantiles(f, prep.y, prep.w)
        return self


# ---------------------------------------------------------------- cases
def _cases() -> list[tuple[str, dict[str, np.ndarray], np.ndarray]]:
    """(label, X, weights) designs: full, constant axes, collinear axes, zero weights, few rows."""
    out = []
    for seed in range(4):
        out.append((f"full{seed}", draw_design(np.random.default_rng(seed), 40), np.empty(0)))
    base = draw_design(np.random.default_rng(7), 40)
    n = 40
    out.append(("tp1", {**base, "tp": np.ones(n)}, np.empty(0)))
    out.append(("tp1pp1", {**base, "tp": np.ones(n), "pp": np.ones(n)}, np.empty(0)))
    out.append(("tp2pp1", {**base, "tp": np.full(n, 2.0), "pp": np.ones(n)}, np.empty(0)))
    out.append(("batch1", {**base, "batch": np.ones(n)}, np.empty(0)))
    out.append(("lens", {**base, "output_len": base["input_len"].copy()}, np.empty(0)))
    w = np.ones(n)
    w[base["tp"] > 1] = 0.0  # the rows left all have tp == 1
    out.append(("weights", base, w))
    out.append(("few", {k: v[:6] for k, v in base.items()}, np.empty(0)))
    return out


CASES = _cases()


@pytest.mark.parametrize("cls", [EnergyModel, TtftModel, TpotModel])
@pytest.mark.parametrize("reduce", [True, False])
@pytest.mark.parametrize(("label", "X", "w"), CASES, ids=[c[0] for c in CASES])
def test_checks_equal_the_numpy_reference(
    cls: type[TemplateModel], reduce: bool, label: str, X: dict[str, np.ndarray], w: np.ndarray
) -> None:
    m = cls(reduce=reduce)
    Xt = table(X)
    y = np.ones(len(Xt))
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        new = m._prepare_table(Xt, y, w)
    with warnings.catch_warnings(record=True) as want:
        warnings.simplefilter("always")
        ref = _ref_prepare_table(m, Xt, y, w)
    assert new.flags == ref.flags
    assert new.pinned == ref.pinned
    assert new.reduced == ref.reduced
    assert new.n_rows == ref.n_rows and new.n_free == ref.n_free
    np.testing.assert_array_equal(new.values, ref.values)
    assert [str(x.message) for x in got] == [str(x.message) for x in want]
    rows = w > 0 if len(w) else np.ones(len(Xt), dtype=bool)
    assert new.ranges == (Xt[rows].min(axis=0).tolist(), Xt[rows].max(axis=0).tolist())


def test_the_cases_exercise_every_decision() -> None:
    """The reference cases include pinned, collinear and clean designs (else the test above is weak)."""
    m = EnergyModel()
    kinds = set()
    for _, X, w in CASES:
        p = _ref_prepare_table(m, table(X), np.ones(len(X["tp"])), w)
        kinds |= {"pinned" if p.pinned else "none"}
        kinds |= {"collinear" for r in p.reduced.values() if r.startswith("not separable")}
    assert kinds == {"pinned", "none", "collinear"}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("x0", [False, True])
def test_fit_equals_the_reference_path(seed: int, x0: bool) -> None:
    X, y, theta = noisy_problem(seed, n=50, noise=0.02)
    if seed == 4:
        y = y.copy()
        y[3] *= 1e-4  # a gross outlier: the screen flags it and refits
    kw: dict[str, Any] = {"loss": "soft_l1", "f_scale": 0.1, "n_threads": 1}
    start = theta * 1.1 if x0 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = EnergyModel(**kw).fit(X, y, x0=start)
        ref = _RefEnergyModel(**kw).fit(X, y, x0=start)
    assert new.fit_result_.success and ref.fit_result_.success
    np.testing.assert_allclose(new.coef_, ref.coef_, rtol=1e-8, atol=0)
    np.testing.assert_allclose(new.covariance_, ref.covariance_, rtol=1e-8, atol=1e-300)
    assert new.reduced_ == ref.reduced_ and new.fixed_mask_ == ref.fixed_mask_
    assert new.ranges_ == ref.ranges_
    assert new.outliers_.keys() == ref.outliers_.keys()
    assert (seed == 4) == (3 in new.outliers_)
    for k, v in ref.outliers_.items():
        assert new.outliers_[k] == pytest.approx(v, rel=1e-12)
    assert new.resid_quantiles_ is not None and ref.resid_quantiles_ is not None
    assert new.resid_quantiles_.keys() == ref.resid_quantiles_.keys()
    for k, v in ref.resid_quantiles_.items():
        assert new.resid_quantiles_[k] == pytest.approx(v, rel=1e-12, abs=1e-15)


def test_residuals_equal_numpys_with_weights_and_bad_rows() -> None:
    X, y, theta = noisy_problem(3, n=30)
    Xt = table(X)
    w = np.ones(30)
    w[:4] = 0.0
    y = y.copy()
    y[5] = np.inf  # not finite: out of the quantiles; its log ratio is -inf
    f = _core.template_value("energy_v2", Xt, theta)
    lr, q, n_over = _core.template_residuals(
        "energy_v2", Xt, y, w, theta, np.array([0.0, 12.5, 50.0, 99.9, 100.0])
    )
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(lr, np.log(np.maximum(f, 1e-300) / y), rtol=1e-14)
    ok = (w > 0) & np.isfinite(y)
    ref = np.quantile(np.log(y[ok] / f[ok]), [0.0, 0.125, 0.5, 0.999, 1.0])
    np.testing.assert_allclose(q, ref, rtol=1e-12, atol=1e-15)
    assert n_over == -1  # no screen asked for
    _, none, _ = _core.template_residuals(
        "energy_v2", Xt[:1], y[:1], np.empty(0), theta, np.array([50.0])
    )
    assert none is None  # fewer than two rows


def test_identify_and_residuals_refuse_bad_sizes() -> None:
    Xt = table(draw_design(np.random.default_rng(0), 10))
    vals = np.ones(12)
    ok = [False] * 12
    with pytest.raises(ValueError, match="expected 12 fixed flags and values"):
        _core.template_identify("energy_v2", Xt, np.empty(0), [False] * 3, vals, True, 1e-7)
    with pytest.raises(ValueError, match="expected 12 fixed flags and values"):
        _core.template_identify("energy_v2", Xt, np.empty(0), ok, vals[:5], True, 1e-7)
    with pytest.raises(ValueError, match="w has 3 values but X has 10 rows"):
        _core.template_identify("energy_v2", Xt, np.ones(3), ok, vals, True, 1e-7)
    with pytest.raises(ValueError, match="no row has a positive weight"):
        _core.template_identify("energy_v2", Xt, np.zeros(10), ok, vals, True, 1e-7)
    with pytest.raises(ValueError, match="rtol"):
        _core.template_identify("energy_v2", Xt, np.empty(0), ok, vals, True, float("nan"))
    with pytest.raises(ValueError, match="one value per row"):
        _core.template_residuals("energy_v2", Xt, np.ones(3), np.empty(0), vals, np.array([50.0]))
    with pytest.raises(ValueError, match="percentiles"):
        _core.template_residuals("energy_v2", Xt, np.ones(10), np.empty(0), vals, np.array([101.0]))
    with pytest.raises(ValueError, match="coefficients"):
        _core.template_residuals(
            "energy_v2", Xt, np.ones(10), np.empty(0), vals[:3], np.array([50.0])
        )


def test_full_rank_certificate_settles_clean_designs_only() -> None:
    """The QR bound certifies full rank on a design that varies every axis (no SVD needed) and
    never on one with a collinearity the reference finds (the SVD then decides)."""
    m = EnergyModel()
    info = m.template_info()["params"]
    typical = np.array([p["typical"] for p in info])
    flags = [False] * 12
    for label, X, w in CASES:
        Xt = table(X)
        got = _core.template_identify(m.template_name, Xt, w, flags, typical, True, _COLLINEAR_RTOL)
        ref = _ref_prepare_table(m, Xt, np.ones(len(Xt)), w)
        collinear = any(r.startswith("not separable") for r in ref.reduced.values())
        if collinear:
            assert not got["full_rank"], label
        if label.startswith("full"):
            assert got["full_rank"], label
    no = _core.template_identify(m.template_name, Xt, np.empty(0), flags, typical, False, 1e-7)
    assert not no["full_rank"]  # without reduce nothing is certified


@pytest.mark.parametrize("k", [2.0, 3.0, 4.5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [30, 31])
def test_screen_count_equals_the_python_screen(k: float, weighted: bool, n: int) -> None:
    X, y, theta = noisy_problem(11, n=n, noise=0.05)
    Xt = table(X)
    y = y.copy()
    y[[2, 9]] *= [30.0, 0.05]  # two gross outliers
    w = np.ones(n)
    if weighted:
        w[::4] = 0.0
    lr, _, n_over = _core.template_residuals("energy_v2", Xt, y, w, theta, np.array([50.0]), k)
    rows = np.flatnonzero(w > 0)
    med = float(np.median(lr[rows]))
    sigma = max(1.4826 * float(np.median(np.abs(lr[rows] - med))), 0.02)
    assert n_over == int((np.abs(lr[rows] - med) > k * sigma).sum())
    assert n_over >= 1


def test_screen_count_unknown_on_non_finite_residuals() -> None:
    X, y, theta = noisy_problem(1, n=20)
    y = y.copy()
    y[0] = np.inf
    _, _, n_over = _core.template_residuals(
        "energy_v2", table(X), y, np.empty(0), theta, np.array([50.0]), 3.0
    )
    assert n_over == -1  # the Python screen decides
    with pytest.raises(ValueError, match="screen_k"):
        _core.template_residuals(
            "energy_v2", table(X), y, np.empty(0), theta, np.array([50.0]), -1.0
        )


@pytest.mark.parametrize(
    ("col", "value"),
    [(0, np.nan), (1, 1.5), (0, 0.0), (2, -1.0), (3, -1.0), (4, np.inf), (3, 1e12), (2, 0.0)],
)
def test_feature_fast_path_refuses_what_the_checks_refuse(col: int, value: float) -> None:
    X, y, _ = noisy_problem(0, n=10)
    Xt = table(X)
    assert _core.features_valid(Xt, _FEATURE_LIMIT)
    Xt[4, col] = value
    assert not _core.features_valid(Xt, _FEATURE_LIMIT)
    with pytest.raises(ValueError) as slow:
        as_feature_array(Xt.copy())
    with pytest.raises(ValueError) as fast:
        EnergyModel().fit(Xt, y)
    assert str(fast.value) == str(slow.value)  # the fit names the column and row as before


def test_feature_fast_path_fits_as_the_checked_path() -> None:
    """A C-contiguous float64 array (checked in C++) and the same rows in Fortran order or as a
    masked array (checked by as_feature_array) give the same fitted state."""
    X, y, theta = noisy_problem(2, n=40)
    Xt = table(X)
    kw: dict[str, Any] = {"n_threads": 1}
    fast = EnergyModel(**kw).fit(Xt, y, x0=theta)
    for other in (np.asfortranarray(Xt), np.ma.array(Xt)):
        slow = EnergyModel(**kw).fit(other, y, x0=theta)
        np.testing.assert_array_equal(fast.coef_, slow.coef_)
        assert fast.ranges_ == slow.ranges_ and fast.resid_quantiles_ == slow.resid_quantiles_
