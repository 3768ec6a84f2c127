"""Power limits under uncertainty: ``power_upper_w`` / ``energy_upper_j`` and power caps judged
on the bound under ``confidence=`` (ConfigSpace, Selector)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from energycore import ConfigSpace, EnergyModel, LatencyModel
from energycore.space.selector import Selector
from energycore.space.uncertainty import power_upper_bound, student_t_quantile, upper_bound
from tests.helpers import fit_serving_models, serving_space, simulated_serving_rows

WORK = {"input_len": 512.0, "output_len": 256.0}


@pytest.fixture(scope="module")
def fitted() -> tuple[EnergyModel, LatencyModel]:
    return fit_serving_models(simulated_serving_rows(40, 3))


def _stale(model: EnergyModel) -> EnergyModel:
    """The model as read from a file written before the residual scale was recorded."""
    m = copy.deepcopy(model)
    m.residual_scale_ = float("nan")
    return m


@pytest.mark.parametrize("c", [0.2, 0.9, 0.99])
def test_power_bound_matches_numpy_delta_method(fitted: Any, c: float) -> None:
    em, lm = fitted
    f = serving_space().to_frame(None, models=[em, lm], confidence=c, **WORK)
    np.testing.assert_allclose(f["energy_upper_j"], upper_bound(em, f, c), rtol=1e-12)
    ref = power_upper_bound(em, lm.ttft_model_, lm.tpot_model_, f, c)
    np.testing.assert_allclose(f["power_upper_w"], ref, rtol=1e-11)
    # the reference written out: exponents of the three bounds, latency's weighted by share
    z = {m: student_t_quantile(c, m.fit_result_.n_samples - m.coef_.size) for m in (em,)}
    assert z[em] != 0
    a_e = np.log(f["energy_upper_j"] / f["energy_j"])
    a_t = np.log(f["ttft_upper_s"] / f["ttft_s"])
    a_p = np.log(f["tpot_upper_s"] / f["tpot_s"])
    a_l = (f["ttft_s"] * a_t + 256.0 * f["tpot_s"] * a_p) / f["latency_s"]
    a = np.sign(c - 0.5) * np.sqrt(a_e**2 + a_l**2)
    np.testing.assert_allclose(f["power_upper_w"], f["power_w"] * np.exp(a), rtol=1e-10)


def test_power_bound_exceeds_both_parts(fitted: Any) -> None:
    """Variances add: the power bound is wider than the energy bound or the latency one."""
    em, lm = fitted
    f = serving_space().to_frame(None, models=[em, lm], confidence=0.9, **WORK)
    a_p = np.log(f["power_upper_w"] / f["power_w"])
    assert (a_p >= np.log(f["energy_upper_j"] / f["energy_j"]) - 1e-12).all()
    assert (a_p > 0).all()


def test_power_bound_monotone_and_point_at_half(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    f = sp.to_frame(None, models=[em, lm], confidence=0.5, **WORK)
    np.testing.assert_array_equal(f["power_upper_w"], f["power_w"])
    np.testing.assert_array_equal(f["energy_upper_j"], f["energy_j"])
    prev = None
    for c in (0.05, 0.3, 0.5, 0.6, 0.8, 0.9, 0.95, 0.99):
        f = sp.to_frame(None, models=[em, lm], confidence=c, **WORK)
        ub, p = f["power_upper_w"].to_numpy(), f["power_w"].to_numpy()
        assert (ub >= p).all() if c >= 0.5 else (ub <= p).all()
        if prev is not None:
            assert (ub >= prev).all() and (ub > prev).any()
        prev = ub
    without = sp.to_frame(None, models=[em, lm], **WORK)
    assert "power_upper_w" not in without and "energy_upper_j" not in without


def test_table_and_direct_paths_agree(fitted: Any) -> None:
    """The model table (product walk) and per-point scoring (explicit rows) give the same."""
    em, lm = fitted
    sp = serving_space()
    a = sp.to_frame(None, models=[em, lm], confidence=0.9, **WORK)
    rows = ConfigSpace.from_rows(a[["tp", "pp", "batch"]].reset_index(drop=True))
    b = rows.to_frame(None, models=[em, lm], confidence=0.9, **WORK)
    for col in ("energy_upper_j", "power_upper_w", "latency_upper_s"):
        np.testing.assert_allclose(b[col].to_numpy(), a[col].to_numpy(), rtol=1e-13)


def _brute(f: Any, cap: float, col: str, lat: float | None = None) -> int | None:
    ok = f[col].to_numpy() <= cap
    if lat is not None:
        ok &= f["latency_upper_s" if col == "power_upper_w" else "latency_s"].to_numpy() <= lat
    if not ok.any():
        return None
    e = f["energy_per_request_j"].to_numpy()
    idx = f.index.to_numpy()
    j = np.lexsort((idx[ok], e[ok]))[0]
    return int(idx[ok][j])


@pytest.mark.parametrize("c", [None, 0.5, 0.8, 0.95])
def test_argmin_equals_brute_force_with_power_caps(fitted: Any, c: float | None) -> None:
    em, lm = fitted
    sp = serving_space()
    f = sp.to_frame(None, models=[em, lm], confidence=c, **WORK)
    col = "power_w" if c is None else "power_upper_w"
    lat = float(np.quantile(f["latency_s"], 0.6))
    for q in (0.05, 0.25, 0.5, 0.75, 1.0):
        cap = float(np.quantile(f["power_w"], q))
        for limit in (None, lat):
            subject = {"power_w": ("<=", cap)}
            if limit is not None:
                subject["latency_s"] = ("<=", limit)
            r = sp.argmin("energy_per_request_j", subject, models=[em, lm], confidence=c, **WORK)
            want = _brute(f, cap, col, limit)
            assert r.feasible == (want is not None)
            if want is not None:
                assert r.index == want
                assert r.config is not None and r.config[col] <= cap


def test_bound_cap_is_stricter_than_the_point_cap(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    f = sp.to_frame(None, models=[em, lm], **WORK)
    cap = float(np.median(f["power_w"]))
    point = sp.argmin("energy_per_request_j", {"power_w": ("<=", cap)}, models=[em, lm], **WORK)
    n = [point.n_feasible]
    for c in (0.8, 0.9, 0.95):
        r = sp.argmin(
            "energy_per_request_j", {"power_w": ("<=", cap)}, models=[em, lm], confidence=c,
            **WORK,
        )  # fmt: skip
        n.append(r.n_feasible)
        assert r.config is not None and r.config["power_upper_w"] <= cap
        assert r.config["power_w"] < cap
    assert n == sorted(n, reverse=True) and n[-1] < n[0]


def test_selector_equals_argmin_with_power_caps(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    rng = np.random.default_rng(5)
    f = sp.to_frame(None, models=[em, lm], **WORK)
    p_lo, p_hi = float(f["power_w"].min()), float(f["power_w"].max())
    for c in (0.2, 0.5, 0.9):  # below 0.5 the bound is under the point: no pruning by it
        sel = Selector(sp, energy_model=em, latency_model=lm, confidence=c)
        for _ in range(40):
            lin = float(rng.choice([64.0, 300, 512, 1500, 4000]))
            lout = float(rng.choice([16.0, 100, 256, 700]))
            cap = float(rng.uniform(0.5 * p_lo, 1.1 * p_hi))
            lat = None if rng.random() < 0.5 else float(rng.uniform(0.5, 30.0))
            got = sel.best(lin, lout, latency_limit_s=lat, power_cap_w=cap)
            subject = {"power_w": ("<=", cap)}
            if lat is not None:
                subject["latency_s"] = ("<=", lat)
            want = sp.argmin(
                "energy_per_request_j", subject, models=[em, lm], confidence=c,
                input_len=lin, output_len=lout,
            )  # fmt: skip
            assert (got.feasible, got.index, got.nearest) == (
                want.feasible,
                want.index,
                want.nearest,
            )
            if want.feasible:
                assert got.value == want.value
            else:
                assert got.violation == pytest.approx(want.violation, rel=1e-12)
        # confidence=None on best() of a bounded Selector: the point cap again
        cap = float(np.median(f["power_w"]))
        got = sel.best(512, 256, power_cap_w=cap, confidence=None)
        want = sp.argmin("energy_per_request_j", {"power_w": ("<=", cap)}, models=[em, lm], **WORK)
        assert got.index == want.index


def test_keyed_models_get_their_own_energy_bounds() -> None:
    per = {
        g: fit_serving_models(simulated_serving_rows(30, 11 + i, gpu=g))
        for i, g in enumerate(("H100", "A100"))
    }
    sp = ConfigSpace(
        {"gpu": ["H100", "A100"], "tp": [1, 2, 4], "batch": [1, 8, 64]}, model_axis="gpu"
    )
    models = {g: [em, lm] for g, (em, lm) in per.items()}
    f = sp.to_frame(None, models=models, confidence=0.9, **WORK)
    for g, (em, lm) in per.items():
        part = f[f["gpu"] == g]
        ref = power_upper_bound(em, lm.ttft_model_, lm.tpot_model_, part, 0.9)
        np.testing.assert_allclose(part["power_upper_w"], ref, rtol=1e-11)


def test_energy_model_without_uncertainty(fitted: Any) -> None:
    em, lm = fitted
    stale = _stale(em)
    sp = serving_space()
    cap = {"power_w": ("<=", 1e5)}
    with pytest.raises(ValueError, match=r"confidence \(energy model\): the EnergyModel records"):
        sp.argmin("energy_j", cap, models=[stale, lm], confidence=0.9, **WORK)
    with pytest.raises(ValueError, match="EnergyModel records no residual scale"):
        sp.to_frame(where="power_upper_w < 1e5", models=[stale, lm], confidence=0.9, **WORK)
    # a latency limit alone still works: the energy bound is not needed
    r = sp.argmin(
        "energy_j", {"latency_s": ("<=", 50.0)}, models=[stale, lm], confidence=0.9, **WORK
    )
    assert r.feasible
    assert "power_upper_w" not in sp.to_frame(models=[stale, lm], confidence=0.9, **WORK)
    # the point cap is unaffected
    assert sp.argmin("energy_j", cap, models=[stale, lm], **WORK).feasible
    sel = Selector(sp, energy_model=stale, latency_model=lm, confidence=0.9)
    assert sel.best(512, 256, latency_limit_s=50.0).feasible
    with pytest.raises(ValueError, match="EnergyModel records no residual scale"):
        sel.best(512, 256, power_cap_w=1e5)
    assert sel.best(512, 256, power_cap_w=1e5, confidence=None).feasible


def test_power_bound_needs_both_models(fitted: Any) -> None:
    em, lm = fitted
    sp = serving_space()
    with pytest.raises(ValueError, match="needs a fitted power_upper model"):
        sp.argmin("energy_j", {"power_w": ("<=", 1e4)}, models=[em], confidence=0.9, **WORK)
    with pytest.raises(ValueError, match="needs a fitted power_upper model"):
        sp.argmin("latency_s", {"power_w": ("<=", 1e4)}, models=[lm], confidence=0.9, **WORK)
    with pytest.raises(ValueError, match="energy_upper_j"):
        sp.argmin("energy_upper_j", models=[em, lm], **WORK)  # no confidence: no bound
    with pytest.raises(ValueError, match="power_cap_w: needs"):
        sel = Selector(sp, latency_model=lm, objective="latency_s", confidence=0.9)
        sel.best(512, 256, power_cap_w=1e4)
    f = sp.to_frame(None, models=[em], confidence=0.9, **WORK)
    assert "energy_upper_j" in f and "power_upper_w" not in f


def test_engine_checks_the_energy_bound() -> None:
    from energycore import _core

    theta = [np.full(12, 1.0)]
    args = ([[1.0, 2.0]], [1.0, 1.0, 512.0, 256.0], [], [], [1, 2, 0, 3, 4], -1,
            ("energy_v2", theta), None, None)  # fmt: skip
    _core.SpaceEngine(*args, energy_bound=([np.eye(12) * 1e-4], [0.01], 1.0))
    with pytest.raises(ValueError, match="energy model: covariance must be 12 x 12"):
        _core.SpaceEngine(*args, energy_bound=([np.eye(5)], [0.01], 1.0))
    with pytest.raises(ValueError, match="energy model: residual variance"):
        _core.SpaceEngine(*args, energy_bound=([np.eye(12)], [math.nan], 1.0))
    with pytest.raises(ValueError, match="energy_bound: a bound needs the model"):
        _core.SpaceEngine(*args[:6], None, None, None, energy_bound=([np.eye(12)], [0.0], 1.0))
