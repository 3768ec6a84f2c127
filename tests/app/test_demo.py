"""The demo pipeline: plan, measure, fit, enumerate, select, compare with the true optimum."""

from __future__ import annotations

import numpy as np
import pytest

from energycore.app.demo import run_demo
from energycore.simulate import Node


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return run_demo(samples=50, seed=0)


def test_it_profiles_the_requested_number_of_configurations(result) -> None:  # type: ignore[no-untyped-def]
    ok = [r for r in result.measurements if r["status"] == "ok"]
    failed = [r for r in result.measurements if r["status"] == "failed"]
    assert len(ok) == 50 and len(failed) == result.n_failed
    assert all(r["source"] == "simulated" for r in result.measurements)
    assert all("does not fit" in r["reason"] or "exceeds" in r["reason"] for r in failed)


def test_the_true_optimum_is_the_brute_force_one(result) -> None:  # type: ignore[no-untyped-def]
    c = result.candidates
    truth = Node("H100", "llama-3.1-70b", n_gpus=8, noise=0.0).run(c, noise=False)
    ok = truth["valid"] & (truth["latency_s"] <= result.latency_limit_s)
    best = np.flatnonzero(ok)[np.argmin(truth["energy_per_request_j"][ok])]
    assert result.optimum == best


def test_the_pick_respects_the_limit_and_has_small_regret(result) -> None:  # type: ignore[no-untyped-def]
    pick = result.row(result.pick)
    assert pick["pred_latency_s"] <= result.latency_limit_s
    assert not result.pick_breaks_limit
    assert 0.0 <= result.regret < 0.05
    assert result.latency_optimal_extra_energy > 0  # the fastest configuration costs energy
    fast = result.row(result.latency_optimal)
    assert fast["pred_latency_s"] == np.nanmin(
        result.candidates["pred_latency_s"][result.candidates["valid"]]
    )


def test_the_throughput_optimum_is_the_brute_force_one(result) -> None:  # type: ignore[no-untyped-def]
    c = result.candidates
    ok = c["pred_latency_s"] <= result.latency_limit_s
    gpu_s_per_request = c["pred_latency_s"] * c["tp"] * c["pp"] / c["batch"]
    best = np.flatnonzero(ok)[np.argmin(gpu_s_per_request[ok])]
    assert result.throughput_optimal == best
    e = c["true_energy_per_request_j"]
    assert result.throughput_optimal_extra_energy == pytest.approx(
        e[best] / e[result.optimum] - 1.0
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="samples"):
        run_demo(samples=5)
    with pytest.raises(ValueError, match="latency_limit"):
        run_demo(latency_limit=-1.0)


@pytest.mark.parametrize("seed", [0, 3])
def test_a_pick_that_breaks_the_limit_is_flagged(seed: int) -> None:
    """The flag and the note agree with the simulator's own latency of the pick, recomputed
    here from the configuration alone (not from the demo's table)."""
    r = run_demo(gpu="H100", model="mixtral-8x7b", samples=50, seed=seed)
    row = r.row(r.pick)
    node = Node("H100", "mixtral-8x7b", n_gpus=8, noise=0.0)
    config = {k: np.array([row[k]], dtype=float) for k in ("tp", "pp", "batch")}
    config |= {k: np.array([row[k]], dtype=float) for k in ("input_len", "output_len")}
    true_latency = float(node.run(config, noise=False)["latency_s"][0])
    breaks = true_latency > r.latency_limit_s
    assert r.pick_breaks_limit is breaks
    assert any("exceeds the limit" in n for n in r.notes) is breaks
    if not breaks:
        assert r.regret >= 0


def test_decision_sweep_judges_each_choice_by_the_simulated_truth() -> None:
    from energycore.app import grid
    from energycore.app.demo import decision_sweep

    res = run_demo(samples=30, seed=3)
    assert len(res.sweep) == 9
    assert {(r["input_len"], r["output_len"]) for r in res.sweep} == {
        (128, 64), (512, 256), (2048, 1024)
    }  # fmt: skip
    node = Node("H100", "llama-3.1-70b", n_gpus=8, noise=0.0)
    space = grid.node_space(8, 512, node.gpu, node.model)
    fitted = [res.energy_model, res.ttft_model, res.tpot_model]
    (row,) = decision_sweep(space, fitted, node, workloads=((512, 256),), factors=(1e9,))
    # no binding limit: the pick is the least predicted energy, the latency-optimal the fastest
    kw = {"models": fitted, "input_len": 512.0, "output_len": 256.0}
    cand = space.to_frame(limit=None, as_frame=False, **kw)
    i_pick = int(np.argmin(cand["energy_per_request_j"]))
    i_fast = int(np.argmin(cand["latency_s"]))
    assert row["pick"] == {k: int(cand[k][i_pick]) for k in ("tp", "pp", "batch")}

    def true_energy(i: int) -> float:
        cfg = {k: np.array([float(cand[k][i])]) for k in ("tp", "pp", "batch")}
        cfg.update(input_len=np.array([512.0]), output_len=np.array([256.0]))
        return float(node.run(cfg, noise=False)["energy_per_request_j"][0])

    want = true_energy(i_fast) / true_energy(i_pick) - 1
    assert row["latency_optimal_extra"] == pytest.approx(want, rel=1e-9)
    assert row["latency_optimal_extra"] > 1.0  # the fastest configuration costs far more
