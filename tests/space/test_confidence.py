"""Selection under uncertainty: ``confidence=`` on ConfigSpace queries and the Selector."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from energycore import ConfigSpace, EnergyModel, LatencyModel, TpotModel
from energycore.simulate import Node
from energycore.space.selector import Selector
from energycore.space.slo import SLO
from energycore.space.uncertainty import student_t_quantile, upper_bound
from tests.helpers import fit_serving_models, serving_space, simulated_serving_rows

WORK = {"input_len": 512.0, "output_len": 256.0}


@pytest.fixture(scope="module")
def fitted() -> tuple[EnergyModel, LatencyModel]:
    return fit_serving_models(simulated_serving_rows(40, 3))


def test_student_t_quantile_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 3, 7, 30, 500):
        for p in (0.05, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99):
            assert student_t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), abs=1e-6)


def test_bound_columns_match_numpy_oracle(fitted: Any) -> None:
    em, lm = fitted
    f = serving_space().to_frame(None, models=[em, lm], confidence=0.9, **WORK)
    for half, col in ((lm.ttft_model_, "ttft_upper_s"), (lm.tpot_model_, "tpot_upper_s")):
        np.testing.assert_allclose(f[col], upper_bound(half, f, 0.9), rtol=1e-12)
    np.testing.assert_allclose(
        f["latency_upper_s"], f["ttft_upper_s"] + 256.0 * f["tpot_upper_s"], rtol=1e-12
    )
    assert "tpot_upper_s" not in serving_space().to_frame(models=[em, lm], **WORK)


def test_bound_monotone_in_confidence(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    prev = None
    for c in (0.05, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99):
        f = sp.to_frame(None, models=[em, lm], confidence=c, **WORK)
        ub = f["latency_upper_s"].to_numpy()
        if prev is not None:
            assert (ub >= prev).all() and (ub > prev).any()
        prev = ub
        if c < 0.5:
            assert (ub <= f["latency_s"].to_numpy()).all()


def test_half_confidence_is_the_point_prediction(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    f = sp.to_frame(None, models=[em, lm], confidence=0.5, **WORK)
    for c in ("ttft", "tpot", "latency"):
        np.testing.assert_array_equal(f[f"{c}_upper_s"], f[f"{c}_s"])
    lim = float(np.median(f["latency_s"]))
    a = sp.argmin("energy_per_request_j", {"latency_s": ("<=", lim)}, models=[em, lm], **WORK)
    b = sp.argmin(
        "energy_per_request_j",
        {"latency_s": ("<=", lim)},
        models=[em, lm],
        confidence=0.5,
        **WORK,
    )
    assert (a.index, a.n_feasible) == (b.index, b.n_feasible)


def test_argmin_keeps_only_bounds_under_the_limit(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    lim = float(np.median(sp.to_frame(None, models=[em, lm], **WORK)["latency_s"]))
    counts = []
    for c in (None, 0.8, 0.9, 0.95):
        r = sp.argmin(
            "energy_per_request_j", {"latency_s": ("<=", lim)}, models=[em, lm],
            confidence=c, **WORK,
        )  # fmt: skip
        assert r.feasible
        counts.append(r.n_feasible)
        if c is not None:
            assert r.config is not None and r.config["latency_upper_s"] <= lim
            f = sp.to_frame(None, models=[em, lm], confidence=c, **WORK)
            ok = f[f["latency_upper_s"] <= lim]
            assert r.index == int(ok["energy_per_request_j"].idxmin())
            assert r.n_feasible == len(ok)
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]


def test_slo_with_confidence(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    f = sp.to_frame(None, models=[em, lm], confidence=0.9, **WORK)
    lim = float(np.median(f["tpot_s"]))
    # mean limit: judged on the bound alone
    n = sp.count_valid(models=[em, lm], slo=SLO(tpot_s=lim), confidence=0.9, **WORK)
    assert n == int((f["tpot_upper_s"] <= lim).sum())
    top = sp.top_k(
        "energy_j", 3, models=[em, lm], slo={"tpot_s": lim}, confidence=0.9, **WORK
    )  # fmt: skip
    assert (top["tpot_upper_s"] <= lim).all()
    # percentile limit: the percentile estimate and the bound must both hold
    fac = math.exp(np.interp(90.0, *zip(*sorted(lm.tpot_model_.resid_quantiles_.items()))))
    both = (f["tpot_upper_s"] <= lim) & (f["tpot_s"] * fac <= lim * (1 + 1e-12))
    slo = SLO(tpot_s=lim, percentile=90)
    assert sp.count_valid(models=[em, lm], slo=slo, confidence=0.9, **WORK) == int(both.sum())
    r = sp.argmin("energy_j", models=[em, lm], slo=slo, confidence=0.9, **WORK)
    assert r.index == int(f[both]["energy_j"].idxmin())
    # request rate: on the bound of latency_s
    rate = float(np.median(f["batch"] / f["latency_s"]))
    n_rate = sp.count_valid(
        models=[em, lm], slo=SLO(request_rate=rate), confidence=0.9, **WORK
    )  # fmt: skip
    assert n_rate == int((f["batch"] >= rate * f["latency_upper_s"]).sum())
    pf = sp.pareto_front(
        ["energy_j", "latency_s"], models=[em, lm], slo={"tpot_s": lim}, confidence=0.9, **WORK
    )  # fmt: skip
    assert (pf["tpot_upper_s"] <= lim).all()


def test_selector_equals_argmin(fitted: Any) -> None:
    em, lm = fitted
    sp = ConfigSpace(
        {"tp": [1, 2, 4, 8], "pp": [1, 2], "batch": ConfigSpace.powers_of_two(1, 256)},
        constraints=["tp*pp <= 8"],
    )
    sel = Selector(sp, energy_model=em, latency_model=lm, confidence=0.9)
    for lin, lout, lim in ((512, 256, 3.0), (128, 64, 0.5), (2048, 512, 8.0)):
        for c in (0.9, None, 0.95, 0.5):
            a = sel.best(lin, lout, latency_limit_s=lim, confidence=c)
            b = sp.argmin(
                "energy_per_request_j", {"latency_s": ("<=", lim)}, models=[em, lm],
                confidence=c, input_len=lin, output_len=lout,
            )  # fmt: skip
            assert (a.feasible, a.index, a.nearest_index) == (b.feasible, b.index, b.nearest_index)
            t = sel.best(lin, lout, tpot_limit_s=0.01, confidence=c)
            u = sp.argmin(
                "energy_per_request_j", {"tpot_s": ("<=", 0.01)}, models=[em, lm],
                confidence=c, input_len=lin, output_len=lout,
            )  # fmt: skip
            assert (t.feasible, t.index, t.nearest_index) == (u.feasible, u.index, u.nearest_index)
    d = sel.best(512, 256, latency_limit_s=3.0)  # the constructor's default confidence
    assert d.config is not None and d.config["latency_upper_s"] <= 3.0


def test_keyed_models_get_their_own_bounds() -> None:
    a, b = (
        fit_serving_models(simulated_serving_rows(30, 1)),
        fit_serving_models(simulated_serving_rows(30, 2, noise=0.1)),
    )
    sp = ConfigSpace(
        {"gpu": ["x", "y"], "tp": [1, 2, 4], "batch": [1, 8, 64]}, constraints=["tp <= 4"]
    )
    f = sp.to_frame(None, models={"x": list(a), "y": list(b)}, confidence=0.9, **WORK)
    for key, (_, lm) in (("x", a), ("y", b)):
        rows = f[f["gpu"] == key]
        np.testing.assert_allclose(
            rows["tpot_upper_s"], upper_bound(lm.tpot_model_, rows, 0.9), rtol=1e-12
        )


def test_picks_meet_the_limit_more_often() -> None:
    """Simulated: fitted on 12 noisy rows, the picks under a bound break the true limit less."""
    node = Node("H100", "llama-3.1-8b", n_gpus=8, noise=0.0)
    sp = serving_space()
    truth_cols = sp.to_frame(None, **WORK)
    X = {k: truth_cols[k].to_numpy(dtype=float) for k in ("tp", "pp", "batch")}
    X.update({k: np.full(len(truth_cols), v) for k, v in WORK.items()})
    true = node.run(X, noise=False)
    broke = {None: 0, 0.95: 0}
    for seed in range(12):
        em, lm = fit_serving_models(simulated_serving_rows(12, 100 + seed, noise=0.08))
        valid_true = true["latency_s"][true["valid"]]
        lim = float(np.quantile(valid_true, 0.4))
        for c in broke:
            r = sp.argmin(
                "energy_per_request_j", {"latency_s": ("<=", lim)}, models=[em, lm],
                confidence=c, **WORK,
            )  # fmt: skip
            if r.feasible and true["latency_s"][r.index] > lim:
                broke[c] += 1
    assert broke[0.95] < broke[None]


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf, "0.9", True])
def test_bad_confidence(fitted: Any, bad: Any) -> None:
    em, lm = fitted
    with pytest.raises(ValueError, match="confidence"):
        serving_space().argmin("energy_j", models=[em, lm], confidence=bad, **WORK)
    with pytest.raises(ValueError, match="confidence"):
        Selector(serving_space(), energy_model=em, latency_model=lm, confidence=bad)


def test_model_without_uncertainty_is_named(fitted: Any) -> None:
    em, lm = fitted
    old = TpotModel.from_dict(lm.tpot_model_.to_dict())
    del old.covariance_
    with pytest.raises(ValueError, match=r"confidence \(tpot model\): the TpotModel .*uncertainty"):
        serving_space().argmin(
            "energy_j", {"tpot_s": ("<=", 0.01)}, models=[em, old], confidence=0.9, **WORK
        )
    d = simulated_serving_rows(10, 5)
    exact = TpotModel().fit({k: v[:2] for k, v in d.items()}, d["tpot_s"][:2])
    assert exact.fit_result_.n_samples == len(exact.fixed_mask_) - sum(exact.fixed_mask_)
    with pytest.raises(ValueError, match=r"2 row.*no residual spread"):
        serving_space().count_valid(models=[exact], confidence=0.9, **WORK)
    # without confidence the same models work as before
    assert serving_space().count_valid(models=[em, old], **WORK) > 0


def test_bound_columns_need_confidence(fitted: Any) -> None:
    em, lm = fitted
    with pytest.raises(ValueError, match="confidence"):
        serving_space().top_k("latency_upper_s", 1, models=[em, lm], **WORK)
    r = serving_space().top_k("latency_upper_s", 1, models=[em, lm], confidence=0.9, **WORK)
    assert len(r) == 1


def test_selector_scan_path_uses_the_confidence(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    sel = Selector(sp, energy_model=em, latency_model=lm)
    f = sp.to_frame(None, models=[em, lm], confidence=0.9, **WORK)
    rate = float(np.median(f["batch"] / f["latency_upper_s"]))
    slo = SLO(request_rate=rate)
    a = sel.best(512, 256, slo=slo, confidence=0.9)
    b = sp.argmin("energy_per_request_j", models=[em, lm], slo=slo, confidence=0.9, **WORK)
    assert a.index == b.index and a.feasible
    assert a.config is not None and a.config["batch"] >= rate * a.config["latency_upper_s"]
    assert (
        sel.best(512, 256, slo=slo).index
        == sp.argmin("energy_per_request_j", models=[em, lm], slo=slo, **WORK).index
    )


def test_scorers_see_the_bound_columns(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    r = sp.argmin(
        "energy_j", {"margin": ("<=", 1.1)}, models=[em, lm], confidence=0.9,
        scorers={"margin": lambda c: c["latency_upper_s"] / c["latency_s"]}, **WORK,
    )  # fmt: skip
    assert r.feasible and r.config is not None
    assert r.config["latency_upper_s"] <= 1.1 * r.config["latency_s"] * (1 + 1e-12)


@pytest.mark.parametrize("confidence", [0.3, 0.9])
def test_selector_random_queries_equal_argmin(fitted: Any, confidence: float) -> None:
    """The Selector prunes by latency bounds under a confidence >= 0.5; answers stay exact,
    feasible or not (nearest point), and for z < 0 nothing is pruned wrongly."""
    em, lm = fitted
    sp = serving_space()
    sel = Selector(sp, energy_model=em, latency_model=lm, confidence=confidence)
    rng = np.random.default_rng(7)
    for _ in range(150):
        lin, lout = float(rng.integers(1, 4096)), float(rng.integers(1, 1024))
        lim, cap = float(rng.uniform(0.05, 12)), float(rng.uniform(300, 6000))
        a = sel.best(lin, lout, latency_limit_s=lim, power_cap_w=cap)
        b = sp.argmin(
            "energy_per_request_j", {"latency_s": ("<=", lim), "power_w": ("<=", cap)},
            models=[em, lm], confidence=confidence, input_len=lin, output_len=lout,
        )  # fmt: skip
        assert (a.feasible, a.index, a.nearest_index) == (b.feasible, b.index, b.nearest_index)
