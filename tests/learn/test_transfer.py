"""TransferScorer (source models as features, weights from target rows) and Tuner(prior=...)."""

from __future__ import annotations

import numpy as np
import pytest

from energycore.learn.transfer import TransferScorer, source_weights
from energycore.learn.tuner import Tuner


def _space() -> dict[str, np.ndarray]:
    g = np.array([(a, b, c) for a in range(8) for b in range(6) for c in range(3)], dtype=float)
    return {"a": g[:, 0], "b": g[:, 1], "c": g[:, 2]}


def _time(X: dict[str, np.ndarray], opt_a: float, scale: float) -> np.ndarray:
    """A bowl with its minimum at a = opt_a, b = 2; a GPU is `scale` times slower."""
    return scale * (1.0 + 0.3 * (X["a"] - opt_a) ** 2 + 0.5 * (X["b"] - 2) ** 2 + 0.1 * X["c"])


@pytest.fixture(scope="module")
def sources() -> dict:
    X = _space()
    return {"near": (X, _time(X, 5.0, 1.0)), "far": (X, _time(X, 1.0, 3.0))}


def test_zero_shot_consensus_and_weights_follow_the_target(sources: dict) -> None:
    X = _space()
    target = _time(X, 5.0, 0.5)  # like "near", twice as fast: a change of scale
    ts = TransferScorer(random_state=0).fit_sources(sources)
    assert ts.weights_ == {"near": 0.5, "far": 0.5}
    rng = np.random.default_rng(0)
    idx = rng.choice(len(target), 20, replace=False)
    ts.fit_target({k: v[idx] for k, v in X.items()}, target[idx])
    assert ts.weights_["near"] > 0.8
    top = ts.top(X, 5)
    assert target[top].min() / target.min() <= 1.05
    assert ts.predict_objective(X).shape == target.shape


def test_source_weights_uniform_with_few_rows_and_sharpen() -> None:
    S = np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])
    assert np.allclose(source_weights(S, np.array([1.0, 2.0, 3.0])), 0.5)
    S = np.column_stack([np.arange(10.0), -np.arange(10.0)])
    w = source_weights(S, np.arange(10.0))
    assert w[0] > 0.99 and np.isclose(w.sum(), 1.0)
    assert np.allclose(source_weights(S, np.arange(10.0), sharpness=0.0), 0.5)


def test_failures_are_learnt_per_source() -> None:
    X = _space()
    y = _time(X, 5.0, 1.0)
    y[X["c"] == 2] = np.nan  # every c == 2 configuration fails on this source
    ts = TransferScorer().fit_sources({"s": (X, y), "t": (X, _time(X, 5.0, 2.0))})
    p = ts.predict_valid(X)
    assert p[X["c"] == 2].max() < 0.6 and p[X["c"] != 2].min() > 0.9


def test_save_load_round_trip(tmp_path, sources: dict) -> None:
    X = _space()
    target = _time(X, 3.0, 1.0)
    ts = TransferScorer(residual_min=8).fit(sources, X, target)
    ts.save(tmp_path / "t.json")
    back = TransferScorer.load(tmp_path / "t.json")
    assert np.allclose(back.predict(X), ts.predict(X))
    assert back.weights_ == ts.weights_ and back.residual_model_ is not None
    (tmp_path / "bad.json").write_text(
        '{"format": "energycore.transfer_scorer", "format_version": 1}'
    )
    with pytest.raises(ValueError, match="malformed"):
        TransferScorer.load(tmp_path / "bad.json")


def test_bad_inputs(sources: dict) -> None:
    X = _space()
    with pytest.raises(ValueError, match="non-empty mapping"):
        TransferScorer().fit_sources({})
    other = {"a": X["a"], "b": X["b"], "d": X["c"]}
    with pytest.raises(ValueError, match="do not match"):
        TransferScorer().fit_sources({"x": sources["near"], "y": (other, sources["far"][1])})
    ts = TransferScorer().fit_sources(sources)
    with pytest.raises(ValueError, match="do not match the sources"):
        ts.predict(other)
    with pytest.raises(ValueError, match="positive"):
        TransferScorer().fit_sources({"x": (X, -np.ones(len(X["a"])))})
    with pytest.raises(ValueError, match="direction"):
        TransferScorer(direction="up").fit_sources(sources)
    with pytest.raises(RuntimeError, match="not fitted"):
        TransferScorer().predict(X)
    with pytest.raises(RuntimeError, match="4 valid target rows"):
        ts.predict_objective(X)


def _frame(X: dict[str, np.ndarray], y: np.ndarray) -> dict[str, list]:
    return {**{k: v.astype(int).tolist() for k, v in X.items()}, "time": y.tolist()}


def test_tuner_warm_start_asks_the_sources_best_first(sources: dict) -> None:
    X = _space()
    target = _time(X, 5.0, 0.7)
    space = {k: v.astype(int).tolist() for k, v in X.items()}
    prior = {name: _frame(Xs, ys) for name, (Xs, ys) in sources.items()}
    warm = Tuner(space, budget=16, batch=8, seed=0, prior={"near": prior["near"]})
    first = warm.ask()
    vals = [target[warm.index_of(c)] for c in first]
    assert min(vals) / target.min() <= 1.1  # the first batch already holds a near-best point
    warm.tell(first, vals)
    second = warm.ask()
    assert len(second) == 8 and not set(map(str, second)) & set(map(str, first))
    cold = Tuner(space, budget=16, batch=8, seed=0)
    cvals = [target[cold.index_of(c)] for c in cold.ask()]
    assert min(vals) <= min(cvals)


def test_tuner_prior_bad_inputs() -> None:
    X = _space()
    space = {k: v.astype(int).tolist() for k, v in X.items()}
    y = _time(X, 5.0, 1.0)
    with pytest.raises(ValueError, match="missing parameter"):
        Tuner(space, prior={"s": {"a": space["a"], "b": space["b"], "time": y.tolist()}})
    with pytest.raises(ValueError, match="no 'time' column"):
        Tuner(space, prior={"s": space})
    with pytest.raises(ValueError, match="prior: expected"):
        Tuner(space, prior=[1, 2])
    with pytest.raises(ValueError, match="prior_rows"):
        Tuner(space, prior_rows=0)


def test_tuner_takes_a_fitted_transfer_scorer_as_prior(sources: dict) -> None:
    X = _space()
    target = _time(X, 5.0, 0.7)
    space = {k: v.astype(int).tolist() for k, v in X.items()}
    ts = TransferScorer(random_state=0).fit_sources(sources)
    given = Tuner(space, budget=24, batch=8, seed=0, prior=ts)
    built = Tuner(space, budget=24, batch=8, seed=0,
                  prior={n: _frame(Xs, ys) for n, (Xs, ys) in sources.items()})  # fmt: skip
    for _ in range(3):  # the same rounds as the prior built from the same source tables
        a, b = given.ask(), built.ask()
        assert a == b
        vals = [float(target[given.index_of(c)]) for c in a]
        given.tell(a, vals)
        built.tell(b, vals)
    assert given.prior_ is ts and given.prior_.n_target_ == 16  # re-weighted on the target rows
    assert given.prior_trust_ == built.prior_trust_


def test_tuner_rejects_a_scorer_of_other_parameters(sources: dict) -> None:
    X = _space()
    space = {k: v.astype(int).tolist() for k, v in X.items()}
    renamed = {
        n: ({"a": Xs["a"], "b": Xs["b"], "d": Xs["c"]}, ys) for n, (Xs, ys) in sources.items()
    }
    ts = TransferScorer().fit_sources(renamed)
    with pytest.raises(ValueError, match="are not the space's"):
        Tuner(space, prior=ts)
