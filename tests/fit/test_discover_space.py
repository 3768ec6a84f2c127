"""Discovered models in a ConfigSpace and a Selector: the C++ term-sum template (issue 14)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from energycore import ConfigSpace, _core, discover
from energycore.fit.discover import ENGINE_VARIABLES, DiscoveredModel
from energycore.space import Selector
from energycore.space.uncertainty import power_upper_bound, upper_bound
from tests.helpers import planted_data

FORM = ["batch*input_len", "batch*output_len*tp^-1", "n_gpus*output_len", "1"]
AXES = {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": [1, 4, 16, 64]}


@pytest.fixture(scope="module")
def found():
    X, y, _ = planted_data(FORM, n=200, noise=0.02, seed=3)
    return X, y, discover(X, y, max_terms=8, seed=0).best


@pytest.fixture(scope="module")
def with_free(found):
    """The discovered structure refitted with a free batch exponent (covariance included)."""
    X, y, m = found
    return m.refit(X, y, free_exponents=["batch"])


def _numpy_rows(frame):
    return {k: np.asarray(frame[k], dtype=np.float64) for k in
            ("tp", "pp", "batch", "input_len", "output_len", "n_gpus")}  # fmt: skip


def _features(X):
    return np.column_stack([X[k] for k in ("tp", "pp", "batch", "input_len", "output_len")])


# -------------------------------------------------------------------------- the template
def test_term_sum_value_and_gradient_match_numpy(with_free):
    m = with_free
    assert m.free, "the refit should have a free exponent"
    rng = np.random.default_rng(1)
    X = {
        "tp": rng.choice([1.0, 2.0, 4.0], 30),
        "pp": rng.choice([1.0, 2.0], 30),
        "batch": rng.choice([1.0, 3.0, 64.0], 30),
        "input_len": rng.uniform(10, 4000, 30),
        "output_len": rng.uniform(0, 900, 30),
    }
    terms, theta = m.engine_template()
    v, G = _core.term_sum_value(terms, _features(X), theta, True)
    np.testing.assert_allclose(v, m.predict(X), rtol=1e-12)
    # gradient: coefficients and free exponents by central differences
    for p in range(len(theta)):
        h = 1e-6 * max(abs(theta[p]), 1e-3)
        up, dn = theta.copy(), theta.copy()
        up[p] += h
        dn[p] -= h
        fd = (_core.term_sum_value(terms, _features(X), up) -
              _core.term_sum_value(terms, _features(X), dn)) / (2 * h)  # fmt: skip
        np.testing.assert_allclose(G[:, p], fd, rtol=1e-5, atol=1e-9 * np.abs(v).max())
    # the delta-method log gradient of numpy's interval is the same
    _, Glog = m._log_jacobian(X)
    np.testing.assert_allclose(G / v[:, None], Glog, rtol=1e-10)


def test_term_sum_powers_follow_numpy_at_zero():
    # output_len = 0 with exponents 1, 0.5 and -1: 0, 0 and +inf, like DiscoveredModel.predict
    X = {"tp": np.array([1.0, 2.0]), "pp": np.array([1.0, 1.0]), "batch": np.array([2.0, 2.0]),
         "input_len": np.array([5.0, 5.0]), "output_len": np.array([0.0, 3.0])}  # fmt: skip
    for e, first in ((1.0, 0.0), (0.5, 0.0), (-1.0, math.inf)):
        m = DiscoveredModel([{"output_len": e, "batch": 1}, {"tp-1": 1}], [2.0, 3.0])
        terms, theta = m.engine_template()
        got = _core.term_sum_value(terms, _features(X), theta)
        np.testing.assert_array_equal(got, m.predict(X))
        assert got[0] == first + 0.0
    m = DiscoveredModel(["n_gpus", "pp-1"], [1.0, 1.0])
    terms, theta = m.engine_template()
    X2 = {**X, "pp": np.array([3.0, 4.0])}
    np.testing.assert_array_equal(_core.term_sum_value(terms, _features(X2), theta),
                                  [1 * 3 + 2, 2 * 4 + 3])  # fmt: skip


@pytest.mark.parametrize(
    ("terms", "theta", "match"),
    [
        (([((8, 1.0, -1),)], 0), [1.0], "variable index 8"),
        (([((-1, 1.0, -1),)], 0), [1.0], "variable index -1"),
        (([((2, math.inf, -1),)], 0), [1.0], "exponent must be finite"),
        (([((2, math.nan, -1),)], 0), [1.0], "exponent must be finite"),
        (([((2, 1.0, 1),)], 1), [1.0, 0.5], "free exponent index 1"),
        (([((2, 1.0, -2),)], 0), [1.0], "free exponent index -2"),
        (([((2, 1.0, -1),)], -1), [1.0], "number of free exponents"),
        (([], 0), [], "at least one term"),
        (([((2, 1.0, -1),)], 0), [1.0, 2.0], "needs 1 values"),
        (([((2, 1.0, 0),)], 1), [1.0], "needs 2 values"),
        (([((2, 1.0, -1),)], 0), [-1.0], "coefficient 0 is negative"),
        (([((2, 1.0, 0),)], 1), [1.0, math.nan], "value 1 is not finite"),
    ],
)
def test_term_sum_validates_its_input(terms, theta, match):
    X = np.ones((2, 5))
    with pytest.raises(ValueError, match=match):
        _core.term_sum_value(terms, X, np.asarray(theta, dtype=np.float64))


def test_engine_validates_term_sum_models():
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256})
    slots = space._slots()
    args = ([a.codes() for a in space.axes], [512.0, 256.0], [], [],
            [slots.slot[f] for f in ("tp", "pp", "batch", "input_len", "output_len")], -1)  # fmt: skip
    with pytest.raises(ValueError, match="variable index 9"):
        _core.SpaceEngine(*args, (([((9, 1.0, -1),)], 0), [np.ones(1)]), None, None)
    with pytest.raises(ValueError, match="coefficient 0 is negative"):
        _core.SpaceEngine(*args, (([((2, 1.0, -1),)], 0), [-np.ones(1)]), None, None)
    with pytest.raises(ValueError, match="needs 1 values"):
        _core.SpaceEngine(*args, (([((2, 1.0, -1),)], 0), [np.ones(2)]), None, None)


# ------------------------------------------------------------------------ ConfigSpace use
def test_configspace_scores_a_discovered_model_like_numpy(found, with_free):
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256})
    for m in (found[2], with_free):
        frame = space.to_frame(models=m, as_frame=False)
        pred = m.predict(_numpy_rows(frame))
        np.testing.assert_allclose(frame["energy_j"], pred, rtol=1e-12)
        np.testing.assert_allclose(frame["energy_per_request_j"], pred / frame["batch"],
                                   rtol=1e-12)  # fmt: skip
        for objective, scale in (("energy_j", 1.0), ("energy_per_request_j", frame["batch"])):
            best = space.argmin(objective, models=m)
            brute = pred / scale
            assert best.index == frame["index"][int(np.argmin(brute))]
            assert best.value == pytest.approx(float(np.min(brute)), rel=1e-12)
        # through a workload given per query, a where= and a list of models
        got = space.argmin("energy_per_request_j", models=[m], input_len=2048, output_len=64,
                           where="tp * pp <= 4")  # fmt: skip
        f2 = space.to_frame(models=m, as_frame=False, input_len=2048, output_len=64)
        ok = f2["n_gpus"] <= 4
        brute = m.predict(_numpy_rows(f2)) / f2["batch"]
        brute = np.where(ok, brute, np.inf)
        assert got.index == f2["index"][int(np.argmin(brute))]
        assert got.value == pytest.approx(float(brute.min()), rel=1e-12)


def test_model_table_and_walk_agree(found):
    # a space large enough for the engine's model table (each entry serving many points)
    space = ConfigSpace({**AXES, "replica": list(range(40))}, fixed={"input_len": 512,
                        "output_len": 256})  # fmt: skip
    q = space._query(found[2], {})
    assert q.engine.uses_table
    frame = space.to_frame(models=found[2], as_frame=False, limit=None)
    np.testing.assert_allclose(frame["energy_j"], found[2].predict(_numpy_rows(frame)),
                               rtol=1e-12)  # fmt: skip
    top = space.top_k("energy_j", 5, models=found[2], as_frame=False)
    order = np.lexsort((frame["index"], frame["energy_j"]))[:5]
    np.testing.assert_array_equal(top["index"], frame["index"][order])


def test_keyed_discovered_models_same_and_different_structures(found):
    X, y, m = found
    a100 = m.refit(X, y * 1.7)  # same structure, other coefficients
    other = DiscoveredModel(["batch*output_len", "input_len*n_gpus", "tp-1"], [0.02, 0.004, 3.0])
    space = ConfigSpace({"gpu": ["H100", "A100", "L40"], **AXES},
                        fixed={"input_len": 512, "output_len": 256})  # fmt: skip
    models = {"H100": m, "A100": a100, "L40": other}
    frame = space.to_frame(models=models, as_frame=False, limit=None)
    rows = _numpy_rows(frame)
    pred = np.empty(len(frame["index"]))
    for name, mm in models.items():
        sel = np.asarray(frame["gpu"]) == name
        pred[sel] = mm.predict({k: v[sel] for k, v in rows.items()})
    np.testing.assert_allclose(frame["energy_j"], pred, rtol=1e-12)
    best = space.argmin("energy_per_request_j", models=models)
    assert best.index == frame["index"][int(np.argmin(pred / frame["batch"]))]
    # mixing a discovered model with a fixed template for one kind is refused
    from energycore import EnergyModel

    em = EnergyModel().fit(X, y)
    with pytest.raises(ValueError, match="different templates"):
        space.argmin("energy_j", models={"H100": m, "A100": em, "L40": other})


def test_variables_outside_the_space_are_refused(found):
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256})
    user = DiscoveredModel(["batch*output_len", "gpu_tdp"], [0.1, 2.0])
    with pytest.raises(ValueError, match=r"'gpu_tdp'.*neither a model input"):
        space.argmin("energy_j", models=user)
    # batch is a model input but neither an axis nor given
    s2 = ConfigSpace({"tp": [1, 2]}, fixed={"input_len": 512, "output_len": 256})
    with pytest.raises(ValueError, match="batch"):
        s2.argmin("energy_j", models=found[2])
    # a target without a role in a space
    odd = DiscoveredModel(["batch"], [1.0], target="power_w")
    with pytest.raises(ValueError, match="energy_j, ttft_s or tpot_s"):
        space.argmin("energy_j", models=odd)
    assert set(ENGINE_VARIABLES) >= set(found[2].variables)


def test_save_load_round_trip_in_a_space(found, with_free, tmp_path):
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256},
                        constraints=["tp * pp <= 8"])  # fmt: skip
    for m in (found[2], with_free):
        m.save(tmp_path / "m.json")
        back = DiscoveredModel.load(tmp_path / "m.json")
        space.save(tmp_path / "space.json")
        s2 = ConfigSpace.load(tmp_path / "space.json")
        a = space.to_frame(models=m, as_frame=False)
        b = s2.to_frame(models=back, as_frame=False)
        np.testing.assert_array_equal(a["energy_j"], b["energy_j"])
        assert space.argmin("energy_j", models=m).index == s2.argmin("energy_j", models=back).index


# ---------------------------------------------------------------------------- latency role
@pytest.fixture(scope="module")
def latency_pair():
    X, _, _ = planted_data(["1"], n=120, noise=0.0, seed=5)
    rng = np.random.default_rng(7)
    ttft = (0.02 + 4e-6 * X["batch"] * X["input_len"] / X["tp"]) * np.exp(rng.normal(0, 0.03, 120))
    tpot = (0.01 + 2e-4 * X["batch"] ** 0.7 / X["tp"]) * np.exp(rng.normal(0, 0.03, 120))
    m1 = DiscoveredModel(["1", "batch*input_len*tp^-1"], [1.0, 1.0], target="ttft_s",
                         target_unit="s").refit(X, ttft)  # fmt: skip
    m2 = DiscoveredModel(["1", "batch*tp^-1"], [1.0, 1.0], target="tpot_s",
                         target_unit="s").refit(X, tpot, free_exponents=["batch"])  # fmt: skip
    return m1, m2


def test_discovered_latency_models_and_their_bounds(found, latency_pair):
    m1, m2 = latency_pair
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256})
    models = [found[2], m1, m2]
    frame = space.to_frame(models=models, as_frame=False, confidence=0.9)
    rows = _numpy_rows(frame)
    np.testing.assert_allclose(frame["ttft_s"], m1.predict(rows), rtol=1e-12)
    np.testing.assert_allclose(frame["tpot_s"], m2.predict(rows), rtol=1e-12)
    lat = m1.predict(rows) + rows["output_len"] * m2.predict(rows)
    np.testing.assert_allclose(frame["latency_s"], lat, rtol=1e-12)
    np.testing.assert_allclose(frame["power_w"], found[2].predict(rows) / lat, rtol=1e-12)
    # the engine's bounds are the numpy delta-method bounds of the same models
    np.testing.assert_allclose(frame["ttft_upper_s"], upper_bound(m1, rows, 0.9), rtol=1e-10)
    np.testing.assert_allclose(frame["tpot_upper_s"], upper_bound(m2, rows, 0.9), rtol=1e-10)
    assert (frame["tpot_upper_s"] > frame["tpot_s"]).all()
    # a latency-limited argmin against brute force, on the bound
    limit = float(np.median(frame["latency_upper_s"]))
    best = space.argmin("energy_per_request_j", {"latency_s": ("<=", limit)}, models=models,
                        confidence=0.9)  # fmt: skip
    ok = frame["latency_upper_s"] <= limit
    brute = np.where(ok, found[2].predict(rows) / rows["batch"], np.inf)
    assert best.index == frame["index"][int(np.argmin(brute))]
    # no uncertainty recorded: a clear error under a confidence
    bare = DiscoveredModel(["1", "batch"], [0.01, 0.001], target="tpot_s")
    with pytest.raises(ValueError, match="records no uncertainty"):
        space.argmin("tpot_s", models=[m1, bare], confidence=0.9)


# -------------------------------------------------------------------------------- Selector
def test_selector_with_a_discovered_energy_model(found, latency_pair):
    m1, m2 = latency_pair
    space = ConfigSpace(AXES)
    sel = Selector(space, models=[found[2], m1, m2])
    for lin, lout in ((128, 64), (700, 300), (4000, 1000), (20, 2000)):
        frame = space.to_frame(models=[found[2], m1, m2], as_frame=False, input_len=lin,
                               output_len=lout)  # fmt: skip
        rows = _numpy_rows(frame)
        e = found[2].predict(rows) / rows["batch"]
        lat = m1.predict(rows) + lout * m2.predict(rows)
        for limit in (np.inf, float(np.quantile(lat, 0.3))):
            got = sel.best(lin, lout, latency_limit_s=None if limit == np.inf else limit)
            brute = np.where(lat <= limit, e, np.inf)
            assert got.index == frame["index"][int(np.argmin(brute))]
            assert got.value == pytest.approx(float(brute.min()), rel=1e-12)


def test_selector_does_not_prune_with_a_non_monotone_model():
    # energy per request = n_gpus + 5000 / (output_len * tp): falls with output_len, and more
    # GPUs win at short outputs but lose at long ones, so the value at a workload cell's lower
    # corner is no lower bound inside the cell (the Selector must not prune with it)
    m = DiscoveredModel(["batch*n_gpus", {"batch": 1, "output_len": -1, "tp": -1}],
                        [1.0, 5000.0])  # fmt: skip
    assert not m.monotone_in_lengths()
    space = ConfigSpace({"tp": [1, 2, 4, 8], "batch": [1, 4]})
    sel = Selector(space, energy_model=m, output_len_edges=[1, 64, 8192],
                   input_len_edges=[1, 8192])  # fmt: skip
    assert not sel._q.models.monotone("energy_per_request_j")
    for lin, lout in ((100, 2), (100, 60), (3000, 70), (3000, 4000), (10, 8000)):
        frame = space.to_frame(models=m, as_frame=False, input_len=lin, output_len=lout)
        e = m.predict(_numpy_rows(frame)) / frame["batch"]
        got = sel.best(lin, lout)
        assert got.index == frame["index"][int(np.argmin(e))]
        assert got.value == pytest.approx(float(e.min()), rel=1e-12)


# ------------------------------------------------------------------- fixed values as variables
def test_fixed_values_are_folded_into_the_coefficients():
    m = DiscoveredModel(
        ["batch*output_len", "gpu_tdp*n_gpus", {"gpu_tdp": -1, "batch": 1, "input_len": 1}],
        [0.1, 0.02, 50.0],
    )
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256, "gpu_tdp": 700.0})
    for tdp in (700.0, 400.0):
        frame = space.to_frame(models=m, as_frame=False, gpu_tdp=tdp)
        rows = {**_numpy_rows(frame), "gpu_tdp": np.full(len(frame["index"]), tdp)}
        np.testing.assert_allclose(frame["energy_j"], m.predict(rows), rtol=1e-12)
        best = space.argmin("energy_per_request_j", models=m, gpu_tdp=tdp)
        assert best.index == frame["index"][int(np.argmin(m.predict(rows) / rows["batch"]))]
    # a fixed value the model needs but that is an axis, or not declared: refused, named
    s2 = ConfigSpace({**AXES, "gpu_tdp": [400.0, 700.0]}, fixed={"input_len": 512,
                     "output_len": 256})  # fmt: skip
    with pytest.raises(ValueError, match=r"'gpu_tdp'.*nor a fixed value"):
        s2.argmin("energy_j", models=m)
    # a free exponent on a fixed value cannot be folded
    free = DiscoveredModel(["batch", "gpu_tdp"], [1.0, 0.1], free=[(1, 0)],
                           covariance=np.zeros((3, 3)))  # fmt: skip
    with pytest.raises(ValueError, match="free exponent on the fixed value 'gpu_tdp'"):
        space.argmin("energy_j", models=free)
    # zero to a negative power
    with pytest.raises(ValueError, match="infinite at the fixed values"):
        space.argmin("energy_j", models=m, gpu_tdp=0.0)


def test_folded_latency_model_bounds_match_numpy(found):
    X, _, _ = planted_data(["1"], n=120, noise=0.0, seed=5)
    X = {**X, "gpu_tdp": np.full(120, 700.0)}
    rng = np.random.default_rng(3)
    tpot = (0.01 + 2e-4 * X["batch"] / X["tp"]) * np.exp(rng.normal(0, 0.03, 120))
    m = DiscoveredModel(["gpu_tdp", "batch*tp^-1*gpu_tdp"], [1e-5, 1e-7], target="tpot_s",
                        target_unit="s").refit(X, tpot)  # fmt: skip
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256, "gpu_tdp": 700.0})
    frame = space.to_frame(models=[found[2], m], as_frame=False, confidence=0.95)
    rows = {**_numpy_rows(frame), "gpu_tdp": np.full(len(frame["index"]), 700.0)}
    np.testing.assert_allclose(frame["tpot_s"], m.predict(rows), rtol=1e-12)
    np.testing.assert_allclose(frame["tpot_upper_s"], upper_bound(m, rows, 0.95), rtol=1e-10)
    assert (frame["tpot_upper_s"] > frame["tpot_s"] * 1.01).all()


def test_keyed_latency_models_of_different_structures_keep_their_bounds(found, latency_pair):
    m1, m2 = latency_pair
    X, _, _ = planted_data(["1"], n=120, noise=0.0, seed=5)
    rng = np.random.default_rng(11)
    tpot = (0.02 + 1e-4 * X["batch"]) * np.exp(rng.normal(0, 0.05, 120))
    other = DiscoveredModel(["1", "batch"], [1.0, 1.0], target="tpot_s").refit(X, tpot)
    space = ConfigSpace({"gpu": ["H100", "A100"], **AXES},
                        fixed={"input_len": 512, "output_len": 256})  # fmt: skip
    models = {"H100": [found[2], m1, m2], "A100": [found[2], m1, other]}
    q = space._query(models, {}, 0.9)
    assert "tpot" in q.models.param_maps  # merged: the union of both structures
    frame = space.to_frame(models=models, as_frame=False, confidence=0.9, limit=None)
    rows = _numpy_rows(frame)
    for name, m in (("H100", m2), ("A100", other)):
        sel = np.asarray(frame["gpu"]) == name
        sub = {k: v[sel] for k, v in rows.items()}
        np.testing.assert_allclose(frame["tpot_s"][sel], m.predict(sub), rtol=1e-12)
        np.testing.assert_allclose(frame["tpot_upper_s"][sel], upper_bound(m, sub, 0.9),
                                   rtol=1e-10)  # fmt: skip


def test_discovered_models_bound_energy_and_power_like_numpy(found, latency_pair):
    """The merged feature: power caps under a confidence (power_upper_w) with discovered models,
    against the numpy delta-method references."""
    m1, m2 = latency_pair
    em = found[2]
    space = ConfigSpace(AXES, fixed={"input_len": 512, "output_len": 256})
    models = [em, m1, m2]
    f = space.to_frame(models=models, as_frame=False, confidence=0.9)
    rows = _numpy_rows(f)
    np.testing.assert_allclose(f["energy_upper_j"], upper_bound(em, rows, 0.9), rtol=1e-10)
    ref = power_upper_bound(em, m1, m2, rows, 0.9)
    np.testing.assert_allclose(f["power_upper_w"], ref, rtol=1e-10)
    assert (f["power_upper_w"] > f["power_w"]).all()
    cap = float(np.median(f["power_upper_w"]))
    best = space.argmin("energy_per_request_j", {"power_w": ("<=", cap)}, models=models,
                        confidence=0.9)  # fmt: skip
    brute = np.where(f["power_upper_w"] <= cap, em.predict(rows) / rows["batch"], np.inf)
    assert best.index == f["index"][int(np.argmin(brute))]
