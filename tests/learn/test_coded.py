"""CodedRows: a fixed row set predicted from leaf-bitmask tables, bit-identical to predict on
the array it was coded from (every objective, NaN, deep trees walked on codes, constant trees,
columns packed into groups), its input checks, and the Tuner's use of it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energycore import Tuner
from energycore.learn import CodedRows, GradientBoosting, PerformanceScorer, ValidityScorer
from energycore.learn import tuner as tuner_mod


def _grid(codes: tuple[int, ...]) -> np.ndarray:
    axes = [np.arange(c, dtype=np.float64) * 1.5 - 2.0 for c in codes]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(codes))


def _same(model: object, X: np.ndarray) -> None:
    coded = CodedRows(X)
    for method in ("predict", "predict_proba", "decision_function"):
        f = getattr(model, method, None)
        if f is None:
            continue
        a, b = f(X), f(coded)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), method  # bit-identical, not approximately


@pytest.mark.parametrize("objective", ["squared_error", "huber", "pairwise"])
def test_performance_scorer_predictions_are_identical(objective: str) -> None:
    X = _grid((10, 10, 10, 4))
    rng = np.random.default_rng(1)
    idx = rng.choice(len(X), 300, replace=False)
    y = ((X[idx] - 1) ** 2).sum(1) + rng.random(300)
    _same(PerformanceScorer(objective).fit(X[idx], y), X)


def test_validity_scorer_and_nan_columns() -> None:
    rng = np.random.default_rng(2)
    X = rng.integers(0, 12, size=(2000, 6)).astype(np.float64)
    X[rng.random(X.shape) < 0.15] = np.nan  # NaN takes its learnt default side
    label = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 3]) > 11).astype(int)
    _same(ValidityScorer().fit(X, label), X)


def test_deep_trees_are_walked_on_codes() -> None:
    rng = np.random.default_rng(3)
    X = rng.integers(0, 60, size=(4000, 3)).astype(np.float64)
    y = np.sin(X[:, 0] / 5) + X[:, 1] * X[:, 2] / 100 + rng.random(4000)
    m = GradientBoosting(max_depth=None, num_leaves=None, n_estimators=20).fit(X, y)
    bounds = [*m.model_.state()["roots"].tolist(), m.model_.n_nodes]
    leaves = [
        int((m.model_.state()["feature"][a:b] < 0).sum()) for a, b in itertools.pairwise(bounds)
    ]
    assert max(leaves) > 64  # the fallback path is exercised
    _same(m, X)


def test_constant_trees_and_unseen_values() -> None:
    X = _grid((5, 3))
    m = GradientBoosting(n_estimators=5).fit(X, np.ones(len(X)))  # no split in any tree
    _same(m, X)
    # coded rows need not be the training rows: values never seen in fit
    rng = np.random.default_rng(4)
    m = GradientBoosting(n_estimators=30).fit(X, X[:, 0] * X[:, 1] + rng.random(len(X)))
    _same(m, np.column_stack([np.round(rng.normal(size=500) * 4, 1), rng.integers(-5, 9, 500)]))


def test_wide_columns_get_groups_of_their_own() -> None:
    rng = np.random.default_rng(5)
    X = np.column_stack(
        [rng.integers(0, 256, 3000), rng.integers(0, 2, 3000), rng.integers(0, 200, 3000)]
    ).astype(np.float64)
    y = X[:, 0] / 50 + X[:, 1] + np.cos(X[:, 2] / 20)
    _same(GradientBoosting(n_estimators=40).fit(X, y), X)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    p=st.integers(1, 6),
    codes=st.integers(1, 20),
    depth=st.sampled_from([1, 3, 6, 8]),
    nan=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_identical_on_random_models(
    n: int, p: int, codes: int, depth: int, nan: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, codes, size=(n, p)).astype(np.float64)
    if nan:
        X[rng.random(X.shape) < 0.2] = np.nan
    y = rng.normal(size=n)
    _same(GradientBoosting(n_estimators=15, max_depth=depth).fit(X, y), X)


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="2-D"):
        CodedRows(np.zeros(5))
    with pytest.raises(ValueError, match="non-empty"):
        CodedRows(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="infinity"):
        CodedRows(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="numbers"):
        CodedRows([["a", "b"]])
    with pytest.raises(ValueError, match="column 1 has 300 distinct values"):
        CodedRows(np.column_stack([np.zeros(300), np.arange(300.0)]))
    # 255 values + NaN = 256 codes: the limit, accepted
    col = np.append(np.arange(255.0), np.nan)
    assert CodedRows(col[:, None]).n_rows == 256
    X, y = _grid((4, 4)), np.arange(16.0)
    m = GradientBoosting(n_estimators=3).fit(X, y)
    with pytest.raises(ValueError, match=r"3 features.*expecting 2"):
        m.predict(CodedRows(np.zeros((2, 3))))
    with pytest.raises(Exception, match="not fitted"):
        GradientBoosting().predict(CodedRows(X))
    assert repr(CodedRows(X)) == "CodedRows(n_rows=16, n_features=2)"


def test_models_with_text_columns_refuse_coded_rows() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"gpu": ["A", "B", "A", "B"] * 5, "b": np.arange(20.0)})
    m = GradientBoosting(n_estimators=3).fit(frame, np.arange(20.0))
    with pytest.raises(ValueError, match="categorical"):
        m.predict(CodedRows(np.zeros((2, 2))))


def _run(tuner: Tuner, rounds: int) -> list[list[dict]]:
    asked = []
    for _ in range(rounds):
        cs = tuner.ask()
        asked.append(cs)
        tuner.tell(cs, [None if c["a"] + c["b"] > 14 else (c["a"] - 3) ** 2 + c["c"] for c in cs])
    return asked


def test_tuner_picks_are_the_same_with_and_without_coded_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space = {
        "a": [a for a in range(10) for _ in range(100)],
        "b": [b for _ in range(10) for b in range(10) for _ in range(10)],
        "c": [c for _ in range(100) for c in range(10)],
    }
    fast = Tuner(space, budget=120, batch=8, seed=3)
    picks_fast = _run(fast, 12)
    assert isinstance(fast._coded, CodedRows)  # the coded path ran

    class Refused(CodedRows):
        def __init__(self, X: object) -> None:
            raise ValueError("refused")

    monkeypatch.setattr(tuner_mod, "CodedRows", Refused)
    slow = Tuner(space, budget=120, batch=8, seed=3)
    assert _run(slow, 12) == picks_fast
    assert slow._coded is None
