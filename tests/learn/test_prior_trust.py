"""The adaptive weight of a transferred prior (learn/prior_trust.py, Tuner(prior_adapt=...))."""

from __future__ import annotations

import numpy as np
import pytest

from energycore.learn.prior_trust import oof_goodness, prior_trust, top_weighted_loss
from energycore.learn.tuner import Tuner


def _space() -> dict[str, np.ndarray]:
    g = np.array([(a, b, c) for a in range(8) for b in range(6) for c in range(3)], dtype=float)
    return {"a": g[:, 0], "b": g[:, 1], "c": g[:, 2]}


def _time(X: dict[str, np.ndarray], opt_a: float, scale: float) -> np.ndarray:
    """A bowl with its minimum at a = opt_a, b = 2; a GPU is `scale` times slower."""
    return scale * (1.0 + 0.3 * (X["a"] - opt_a) ** 2 + 0.5 * (X["b"] - 2) ** 2 + 0.1 * X["c"])


def _frame(X: dict[str, np.ndarray], y: np.ndarray) -> dict[str, list]:
    return {**{k: v.astype(int).tolist() for k, v in X.items()}, "time": y.tolist()}


def _prior(opt_a: float) -> dict[str, dict[str, list]]:
    """Two source GPUs that agree on an optimum at a = opt_a."""
    X = _space()
    return {"s1": _frame(X, _time(X, opt_a, 1.0)), "s2": _frame(X, _time(X, opt_a, 2.0))}


def _run(prior: dict, target: np.ndarray, seed: int, **kw) -> tuple[Tuner, list, int | None]:
    """Run to the budget; (tuner, (trust, weight, the cap) per round, evaluations to the
    optimum). The cap is ``prior_rows / (n + prior_rows)``, n the valid rows at the ask."""
    space = {k: v.astype(int).tolist() for k, v in _space().items()}
    t = Tuner(space, budget=96, batch=8, seed=seed, prior=prior, **kw)
    history, hit = [], None
    while not t.done:
        n_ok = len(t.records_)  # every measurement here is valid
        c = t.ask()
        t.tell(c, [float(target[t.index_of(x)]) for x in c])
        history.append((t.prior_trust_, t.prior_weight_, t.prior_rows / (n_ok + t.prior_rows)))
        if hit is None and t.best_value_ == target.min():
            hit = t.n_measured
    return t, history, hit


def test_top_weighted_loss_counts_the_top_pairs_most() -> None:
    g = np.arange(10.0)[::-1]  # row 0 is the best
    assert top_weighted_loss(g, g) == 0.0
    assert top_weighted_loss(-g, g) == 1.0
    assert top_weighted_loss(np.zeros(10), g) == 0.5
    best_last = g.copy()
    best_last[0] = -1.0  # only the best row is misplaced (below all others)
    worst_first = g.copy()
    worst_first[9] = 100.0  # only the worst row is misplaced (above all others)
    assert top_weighted_loss(best_last, g) > 2 * top_weighted_loss(worst_first, g)


def test_trust_low_for_a_misleading_prior_high_for_a_helpful_one() -> None:
    X = _space()
    A = np.column_stack(list(X.values()))
    target = _time(X, 6.0, 0.7)
    idx = np.random.default_rng(0).choice(target.size, 24, replace=False)
    g = -np.log(target[idx])
    own = oof_goodness(A[idx], g, seed=0)
    misleading = -np.log(_time(X, 1.0, 1.0)[idx])
    helpful = -np.log(_time(X, 6.0, 3.0)[idx])
    assert prior_trust(misleading, own, g, seed=0) < 0.2
    assert prior_trust(helpful, own, g, seed=0) > 0.8
    # no evidence with fewer than 8 rows
    assert prior_trust(misleading[:7], own[:7], g[:7]) == 1.0


def test_tuner_prior_weight_shrinks_when_misled_and_stays_when_helped() -> None:
    X = _space()
    target = _time(X, 6.0, 0.7)  # the sources put the optimum at a = 1
    _, hist, _ = _run(_prior(1.0), target, seed=0)
    trust = [h[0] for h in hist]
    assert trust[0] == 1.0  # nothing measured yet
    assert max(trust[2:]) < 0.3
    assert all(w < 0.3 * cap for _, w, cap in hist[2:])
    _, hist, _ = _run(_prior(6.0), target, seed=0)  # the sources are right, at another scale
    assert min(h[0] for h in hist) > 0.8
    assert all(w > 0.8 * cap for _, w, cap in hist[1:])


def test_adaptive_prior_finds_the_optimum_sooner_than_the_fixed_one_when_misled() -> None:
    target = _time(_space(), 6.0, 0.7)
    adaptive = [_run(_prior(1.0), target, seed=s)[2] for s in range(3)]
    fixed = [
        _run(_prior(1.0), target, seed=s, prior_adapt=False, prior_explore=0.0)[2] for s in range(3)
    ]
    assert None not in adaptive
    assert sum(adaptive) < sum(f if f is not None else 97 for f in fixed)


def test_fixed_prior_keeps_the_cap() -> None:
    target = _time(_space(), 6.0, 0.7)
    _, hist, _ = _run(_prior(1.0), target, seed=1, prior_adapt=False)
    assert all(h[0] == 1.0 for h in hist)
    assert [h[1] for h in hist[1:]] == pytest.approx([h[2] for h in hist[1:]])


def test_a_share_of_the_first_batch_is_away_from_the_prior_region() -> None:
    X = _space()
    space = {k: v.astype(int).tolist() for k, v in X.items()}
    prior_time = _time(X, 1.0, 1.0)
    region = set(np.argsort(prior_time)[: int(np.ceil(0.1 * prior_time.size))].tolist())
    t = Tuner(space, batch=8, seed=0, prior=_prior(1.0), prior_explore=0.25)
    away = [i for i in map(t.index_of, t.ask()) if i not in region]
    assert len(away) >= 2
    t = Tuner(space, batch=8, seed=0, prior=_prior(1.0), prior_explore=0.0)
    assert all(i in region for i in map(t.index_of, t.ask()))


def test_deterministic_for_a_seed() -> None:
    target = _time(_space(), 6.0, 0.7)
    a, ha, _ = _run(_prior(1.0), target, seed=3)
    b, hb, _ = _run(_prior(1.0), target, seed=3)
    assert ha == hb
    assert [r["config"] for r in a.records_] == [r["config"] for r in b.records_]
    rng = np.random.default_rng(5)
    p, o, g = rng.normal(size=(3, 30))
    assert prior_trust(p, o, g, seed=1) == prior_trust(p, o, g, seed=1)
    A = rng.normal(size=(30, 3))
    assert np.array_equal(oof_goodness(A, g, seed=2), oof_goodness(A, g, seed=2))


def test_bad_inputs() -> None:
    space = {k: v.astype(int).tolist() for k, v in _space().items()}
    with pytest.raises(ValueError, match="prior_adapt"):
        Tuner(space, prior_adapt="yes")
    with pytest.raises(ValueError, match="prior_explore"):
        Tuner(space, prior_explore=1.5)
    with pytest.raises(ValueError, match="prior_explore"):
        Tuner(space, prior_explore=True)
    g = np.arange(10.0)
    with pytest.raises(ValueError, match="prior_score"):
        prior_trust(g[:9], g, g)
    with pytest.raises(ValueError, match="own_score"):
        prior_trust(g, np.full(10, np.nan), g)
    with pytest.raises(ValueError, match="n_boot"):
        prior_trust(g, g, g, n_boot=0)
    with pytest.raises(ValueError, match="score"):
        top_weighted_loss(g[:3], g)
    with pytest.raises(ValueError, match="folds"):
        oof_goodness(np.zeros((10, 2)), g, folds=1)
    with pytest.raises(ValueError, match="at least folds"):
        oof_goodness(np.zeros((3, 2)), g[:3])
    with pytest.raises(ValueError, match="rows of parameters"):
        oof_goodness(np.zeros((9, 2)), g)
