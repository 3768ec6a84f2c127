"""Every entry of the C++ core (`energycore._core`) validates sizes and indices itself.

The Python layer checks its users' input before it reaches `_core`; these tests call `_core`
directly with what the Python layer would reject, and expect ValueError (not an out-of-bounds
read, a segfault or a loop that never ends)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from energycore import GradientBoosting, _core

TEMPLATE = "energy_v2"


def _design(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A feature table (n x 5), positive targets and the template's typical coefficients."""
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.choice([1, 2, 4, 8], n),
            rng.choice([1, 2], n),
            rng.choice([1, 4, 16, 64], n),
            rng.integers(16, 4096, n),
            rng.integers(16, 1024, n),
        ]
    ).astype(float)
    theta = np.array([p["typical"] for p in _core.template_info(TEMPLATE)["params"]])
    y = _core.template_value(TEMPLATE, X, theta) * np.exp(rng.normal(0, 0.05, n))
    return X, y, theta


# ------------------------------------------------------------------ templates and their fit
def test_bootstrap_weights_of_the_wrong_length() -> None:
    X, y, theta = _design()
    e = np.empty(0)
    with pytest.raises(ValueError, match="w"):
        _core.bootstrap_template(TEMPLATE, X, y, np.ones(3), theta, [], e, e, e, n=4)


def test_bootstrap_and_fit_without_rows() -> None:
    _, _, theta = _design()
    X, y, e = np.empty((0, 5)), np.empty(0), np.empty(0)
    with pytest.raises(ValueError, match="X"):
        _core.bootstrap_template(TEMPLATE, X, y, e, theta, [], e, e, e, n=4)
    with pytest.raises(ValueError, match="X"):
        _core.fit_template(TEMPLATE, X, y, e, [], e, e, e)


def test_fit_and_bootstrap_bad_lengths() -> None:
    X, y, theta = _design()
    e = np.empty(0)
    with pytest.raises(ValueError, match="y"):
        _core.fit_template(TEMPLATE, X, y[:-1], e, [], e, e, e)
    with pytest.raises(ValueError, match="w"):
        _core.fit_template(TEMPLATE, X, y, np.ones(2), [], e, e, e)
    with pytest.raises(ValueError, match="x0"):
        _core.fit_template(TEMPLATE, X, y, e, [], e, e, e, x0=theta[:-1])
    with pytest.raises(ValueError, match="fixed"):
        _core.fit_template(TEMPLATE, X, y, e, [True], theta, e, e)
    with pytest.raises(ValueError, match="bounds"):
        _core.fit_template(TEMPLATE, X, y, e, [], e, theta[:2], theta[:2])
    with pytest.raises(ValueError, match="theta"):
        _core.bootstrap_template(TEMPLATE, X, y, e, theta[:-1], [], e, e, e, n=2)
    with pytest.raises(ValueError, match="n"):
        _core.bootstrap_template(TEMPLATE, X, y, e, theta, [], e, e, e, n=0)


def test_fit_batch_bad_lengths() -> None:
    X, y, _ = _design()
    e = np.empty(0)
    with pytest.raises(ValueError, match="ws"):
        _core.fit_template_batch(TEMPLATE, [X], [y], [np.ones(4)], [[]], [e])
    with pytest.raises(ValueError, match="ys"):
        _core.fit_template_batch(TEMPLATE, [X], [y[:3]], [e], [[]], [e])
    with pytest.raises(ValueError, match="Xs"):
        _core.fit_template_batch(TEMPLATE, [X[:, :3]], [y], [e], [[]], [e])
    with pytest.raises(ValueError, match="groups"):
        _core.fit_template_batch(TEMPLATE, [X, X], [y], [e], [[]], [e])
    with pytest.raises(ValueError, match="X"):
        _core.fit_template_batch(TEMPLATE, [np.empty((0, 5))], [np.empty(0)], [e], [[]], [e])


def test_template_entries_bad_theta() -> None:
    X, _, theta = _design()
    for fn in (_core.template_value, _core.template_jacobian, _core.template_phases):
        with pytest.raises(ValueError, match="theta"):
            fn(TEMPLATE, X, theta[:-1])
    with pytest.raises(ValueError, match="template"):
        _core.template_value("no_such_template", X, theta)


def test_nnls_and_least_squares_bad_shapes() -> None:
    with pytest.raises(ValueError, match="b"):
        _core.nnls(np.ones((3, 2)), np.ones(4))

    def fun(x: np.ndarray) -> np.ndarray:
        return x - 1.0

    def jac(x: np.ndarray) -> np.ndarray:
        return np.eye(2)

    x0, lo, hi = np.zeros(2), np.full(2, -5.0), np.full(2, 5.0)
    with pytest.raises(ValueError, match="m"):
        _core.least_squares(fun, jac, x0, lo, hi, [], np.empty(0), -1)
    with pytest.raises(ValueError, match="bounds"):
        _core.least_squares(fun, jac, x0, lo[:1], hi, [], np.empty(0), 2)
    with pytest.raises(ValueError, match="weights"):
        _core.least_squares(fun, jac, x0, lo, hi, [], np.ones(5), 2)
    with pytest.raises(ValueError, match="fixed"):
        _core.least_squares(fun, jac, x0, lo, hi, [True], np.empty(0), 2)
    with pytest.raises(ValueError, match="fun"):
        _core.least_squares(fun, jac, x0, lo, hi, [], np.empty(0), 3)
    r = _core.least_squares(fun, jac, x0, lo, hi, [], np.empty(0), 2)  # the valid call works
    np.testing.assert_allclose(r["x"], [1.0, 1.0], atol=1e-8)


# ------------------------------------------------------------------ the space engine
def _engine(axes, feature_slot, key_axis=-1, energy=None, params=(), constraints=()):
    return _core.SpaceEngine(
        axes, list(params), [], list(constraints), feature_slot, key_axis, energy, None, None, 1
    )


def test_space_feature_slot_out_of_range_without_models() -> None:
    # space_scoring.cpp's derive() read slots[feature_slot] for any slot when no model was given.
    with pytest.raises(ValueError, match="feature_slot"):
        _engine([[1.0, 2.0]], [0, -1, 10_000_000, -1, 10_000_000])
    with pytest.raises(ValueError, match="feature_slot"):
        _engine([[1.0, 2.0]], [0, -1, -2, -1, -1])


def test_space_key_axis_value_outside_the_model_list() -> None:
    # The key axis selects one coefficient vector per code; a code past the list read past it.
    _, _, theta = _design()
    axes = [[1.0, 2.0], [1.0], [8.0], [128.0], [64.0], [0.0, 7.0]]
    with pytest.raises(ValueError, match="key axis"):
        _engine(axes, [0, 1, 2, 3, 4], key_axis=5, energy=(TEMPLATE, [theta, theta]))
    with pytest.raises(ValueError, match="key axis"):
        axes[5] = [0.0, 0.5]
        _engine(axes, [0, 1, 2, 3, 4], key_axis=5, energy=(TEMPLATE, [theta, theta]))
    axes[5] = [1.0, 0.0]  # codes in range, in any order: accepted
    e = _engine(axes, [0, 1, 2, 3, 4], key_axis=5, energy=(TEMPLATE, [theta, theta]))
    assert np.isfinite(e.rows(np.arange(e.size))[:, e.objective_slot(0)]).all()


def test_space_bad_queries() -> None:
    e = _engine([[1.0, 2.0, 3.0]], [0, -1, -1, -1, -1])
    with pytest.raises(ValueError, match="index"):
        e.rows(np.array([3]))
    with pytest.raises(ValueError, match="index"):
        e.rows(np.array([-1]))
    with pytest.raises(ValueError, match="params"):
        e.rows(np.array([0]), [1.0])
    with pytest.raises(ValueError, match="slot"):
        e.top_k(e.n_slots, False, 1, [])
    with pytest.raises(ValueError, match="slot"):
        e.argmin(-1, False, [], [])
    with pytest.raises(ValueError, match="limit"):
        e.argmin(0, False, [(e.n_slots, 0, 1.0)], [])
    with pytest.raises(ValueError, match="limit"):
        e.argmin(0, False, [(0, 9, 1.0)], [])
    with pytest.raises(ValueError, match="maximize"):
        e.pareto([0, 0], [False], [])
    with pytest.raises(ValueError, match="slot"):
        e.pareto([e.n_slots], [False], [])
    with pytest.raises(ValueError, match="program"):
        e.count_valid([(1, e.n_slots, 0.0)])  # Load of a slot past the end
    with pytest.raises(ValueError, match="program"):
        e.count_valid([(2, 0, 0.0)])  # Add on an empty stack
    with pytest.raises(ValueError, match="objective"):
        e.objective_slot(11)
    with pytest.raises(ValueError, match="axis"):
        _engine([[]], [-1] * 5)


def test_selector_bad_slots() -> None:
    e = _engine([[1.0, 2.0]], [0, -1, -1, 1, 2], params=[128.0, 64.0])
    with pytest.raises(ValueError, match="slot"):
        _core.SpaceSelector(e, e.n_slots, False, True, 1, 2, [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="params"):
        _core.SpaceSelector(e, 0, False, True, 0, 2, [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="edges"):
        _core.SpaceSelector(e, 0, False, True, 1, 2, [1.0], [0.0, 1.0])
    s = _core.SpaceSelector(e, 0, False, True, 1, 2, [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="limit"):
        s.best(0.5, 0.5, [(e.n_slots, 0, 1.0)])


# ------------------------------------------------------------------ gradient boosting
def test_pairwise_accuracy_nan_score_or_label() -> None:
    # A NaN score used to make the tie-block scan loop forever.
    with pytest.raises(ValueError, match="score"):
        _core.gbdt_pairwise_accuracy(np.array([np.nan, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="y"):
        _core.gbdt_pairwise_accuracy(np.array([0.0, 1.0, 2.0]), np.array([0.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="equal length"):
        _core.gbdt_pairwise_accuracy(np.zeros(3), np.zeros(2))
    acc = _core.gbdt_pairwise_accuracy(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
    assert acc == 1.0


def _fitted_file() -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    return json.loads(json.dumps(GradientBoosting(n_estimators=3, max_depth=2).fit(X, y).to_dict()))


def test_model_file_with_a_huge_feature_count_is_refused() -> None:
    # feature_importances_ allocates one double per feature: 2^31 features would be 16 GiB.
    d = _fitted_file()
    d["model"]["n_features"] = 2**31 - 2
    d["n_features_in"] = 2**31 - 2
    with pytest.raises(ValueError, match="n_features"):
        GradientBoosting.from_dict(d)
    state = dict(d["model"])
    for key in ("roots", "feature", "left", "default_left", "value", "gain", "cover"):
        state[key] = np.asarray(state[key])
    state["default_left"] = state["default_left"].astype(np.uint8)
    with pytest.raises(ValueError, match="n_features"):
        _core.GbdtModel.from_state(state)


def test_model_file_bad_nodes_are_refused() -> None:
    d = _fitted_file()
    good = GradientBoosting.from_dict(d)
    assert good.feature_importances_.shape == (3,)
    bad = json.loads(json.dumps(d))
    split = next(i for i, f in enumerate(bad["model"]["feature"]) if f >= 0)
    bad["model"]["feature"][split] = 3  # past n_features
    with pytest.raises(ValueError, match="feature"):
        GradientBoosting.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["model"]["left"][split] = 10**6  # child past the tree
    with pytest.raises(ValueError, match="children"):
        GradientBoosting.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["model"]["roots"] = [0, 10**9]
    with pytest.raises(ValueError, match="node range"):
        GradientBoosting.from_dict(bad)
    bad = json.loads(json.dumps(d))
    bad["model"]["value"] = bad["model"]["value"][:-1]
    with pytest.raises(ValueError, match="length"):
        GradientBoosting.from_dict(bad)


def test_gbdt_predict_bad_shapes() -> None:
    model = (
        GradientBoosting(n_estimators=2)
        .fit(np.random.default_rng(0).normal(size=(50, 3)), np.arange(50.0))
        .model_
    )
    with pytest.raises(ValueError, match="X"):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="row"):
        model.predict_row([1.0, 2.0])
    with pytest.raises(ValueError, match="importance"):
        model.importance("nope")


def test_gbdt_train_bad_shapes() -> None:
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="y"):
        _core.gbdt_train(X, y[:5])
    with pytest.raises(ValueError, match="sample_weight"):
        _core.gbdt_train(X, y, np.ones(3))
    with pytest.raises(ValueError, match="group"):
        _core.gbdt_train(X, y, None, np.zeros(3, dtype=np.int64), {"objective": "pairwise"})
    with pytest.raises(ValueError, match="monotone"):
        _core.gbdt_train(X, y, params={"monotone": [1, 1, 1]})
    with pytest.raises(ValueError, match="eval_set"):
        _core.gbdt_train(X, y, X_val=np.zeros((4, 3)), y_val=np.zeros(4))


def test_space_explicit_rows_and_bounds_are_checked() -> None:
    import numpy as np

    ax = [[1.0, 2.0], [8.0, 16.0, 32.0]]

    def eng(rows=None, ttft=None, tpot=None, bound=None, tpot_bound=None):
        return _core.SpaceEngine(
            ax, [1.0, 0.0, 1.0], [], [], [0, 2, 1, 3, 4], -1, None, ttft, tpot, 1,
            bound, tpot_bound, rows,
        )  # fmt: skip

    e = eng(np.array([[1, 2], [0, 0]]))
    assert e.size == 2 and e.count_valid([]) == 2
    np.testing.assert_array_equal(e.rows(np.array([0, 1]))[:, :2], [[2.0, 32.0], [1.0, 8.0]])
    with pytest.raises(ValueError, match="rows: point 1 has digit 3 outside axis 1"):
        eng(np.array([[0, 0], [0, 3]]))
    with pytest.raises(ValueError, match="rows: point 0 has digit -1"):
        eng(np.array([[-1, 0]]))
    with pytest.raises(ValueError, match=r"rows: expected an \(n_points, 2\)"):
        eng(np.array([0, 1]))
    with pytest.raises(ValueError, match="rows: no points"):
        eng(np.zeros((0, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="index"):
        eng(np.array([[1, 2]])).rows(np.array([1]))
    t = ("ttft_v1", [np.full(6, 0.01)])
    p = ("tpot_v1", [np.full(6, 0.01)])
    ok = ([np.eye(6) * 1e-6], [0.01], 1.0)
    e = eng(None, t, p, ok, ok)
    assert e.objective_slot(10) == e.n_slots - 1
    with pytest.raises(ValueError, match="covariance must be 6 x 6"):
        eng(None, t, p, ([np.eye(5)], [0.01], 1.0))
    with pytest.raises(ValueError, match="covariance must be finite"):
        eng(None, t, p, ([np.full((6, 6), np.nan)], [0.01], 1.0))
    with pytest.raises(ValueError, match="residual variance"):
        eng(None, t, p, ([np.eye(6)], [-1.0], 1.0))
    with pytest.raises(ValueError, match="one covariance and residual variance"):
        eng(None, t, p, ([np.eye(6)], [0.1, 0.2], 1.0))
    with pytest.raises(ValueError, match="z must be finite"):
        eng(None, t, p, ([np.eye(6)], [0.1], float("inf")))
    with pytest.raises(ValueError, match="ttft_bound: a bound needs the model"):
        eng(None, None, None, ok)
