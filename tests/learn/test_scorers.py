"""ValidityScorer and PerformanceScorer: scikit-learn estimator conventions, threshold_for_recall,
persistence and the shapes of their outputs. Accuracy against XGBoost and LightGBM on the real
tuning data is in test_gbdt_references.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from energycore import GradientBoosting, PerformanceScorer, ValidityScorer

sklearn_checks = pytest.importorskip("sklearn.utils.estimator_checks")

# scikit-learn marks this check as an expected failure for its own histogram gradient boosting
# (HistGradientBoosting*, GradientBoostingRegressor): with 30 features and 15 rows many splits
# tie exactly, and summing the same gradients in another order (shuffled, repeated rows) breaks
# the tie differently (here for ValidityScorer; PerformanceScorer happens to pass with these
# settings, and strict xfail would flag it). test_gbdt.py checks weights against repeated rows where no split ties.
_WEIGHT_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data": (
        "tie-breaking between equal-gain splits depends on summation order, as for "
        "scikit-learn's HistGradientBoosting (see test_gbdt.py for the weight test)"
    )
}


@sklearn_checks.parametrize_with_checks(
    [ValidityScorer(n_estimators=20), PerformanceScorer(n_estimators=20)],
    expected_failed_checks=lambda est: _WEIGHT_XFAIL if isinstance(est, ValidityScorer) else {},
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def _validity_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 3))
    valid = (X[:, 0] + 0.3 * rng.normal(size=n) < 0.7).astype(int)
    return X, valid


def test_validity_proba_predict_and_classes() -> None:
    X, y = _validity_data()
    s = ValidityScorer(n_estimators=30).fit(X, y)
    p = s.predict_proba(X)
    assert p.shape == (len(y), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert list(s.classes_) == [0, 1]
    np.testing.assert_array_equal(s.predict(X), (p[:, 1] >= 0.5).astype(int))
    # decision_function is the log-odds of the same probability
    np.testing.assert_allclose(1 / (1 + np.exp(-s.decision_function(X))), p[:, 1])
    assert s.predict_row(list(X[0])) == pytest.approx(p[0, 1], rel=1e-12)


def test_validity_string_and_bool_labels() -> None:
    X, y = _validity_data()
    s = ValidityScorer(n_estimators=10).fit(X, y.astype(bool))
    assert s.predict(X).dtype == bool
    labels = np.where(y == 1, "valid", "failed")
    s2 = ValidityScorer(n_estimators=10).fit(X, labels)
    assert list(s2.classes_) == ["failed", "valid"]
    np.testing.assert_allclose(s2.predict_proba(X), s.predict_proba(X))


@pytest.mark.parametrize("recall", [0.5, 0.9, 0.99, 1.0])
def test_threshold_for_recall_keeps_that_fraction_of_valid(recall: float) -> None:
    X, y = _validity_data(seed=1)
    Xh, yh = _validity_data(seed=2)
    s = ValidityScorer(n_estimators=30).fit(X, y)
    for t, (Xe, ye) in ((s.threshold_for_recall(recall), (X, y)),
                        (s.threshold_for_recall(recall, Xh, yh), (Xh, yh))):  # fmt: skip
        p = s.predict_proba(Xe)[:, 1]
        kept = p[ye == 1] >= t
        assert kept.mean() >= recall
        # the largest such cut: any higher cut keeps less than recall
        higher = p[ye == 1][p[ye == 1] > t]
        if higher.size:
            assert (p[ye == 1] >= higher.min()).mean() < recall


def test_threshold_for_recall_bad_input() -> None:
    X, y = _validity_data()
    s = ValidityScorer(n_estimators=5).fit(X, y)
    for bad in (0.0, 1.5, -1, "0.9", True):
        with pytest.raises(ValueError, match="recall"):
            s.threshold_for_recall(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both X and y"):
        s.threshold_for_recall(0.9, X)


def test_validity_rejects_bad_labels() -> None:
    X, y = _validity_data(n=50)
    with pytest.raises(ValueError, match="Only binary"):
        ValidityScorer().fit(X, np.arange(50) % 3)
    with pytest.raises(ValueError, match="one class"):
        ValidityScorer().fit(X, np.ones(50))
    with pytest.raises(ValueError, match="NaN"):
        ValidityScorer().fit(X, np.where(y == 1, 1.0, np.nan))
    with pytest.raises(ValueError, match="continuous"):
        ValidityScorer().fit(X, np.linspace(0, 1, 50))


def test_performance_scorer_objectives_and_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"tp": rng.integers(1, 9, 400), "batch": rng.integers(1, 64, 400)})
    y = np.log(df["batch"] / df["tp"]) + 0.05 * rng.normal(size=400)
    for objective in ("squared_error", "huber"):
        s = PerformanceScorer(objective, n_estimators=50).fit(df, y)
        assert list(s.feature_names_in_) == ["tp", "batch"]
        assert np.corrcoef(s.predict(df), y)[0, 1] > 0.95
    r = PerformanceScorer("pairwise", n_estimators=50).fit(df, y, group=np.arange(400) % 4)
    assert np.corrcoef(r.predict(df), y)[0, 1] > 0.9
    with pytest.raises(ValueError, match="feature names should match"):
        s.predict(df[["batch", "tp"]])
    with pytest.raises(ValueError, match="objective"):
        PerformanceScorer("logistic").fit(df, y)


def test_scorers_save_load(tmp_path: Path) -> None:
    X, y = _validity_data()
    v = ValidityScorer(n_estimators=20).fit(X, y)
    v.save(tmp_path / "v.json")
    v2 = ValidityScorer.load(tmp_path / "v.json")
    np.testing.assert_array_equal(v2.predict_proba(X), v.predict_proba(X))
    assert v2.threshold_for_recall(0.9) == v.threshold_for_recall(0.9)
    assert v2.get_params() == v.get_params()
    p = PerformanceScorer(n_estimators=20).fit(X, X[:, 0] * 2)
    p.save(tmp_path / "p.json")
    np.testing.assert_array_equal(
        PerformanceScorer.load(tmp_path / "p.json").predict(X), p.predict(X)
    )
    with pytest.raises(ValueError, match="holds a 'PerformanceScorer'"):
        ValidityScorer.load(tmp_path / "p.json")
    with pytest.raises(ValueError, match="holds a 'PerformanceScorer'"):
        GradientBoosting.load(tmp_path / "p.json")
