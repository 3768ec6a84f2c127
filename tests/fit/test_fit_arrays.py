"""The array fast paths of the fit (issue 18, fit speed): ``EnergyModel.fit`` on a plain
``(n, 5)`` array and ``fit_many(..., as_arrays=True)`` on a stack of problems."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from energycore import EnergyModel, _core
from energycore.errors import ConvergenceWarning
from energycore.fit.energy import FitManyResult, IdentifiabilityWarning, TtftModel
from tests.helpers import noisy_problem, table


def _stack(k: int, n: int = 50, noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    probs = [noisy_problem(s, n=n, noise=noise) for s in range(k)]
    X = np.ascontiguousarray(np.stack([table(p[0]) for p in probs]))
    y = np.ascontiguousarray(np.stack([p[1] for p in probs]))
    return X, y


@pytest.mark.parametrize("reduce", [True, False])
def test_array_fit_equals_dict_fit(reduce: bool) -> None:
    X, y, _ = noisy_problem(3, n=40, noise=0.03)
    a = EnergyModel(n_threads=1, reduce=reduce).fit(table(X), y)
    d = EnergyModel(n_threads=1, reduce=reduce).fit(X, y)
    np.testing.assert_array_equal(a.coef_, d.coef_)
    np.testing.assert_array_equal(a.covariance_, d.covariance_)
    assert a.reduced_ == d.reduced_ and a.ranges_ == d.ranges_
    assert a.resid_quantiles_ == d.resid_quantiles_
    assert a.fit_result_ == d.fit_result_


def test_array_fit_accepts_other_layouts_and_dtypes() -> None:
    X, y, _ = noisy_problem(4, n=30)
    T = table(X)
    ref = EnergyModel(n_threads=1).fit(T, y).coef_
    for alt in (np.asfortranarray(T), T.astype(np.float32).astype(np.float64), T.tolist()):
        if isinstance(alt, list):  # a nested list is not the array path: named columns needed
            with pytest.raises(ValueError, match="X: expected"):
                EnergyModel(n_threads=1).fit(alt, y)
            continue
        np.testing.assert_array_equal(EnergyModel(n_threads=1).fit(alt, y).coef_, ref)


@pytest.mark.parametrize(
    ("col", "value", "match"),
    [
        (3, np.nan, r"X: 'input_len' has a non-finite value \(nan\) at row 7"),
        (4, -1.0, r"X: 'output_len' must be non-negative, got -1.0 at row 7"),
        (0, 1.5, r"X: 'tp' must be an integer, got 1.5 at row 7"),
        (2, 0.0, r"X: 'batch' must be positive, got 0.0 at row 7"),
        (2, 2.0**30, r"X: 'batch' is 1.07374e\+09 at row 7, past the physical bound"),
    ],
)
def test_array_fit_bad_values_name_column_and_row(col: int, value: float, match: str) -> None:
    X, y, _ = noisy_problem(0, n=20)
    T = table(X)
    T[7, col] = value
    with pytest.raises(ValueError, match=match):
        EnergyModel().fit(T, y)


def test_array_fit_bad_shape_and_dtype() -> None:
    X, y, _ = noisy_problem(0, n=20)
    T = table(X)
    with pytest.raises(ValueError, match=r"X: expected an array of shape \(n, 5\).*\(20, 4\)"):
        EnergyModel().fit(T[:, :4], y)
    with pytest.raises(ValueError, match=r"X: expected an array of shape \(n, 5\)"):
        EnergyModel().fit(T[None], y)
    with pytest.raises(ValueError, match="X: expected real numbers"):
        EnergyModel().fit(T.astype(complex), y)
    with pytest.raises(ValueError, match="energy_j: has 19 values but X has 20 rows"):
        EnergyModel().fit(T, y[:19])


def test_fit_many_arrays_equals_list_path() -> None:
    X, y = _stack(12)
    kw = {"n_starts": 2, "n_threads": 2}
    res = EnergyModel.fit_many(X, y, as_arrays=True, **kw)
    assert isinstance(res, FitManyResult) and len(res) == 12
    models = EnergyModel.fit_many(list(X), list(y), reduce=False, outliers=0, **kw)
    np.testing.assert_array_equal(res.coef_, np.stack([m.coef_ for m in models]))
    np.testing.assert_array_equal(res.cost_, [m.fit_result_.cost for m in models])
    np.testing.assert_array_equal(res.n_iter_, [m.fit_result_.iterations for m in models])
    assert res.success_.tolist() == [m.fit_result_.success for m in models]
    for i in (0, 5, -1):
        one, ref = res.model(i), models[i]
        np.testing.assert_array_equal(one.coef_, ref.coef_)
        np.testing.assert_array_equal(one.covariance_, ref.covariance_)
        assert one.fit_result_ == ref.fit_result_
        assert one.ranges_ == ref.ranges_ and one.resid_quantiles_ == ref.resid_quantiles_
        assert one.outliers_ == {} and one.fixed_mask_ == ref.fixed_mask_
        np.testing.assert_allclose(one.predict(table(noisy_problem(99)[0])), ref.predict(
            table(noisy_problem(99)[0])))  # fmt: skip
    # a list of equal-size tables (dicts) is stacked; the answer is the same
    dicts = [noisy_problem(s, n=50, noise=0.02)[0] for s in range(12)]
    res2 = EnergyModel.fit_many(dicts, y, as_arrays=True, **kw)
    np.testing.assert_array_equal(res2.coef_, res.coef_)


def test_fit_many_arrays_thread_count_does_not_matter() -> None:
    X, y = _stack(9)
    a = EnergyModel.fit_many(X, y, as_arrays=True, n_starts=3, n_threads=1)
    b = EnergyModel.fit_many(X, y, as_arrays=True, n_starts=3, n_threads=2)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_fit_many_arrays_weights_fixed_and_unidentified() -> None:
    X, y = _stack(6, n=30)
    w = np.ones_like(y)
    w[:, :3] = 0.0
    X = X.copy()
    X[2, :, 0] = 1.0  # problem 2: tp == 1 everywhere: t3, t5, t9, t11 have no effect
    kw = {"n_starts": 1, "fixed": {"t10": 0.2}, "n_threads": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one of these stops at max_iter
        with pytest.warns(IdentifiabilityWarning, match="in 1 of 6 problems.*t3, t5, t9, t11"):
            res = EnergyModel.fit_many(X, y, w, as_arrays=True, **kw)
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        models = EnergyModel.fit_many(list(X), list(y), list(w), reduce=False, outliers=0, **kw)
    np.testing.assert_array_equal(res.status_, [m.fit_result_.status for m in models])
    np.testing.assert_array_equal(res.coef_, np.stack([m.coef_ for m in models]))
    assert res.fixed_mask_[2].tolist() == list(models[2].fixed_mask_)
    assert res.fixed_mask_[:, 9].all() and (res.coef_[:, 9] == 0.2).all()
    assert res.model(2).unidentified_ == models[2].unidentified_ == ("t3", "t5", "t9", "t11")


def test_fit_many_arrays_other_template() -> None:
    rng = np.random.default_rng(0)
    k, n = 4, 40
    X = np.empty((k, n, 5))
    X[..., 0] = rng.choice([1, 2, 4], (k, n))
    X[..., 1] = rng.choice([1, 2], (k, n))
    X[..., 2] = rng.choice([1, 8, 32], (k, n))
    X[..., 3] = rng.choice([128.0, 1024.0], (k, n))
    X[..., 4] = rng.choice([64.0, 256.0], (k, n))
    theta = np.array([1e-5, 1e-10, -0.8, 0.1, 1e-6, 1e-2])
    y = np.stack([_core.template_value("ttft_v1", X[g], theta, 1) for g in range(k)])
    y *= np.exp(rng.normal(0, 0.02, y.shape))
    res = TtftModel.fit_many(X, y, as_arrays=True, n_starts=2, n_threads=1)
    ref = TtftModel.fit_many(list(X), list(y), n_starts=2, n_threads=1, reduce=False, outliers=0)
    np.testing.assert_array_equal(res.coef_, np.stack([m.coef_ for m in ref]))
    assert res.param_names == TtftModel.param_names()


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        ("X", np.nan, r"Xs: 'input_len' has a non-finite value \(nan\) at problem 3, row 7"),
        ("X", -2.0, r"Xs: 'input_len' must be non-negative, got -2.0 at problem 3, row 7"),
        ("y", np.nan, r"energy_j: must be finite, got nan at problem 3, row 7"),
        ("y", -1.0, r"energy_j: must be positive, got -1.0 at problem 3, row 7"),
        ("w", -1.0, r"sample_weights: must be non-negative, got -1.0 at problem 3, row 7"),
        ("w", np.inf, r"sample_weights: must be finite, got inf at problem 3, row 7"),
    ],
)
def test_fit_many_arrays_bad_values_name_problem_and_row(
    where: str, value: float, match: str
) -> None:
    X, y = _stack(5, n=20)
    w = np.ones_like(y)
    {"X": X[:, :, 3], "y": y, "w": w}[where][3, 7] = value
    with pytest.raises(ValueError, match=match):
        EnergyModel.fit_many(X, y, w, as_arrays=True)


def test_fit_many_arrays_bad_shapes_and_options() -> None:
    X, y = _stack(4, n=20)
    with pytest.raises(ValueError, match=r"Xs: expected an array of shape \(n_problems, n_rows"):
        EnergyModel.fit_many(X[0], y, as_arrays=True)
    with pytest.raises(ValueError, match=r"Xs: expected an array.*\(4, 20, 3\)"):
        EnergyModel.fit_many(X[..., :3], y, as_arrays=True)
    with pytest.raises(ValueError, match=r"energy_j: expected shape \(4, 20\).*\(4, 19\)"):
        EnergyModel.fit_many(X, y[:, :19], as_arrays=True)
    with pytest.raises(ValueError, match=r"sample_weights: expected shape \(4, 20\)"):
        EnergyModel.fit_many(X, y, np.ones(20), as_arrays=True)
    w = np.ones_like(y)
    w[1] = 0.0
    with pytest.raises(ValueError, match="sample_weights: all weights are zero in problem 1"):
        EnergyModel.fit_many(X, y, w, as_arrays=True)
    with pytest.raises(ValueError, match="Xs: as_arrays=True needs the same number of rows"):
        EnergyModel.fit_many([X[0], X[1, :10]], [y[0], y[1, :10]], as_arrays=True)
    with pytest.raises(ValueError, match=r"problem 1: X: 'tp'"):
        bad = X[1].copy()
        bad[0, 0] = 0.5
        EnergyModel.fit_many([X[0], bad], y[:2], as_arrays=True)
    with pytest.raises(ValueError, match=r"reduce: fit_many\(as_arrays=True\) fits every"):
        EnergyModel.fit_many(X, y, as_arrays=True, reduce=True)
    with pytest.raises(ValueError, match="outliers: fit_many"):
        EnergyModel.fit_many(X, y, as_arrays=True, outliers=5)
    with pytest.raises(ValueError, match="loss: unknown loss"):
        EnergyModel.fit_many(X, y, as_arrays=True, loss="l3")
    with pytest.raises(ValueError, match=r"problem 0: X: 8 row\(s\) cannot determine 12 free"):
        EnergyModel.fit_many(X[:, :8], y[:, :8], as_arrays=True)
    res = EnergyModel.fit_many(X, y, as_arrays=True, n_starts=1)
    for bad_i in (4, -5, 1.0, True):
        with pytest.raises(ValueError, match=r"i: must be a problem index in \[0, 4\)"):
            res.model(bad_i)  # type: ignore[arg-type]


def test_fit_many_arrays_reports_the_iteration_limit_and_failures() -> None:
    X, y = _stack(5, n=30)
    with pytest.warns(ConvergenceWarning, match="5 of 5 fits did not converge within max_iter=1"):
        res = EnergyModel.fit_many(X, y, as_arrays=True, n_starts=1, max_iter=1)
    assert (res.status_ == 0).all() and not res.success_.any()
    assert "5 at max_iter" in repr(res)
    y2 = y.copy()
    y2[1] = 1e-320  # log(f / y) overflows to inf at every start: the fit fails
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = EnergyModel.fit_many(X, y2, as_arrays=True, n_starts=1)
    assert res.status_[1] == -1 and not res.success_[1] and res.success_[[0, 2, 3, 4]].all()
    with pytest.raises(ValueError, match="problem 1: EnergyModel: the fit failed"):
        res.model(1)


def test_residual_quantiles_equal_numpys() -> None:
    from energycore.fit.provenance import RESID_PERCENTILES, residual_quantiles

    rng = np.random.default_rng(5)
    for n in (2, 3, 4, 7, 50, 51, 1000):
        p = rng.lognormal(0.0, 0.3, n)
        y = rng.lognormal(0.0, 0.3, n)
        q = residual_quantiles(p, y)
        assert q is not None
        ref = np.quantile(np.log(y / p), np.asarray(RESID_PERCENTILES) / 100.0)
        np.testing.assert_array_equal(list(q.values()), ref)
        assert list(q) == list(RESID_PERCENTILES)


def test_median_helper_equals_numpys() -> None:
    from energycore.fit.energy import _median

    rng = np.random.default_rng(6)
    for n in (1, 2, 3, 10, 11):
        a = rng.normal(size=n)
        assert _median(a) == float(np.median(a))
