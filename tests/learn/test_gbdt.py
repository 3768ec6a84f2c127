"""GradientBoosting (C++ histogram trees): determinism, persistence, the single-row path, missing
values, constraints, early stopping, weights, input checks. Accuracy against XGBoost and
LightGBM on real tuning data is in test_gbdt_references.py."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energycore import GradientBoosting, _core

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _data(n: int = 400, p: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n)
    return X, y


def _leaves_per_tree(model: GradientBoosting) -> list[int]:
    s = model.model_.state()
    bounds = [*s["roots"].tolist(), len(s["feature"])]
    return [int((s["feature"][a:b] < 0).sum()) for a, b in itertools.pairwise(bounds)]


def _depths(model: GradientBoosting) -> list[int]:
    """Depth of every leaf of every tree."""
    s = model.model_.state()
    depth = np.zeros(len(s["feature"]), dtype=int)
    out = []
    for i, (f, left) in enumerate(zip(s["feature"], s["left"])):
        if f < 0:
            out.append(int(depth[i]))
        else:
            depth[left] = depth[left + 1] = depth[i] + 1
    return out


# ---- fitting ------------------------------------------------------------------------------


@pytest.mark.parametrize("growth", ["depthwise", "leafwise"])
def test_fits_a_nonlinear_function(growth: str) -> None:
    X, y = _data(2000)
    Xt, yt = _data(1000, seed=1)
    m = GradientBoosting(growth=growth, num_leaves=31 if growth == "leafwise" else None)
    m.fit(X, y)
    rmse = np.sqrt(np.mean((m.predict(Xt) - yt) ** 2))
    assert rmse < 0.4 * yt.std()  # R^2 > 0.84 from 2000 noisy rows


def test_deterministic_for_a_seed_and_any_thread_count() -> None:
    X, y = _data(12000, p=20)  # large enough for the fit to use threads (> 200k values)
    kw = {"subsample": 0.7, "colsample": 0.6, "n_estimators": 30}
    a = GradientBoosting(random_state=3, n_jobs=1, **kw).fit(X, y).predict(X)
    b = GradientBoosting(random_state=3, n_jobs=2, **kw).fit(X, y).predict(X)
    c = GradientBoosting(random_state=4, n_jobs=1, **kw).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "kw",
    [
        {"growth": "leafwise", "num_leaves": 31, "max_depth": None, "min_child_samples": 20},
        {"max_depth": 6},
        {"objective": "logistic", "max_depth": 4},
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_two_threads_grow_the_same_trees(kw: dict, weighted: bool) -> None:
    # 40k rows: the first splits partition their rows in chunks across the threads, and every
    # split builds and searches its histograms in feature blocks; NaN in one column exercises
    # the learned default side, weights the (gradient, hessian, count) histograms; the
    # gradients and the training predictions are updated in chunks across the threads.
    X, y = _data(40_000, p=6, seed=5)
    X[np.random.default_rng(1).uniform(size=X.shape[0]) < 0.05, 1] = np.nan
    if kw.get("objective") == "logistic":
        y = (y > np.median(y)).astype(float)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=X.shape[0]) if weighted else None
    states = []
    for n_jobs in (1, 2):
        m = GradientBoosting(n_estimators=15, n_jobs=n_jobs, **kw).fit(X, y, sample_weight=w)
        states.append(m.model_.state())
    for key, a in states[0].items():
        np.testing.assert_array_equal(a, states[1][key], err_msg=key)


def test_depth_and_leaf_limits() -> None:
    X, y = _data(2000)
    d = GradientBoosting(max_depth=3, n_estimators=10).fit(X, y)
    assert max(_depths(d)) == 3
    assert max(_leaves_per_tree(d)) <= 8
    lw = GradientBoosting(growth="leafwise", num_leaves=5, max_depth=None, n_estimators=10)
    lw.fit(X, y)
    assert max(_leaves_per_tree(lw)) == 5
    assert max(_depths(lw)) >= 3  # leaf-wise trees are not balanced
    with pytest.raises(ValueError, match="num_leaves"):
        GradientBoosting(growth="leafwise").fit(X, y)


def test_min_child_samples_and_weight() -> None:
    X, y = _data(500)
    m = GradientBoosting(min_child_samples=50, n_estimators=5).fit(X, y)
    s = m.model_.state()
    # cover is the hessian sum: one per row for squared error
    assert s["cover"][s["feature"] < 0].min() >= 50
    m2 = GradientBoosting(min_child_weight=80.0, n_estimators=5).fit(X, y)
    s2 = m2.model_.state()
    assert s2["cover"][s2["feature"] < 0].min() >= 80


def test_early_stopping_keeps_the_best_round() -> None:
    X, y = _data(600)
    Xv, yv = _data(300, seed=5)
    m = GradientBoosting(n_estimators=500, learning_rate=0.3, early_stopping_rounds=10)
    m.fit(X, y, eval_set=(Xv, yv))
    curve = m.validation_curve_
    assert m.n_trees_ < 500
    assert len(curve) == m.n_trees_ + 10
    assert np.argmin(curve) == m.n_trees_ - 1
    rmse = np.sqrt(np.mean((m.predict(Xv) - yv) ** 2))
    assert rmse == pytest.approx(curve.min(), rel=1e-9)


def test_monotone_constraints() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(1000, 2))
    y = X[:, 0] + np.sin(6 * X[:, 0]) * 0.5 + 0.3 * X[:, 1] + 0.2 * rng.normal(size=1000)
    grid = np.column_stack([np.linspace(-1, 1, 400), np.zeros(400)])
    free = GradientBoosting(n_estimators=50).fit(X, y).predict(grid)
    assert (np.diff(free) < 0).any()  # the data are not monotone
    up = GradientBoosting(n_estimators=50, monotone=[1, 0]).fit(X, y).predict(grid)
    assert (np.diff(up) >= 0).all()
    down = GradientBoosting(n_estimators=50, monotone=[-1, 0]).fit(X, -y).predict(grid)
    assert (np.diff(down) <= 0).all()
    for bad in ([1], [2, 0]):
        with pytest.raises(ValueError, match="monotone"):
            GradientBoosting(monotone=bad).fit(X, y)


def test_monotone_by_column_name() -> None:
    pd = pytest.importorskip("pandas")
    X, y = _data(300, p=3)
    df = pd.DataFrame(X[:, :2], columns=["batch", "tp"])
    m = GradientBoosting(n_estimators=20, monotone={"batch": 1}).fit(df, y)
    grid = pd.DataFrame({"batch": np.linspace(-2, 2, 50), "tp": np.zeros(50)})
    assert (np.diff(m.predict(grid)) >= 0).all()
    with pytest.raises(ValueError, match="unknown columns"):
        GradientBoosting(monotone={"gpu": 1}).fit(df, y)


def test_objectives() -> None:
    X, y = _data(1000)
    # Huber: robust to a few wild targets
    y_out = y.copy()
    y_out[::50] += 50
    sq = GradientBoosting(n_estimators=50).fit(X, y_out).predict(X)
    hu = GradientBoosting("huber", n_estimators=50, huber_delta=0.5).fit(X, y_out).predict(X)
    clean = np.arange(1000) % 50 != 0
    assert np.abs(hu - y)[clean].mean() < 0.7 * np.abs(sq - y)[clean].mean()
    # logistic: probabilities
    lab = (y > 0).astype(float)
    p = GradientBoosting("logistic", n_estimators=50).fit(X, lab).predict(X)
    assert ((p > 0) & (p < 1)).all()
    assert ((p > 0.5) == (lab == 1)).mean() > 0.95
    # pairwise: scores order the rows within groups like y
    g = np.arange(1000) // 100
    r = GradientBoosting("pairwise", n_estimators=50).fit(X, y, group=g).predict(X)
    assert _core.gbdt_pairwise_accuracy(r, y, g) > 0.9


def test_sample_weights_match_repeated_rows() -> None:
    # One feature with distinct values: no two splits tie, so weights 0/1/2/3 must give the
    # same trees as dropping/repeating rows (up to summation order).
    rng = np.random.default_rng(0)
    x = rng.permutation(200).astype(float)[:, None]
    y = np.sin(x[:, 0] / 20) + 0.1 * rng.normal(size=200)
    w = rng.integers(0, 4, size=200)
    kw = {"n_estimators": 20, "min_child_weight": 0.0}
    a = GradientBoosting(**kw).fit(x, y, sample_weight=w)
    b = GradientBoosting(**kw).fit(np.repeat(x, w, axis=0), np.repeat(y, w))
    grid = np.linspace(-5, 205, 500)[:, None]
    np.testing.assert_allclose(a.predict(grid), b.predict(grid), rtol=1e-9, atol=1e-12)


def test_feature_importance() -> None:
    X, y = _data(1000, p=6)
    m = GradientBoosting(n_estimators=30).fit(X, y)
    gain = m.feature_importances_
    assert gain.sum() == pytest.approx(1.0)
    assert set(np.argsort(gain)[-3:]) == {0, 1, 2}
    split = m.feature_importance("split")
    assert split.sum() == (m.model_.state()["feature"] >= 0).sum()
    with pytest.raises(ValueError, match="importance"):
        m.feature_importance("cover")


# ---- missing values -----------------------------------------------------------------------


def test_nan_features_learn_a_default_direction() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    x = rng.uniform(0, 1, n)
    y = x.copy()
    missing = rng.uniform(size=n) < 0.2
    y[missing] = 2.0  # missing values behave like very large x
    x[missing] = np.nan
    X = np.column_stack([x, rng.normal(size=n)])
    m = GradientBoosting(n_estimators=50).fit(X, y)
    p = m.predict(np.array([[np.nan, 0.0], [0.1, 0.0], [0.9, 0.0]]))
    assert p[0] == pytest.approx(2.0, abs=0.1)
    assert p[1] == pytest.approx(0.1, abs=0.1)
    m2 = GradientBoosting(n_estimators=50).fit(X, np.where(missing, -1.0, y))
    assert m2.predict(np.array([[np.nan, 0.0]]))[0] == pytest.approx(-1.0, abs=0.1)


@pytest.mark.parametrize("like_large", [False, True])
def test_nan_default_direction_of_a_split(like_large: bool) -> None:
    # A step at x = 0.5; missing rows behave like one side of it. One stump: the best split is
    # the step with the missing rows sent to their side (isolating them would leave the step).
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 1000)
    y = (x > 0.5).astype(float)
    missing = rng.uniform(size=1000) < 0.1
    y[missing] = 1.0 if like_large else 0.0
    x[missing] = np.nan
    m = GradientBoosting(n_estimators=1, max_depth=1, learning_rate=1.0, reg_lambda=0.0)
    m.fit(x[:, None], y)
    s = m.model_.state()
    assert s["feature"][0] == 0
    assert s["value"][0] == pytest.approx(0.5, abs=0.01)
    assert s["default_left"][0] == (0 if like_large else 1)
    assert m.predict(np.array([[np.nan]]))[0] == pytest.approx(1.0 if like_large else 0.0)


def test_nan_at_predict_time_only() -> None:
    X, y = _data(500)
    m = GradientBoosting(n_estimators=20).fit(X, y)
    Xn = X.copy()
    Xn[::3, 0] = np.nan
    p = m.predict(Xn)
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p, [m.predict_row(r) for r in Xn])


# ---- single row, threads ------------------------------------------------------------------


def test_single_row_equals_batch() -> None:
    X, y = _data(500)
    for objective, target in (("squared_error", y), ("logistic", (y > 0).astype(int))):
        m = GradientBoosting(objective, n_estimators=40).fit(X, target)
        batch = m.predict(X)
        for i in range(0, 500, 7):
            assert m.predict_row(X[i]) == batch[i]
            assert m.predict_row(X[i].tolist()) == batch[i]
            assert m.predict_row(tuple(X[i])) == batch[i]
            assert (
                m.predict_row(X[i].astype(np.float32))
                == m.predict(X[i : i + 1].astype(np.float32))[0]
            )


def test_single_row_bad_input() -> None:
    X, y = _data(100)
    m = GradientBoosting(n_estimators=5).fit(X, y)
    with pytest.raises(ValueError, match="expected 5 values"):
        m.predict_row([1.0, 2.0])
    with pytest.raises(ValueError, match="value 1 is not a number"):
        m.predict_row([1.0, "a", 0, 0, 0])
    with pytest.raises(ValueError, match="row"):
        m.predict_row(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="not fitted"):
        GradientBoosting().predict_row([0.0] * 5)


def test_concurrent_predict_from_threads() -> None:
    X, y = _data(20000, p=8)
    m = GradientBoosting(n_estimators=50).fit(X, y)
    expected = m.predict(X)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        if k % 2:
            results[k] = m.predict(X)
        else:
            results[k] = np.array([m.predict_row(r) for r in X[:2000]])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, r in results.items():
        np.testing.assert_array_equal(r, expected if k % 2 else expected[:2000])


# ---- persistence --------------------------------------------------------------------------


def test_save_load_identical(tmp_path: Path) -> None:
    X, y = _data(500)
    Xn = X.copy()
    Xn[::4, 1] = np.nan
    m = GradientBoosting(n_estimators=30, subsample=0.8, random_state=1).fit(Xn, y)
    m.save(tmp_path / "m.json")
    m2 = GradientBoosting.load(tmp_path / "m.json")
    np.testing.assert_array_equal(m2.predict(Xn), m.predict(Xn))
    assert m2.get_params() == m.get_params()
    np.testing.assert_array_equal(m2.feature_importances_, m.feature_importances_)
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(m)).predict(Xn), m.predict(Xn))


def test_fixture_model_still_loads_and_predicts_the_same() -> None:
    m = GradientBoosting.load(FIXTURES / "gbdt_v1.json")
    ref = json.loads((FIXTURES / "gbdt_v1_predictions.json").read_text())
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.array(ref["X"], dtype=float), columns=ref["feature_names"])
    np.testing.assert_array_equal(m.predict(X), np.array(ref["predictions"]))
    assert list(m.feature_names_in_) == ref["feature_names"]
    assert m.n_trees_ == 8


def _valid_file(tmp_path: Path) -> dict:
    X, y = _data(200)
    Xn = X.copy()
    Xn[::5, 0] = np.nan
    m = GradientBoosting(n_estimators=3, max_depth=3).fit(Xn, y)
    return m.to_dict()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format_version=99), "newer energycore"),
        (lambda d: d.update(format_version="1"), "format_version"),
        (lambda d: d.update(format="x"), "not an energycore"),
        (lambda d: d.pop("model"), "missing"),
        (lambda d: d["model"].pop("left"), "left"),
        (
            lambda d: d["model"].update(left=[5] * len(d["model"]["left"])),
            "unreachable|children|parents",
        ),
        (lambda d: d["model"]["feature"].__setitem__(0, 77), "feature"),
        (lambda d: d["model"]["value"].__setitem__(0, "x"), "value"),
        (lambda d: d["model"].update(roots=[0, 1000]), "node range"),
        (lambda d: d["model"].update(n_features=-1), "n_features"),
        (lambda d: d.update(n_features_in=3), "n_features_in"),
        (lambda d: d["params"].update(bogus=1), "params"),
    ],
)
def test_corrupt_model_file_raises_value_error(tmp_path: Path, edit, match: str) -> None:
    d = _valid_file(tmp_path)
    edit(d)
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=match):
        GradientBoosting.load(tmp_path / "bad.json")


def test_truncated_or_missing_file_raises_value_error(tmp_path: Path) -> None:
    text = json.dumps(_valid_file(tmp_path))
    for cut in (0, 1, len(text) // 3, len(text) - 1):
        (tmp_path / "t.json").write_text(text[:cut])
        with pytest.raises(ValueError, match="not valid JSON"):
            GradientBoosting.load(tmp_path / "t.json")
    with pytest.raises(ValueError, match="cannot read"):
        GradientBoosting.load(tmp_path / "absent.json")


@given(
    key=st.sampled_from(["left", "feature", "roots", "value", "default_left"]),
    pos=st.integers(0, 10_000),
    value=st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=True)),
)
def test_random_corruption_never_crashes(key: str, pos: int, value: float) -> None:
    d = _valid_file(Path("."))
    arr = d["model"][key]
    arr[pos % len(arr)] = value
    try:
        m = GradientBoosting.from_dict(d)
    except ValueError:
        return
    # accepted: then every row must predict without crashing
    X, _ = _data(50)
    assert m.predict(X).shape == (50,)


# ---- bad inputs ---------------------------------------------------------------------------


def test_bad_inputs_raise_value_error_naming_the_problem() -> None:
    X, y = _data(100)
    m = GradientBoosting(n_estimators=5)
    cases = [
        ((X[:, :0], y), "0 feature"),
        ((X[:0], y[:0]), "0 sample"),
        ((X, y[:50]), "50 values for 100 rows"),
        ((np.where(X > 2, np.inf, X), y), "infinity"),
        ((X.astype(str).astype(object) + "x", y), "non-numeric"),
        ((X, np.where(y > 1, np.nan, y)), "y: Input y contains NaN"),
        ((X, np.array(["fast"] * 100)), "y: contains non-numeric"),
        ((X[0], y), "Expected 2D array"),
    ]
    for (Xb, yb), match in cases:
        with pytest.raises(ValueError, match=match):
            m.fit(Xb, yb)
    for w, match in (
        (np.full(100, np.nan), "contains NaN or infinity"),
        (np.full(100, np.inf), "contains NaN or infinity"),
        (-np.ones(100), "weights must be non-negative"),
        (np.zeros(100), "all weights are zero"),
        (np.ones(3), "expected shape"),
    ):
        with pytest.raises(ValueError, match=f"sample_weight: {match}"):
            m.fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        GradientBoosting("logistic").fit(X, np.arange(100) % 3)
    with pytest.raises(ValueError, match="objective"):
        GradientBoosting("poisson").fit(X, y)
    for name, value in (("learning_rate", 0.0), ("subsample", 1.5), ("max_bin", 300),
                        ("max_bin", 2.5), ("reg_lambda", -1.0), ("n_estimators", 0)):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            GradientBoosting(**{name: value}).fit(X, y)
    m.fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but GradientBoosting is expecting 5"):
        m.predict(X[:, :4])


def test_dataframe_text_columns_are_categorical(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    gpu = rng.choice(["A100", "H100", "MI300X"], size=600)
    tp = rng.integers(1, 9, size=600).astype(float)
    y = np.where(gpu == "H100", 2.0, 0.0) + np.where(gpu == "MI300X", -1.0, 0.0) + 0.1 * tp
    df = pd.DataFrame({"gpu": gpu, "tp": tp})
    m = GradientBoosting(n_estimators=50).fit(df, y)
    assert m.categories_ == {"gpu": ["A100", "H100", "MI300X"]}
    assert np.abs(m.predict(df) - y).max() < 0.1
    # codes are the positions in categories_; predict_row takes them
    assert m.predict_row([1.0, 2.0]) == pytest.approx(2.2, abs=0.1)
    # an unknown category (or None) is missing: a finite prediction by the learned direction
    new = pd.DataFrame({"gpu": ["B200", None], "tp": [2.0, 2.0]})
    assert np.isfinite(m.predict(new)).all()
    # a mapping of columns (ConfigSpace.to_frame(as_frame=False)): by name, extra ones ignored
    cols = {"index": np.arange(600), "tp": tp, "gpu": gpu.astype(object), "n_gpus": tp}
    np.testing.assert_array_equal(m.predict(cols), m.predict(df))
    with pytest.raises(ValueError, match=r"columns \['gpu'\] are missing"):
        m.predict({"tp": tp})
    m.save(tmp_path / "c.json")
    m2 = GradientBoosting.load(tmp_path / "c.json")
    assert m2.categories_ == m.categories_
    np.testing.assert_array_equal(m2.predict(df), m.predict(df))
    # values that are neither text nor numbers, or a mix, are named
    with pytest.raises(ValueError, match="column 'gpu' mixes text and numbers"):
        GradientBoosting().fit(pd.DataFrame({"gpu": ["A100", 3] * 5, "tp": tp[:10]}), y[:10])
    with pytest.raises(ValueError, match="column 'gpu' holds values that are neither"):
        GradientBoosting().fit(pd.DataFrame({"gpu": [{"a": 1}] * 10, "tp": tp[:10]}), y[:10])


def test_scorers_on_config_space_columns() -> None:
    pytest.importorskip("pandas")
    from energycore import ConfigSpace

    space = ConfigSpace({"gpu": ["A100", "H100"], "tp": [1, 2, 4, 8], "batch": [1, 4, 16, 64]})
    frame = space.to_frame()
    y = np.log(frame["batch"] / frame["tp"]) + np.where(frame["gpu"] == "H100", -0.5, 0.0)
    m = GradientBoosting(n_estimators=100, learning_rate=0.3, min_child_weight=0.0)
    m.fit(frame, y)
    assert np.abs(m.predict(frame) - y).max() < 0.2
    np.testing.assert_array_equal(m.predict(space.to_frame(as_frame=False)), m.predict(frame))


def test_pairwise_accuracy_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)  # ties in score
    y = rng.integers(0, 4, 60).astype(float)  # ties in label
    g = rng.integers(0, 3, 60)
    good = pairs = 0.0
    for i in range(60):
        for j in range(i + 1, 60):
            if g[i] != g[j] or y[i] == y[j]:
                continue
            pairs += 1
            d = (s[i] - s[j]) * (y[i] - y[j])
            good += 1.0 if d > 0 else 0.5 if d == 0 else 0.0
    assert _core.gbdt_pairwise_accuracy(s, y, g) == pytest.approx(good / pairs)
    assert np.isnan(_core.gbdt_pairwise_accuracy(s, np.ones(60), g))


def test_works_without_scikit_learn() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import numpy as np, energycore as ec\n"
        "X = np.random.default_rng(0).normal(size=(200, 3)); y = X[:, 0]\n"
        "m = ec.GradientBoosting(n_estimators=5).fit(X, y)\n"
        "v = ec.ValidityScorer(n_estimators=5).fit(X, y > 0)\n"
        "assert m.get_params()['n_estimators'] == 5 and v.predict(X).dtype == bool\n"
        "try:\n    ec.GradientBoosting().predict(X)\nexcept ValueError as e:\n    print('ok', e)\n"
    )
    # the same energycore as this process (installed, or the source tree with its built module)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
