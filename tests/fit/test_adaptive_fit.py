"""The default fit adapts to the data (issue 11): reductions, float batch, n_gpus, TPOT-only."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from energycore import ConfigSpace, EnergyModel, LatencyModel, TpotModel
from energycore.data import read_mlenergy
from energycore.space.selector import Selector
from tests.helpers import draw_design, draw_theta, energy

MLENERGY = "mlenergy-leaderboard-v3-llm/llm_configs.csv"


def _design(n: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    return draw_design(np.random.default_rng(seed), n)


def _fit_quietly(model: EnergyModel, X: dict[str, np.ndarray], y: np.ndarray) -> EnergyModel:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reduction the data forced is not a warning
        return model.fit(X, y)


@pytest.mark.parametrize(
    ("axis", "value", "expect"),
    [
        ("tp", 1.0, {"t3", "t5", "t9", "t11"}),
        ("tp", 4.0, {"t3", "t9"}),
        ("pp", 1.0, {"t4", "t10"}),
        ("pp", 2.0, {"t4", "t10"}),
        ("input_len", 512.0, {"t2"}),
        ("batch", 8.0, set()),
        ("output_len", 256.0, set()),
    ],
)
def test_each_constant_axis_reduces_its_terms(axis: str, value: float, expect: set[str]) -> None:
    X = _design()
    theta = draw_theta(np.random.default_rng(1))
    X[axis] = np.full(len(X["tp"]), value)
    y = energy(X, theta)
    m = _fit_quietly(EnergyModel(loss="linear"), X, y)
    assert expect <= set(m.reduced_)
    for name in expect:  # neutral value, never the arbitrary start
        assert m.params_[name] == 0.0
        assert np.isnan(m.stderr_[name])
    assert "reduced:" in repr(m) or not expect
    # The reduced model still describes the data it saw.
    assert np.median(np.abs(m.predict(X) / y - 1)) < 0.02
    # Predictions at another value of the constant axis say they extrapolate.
    other = {**X, axis: np.full(len(X["tp"]), value * 2)}
    assert m.outside_range(other).all()
    assert not m.outside_range(X).any()


def test_collinear_columns_are_reduced_with_reason() -> None:
    X = _design()
    n = len(X["tp"])
    X["tp"] = np.full(n, 2.0)  # constant tp > 1: tp**t3 is a scale factor, t5 ~ t1
    X["pp"] = np.ones(n)
    y = energy(X, draw_theta(np.random.default_rng(2)))
    m = _fit_quietly(EnergyModel(loss="linear"), X, y)
    assert "not separable" in m.reduced_["t3"]
    assert "not separable" in m.reduced_["t5"] or "no effect" not in m.reduced_["t5"]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_fewer_rows_than_terms_fits_a_smaller_model(n: int) -> None:
    X = {k: v[:n] for k, v in _design().items()}
    y = energy(X, draw_theta(np.random.default_rng(3)))
    m = _fit_quietly(EnergyModel(), X, y)
    free = len(m.fixed_mask_) - sum(m.fixed_mask_)
    assert 1 <= free <= max(n, 1)
    assert len(m.reduced_) == 12 - free
    assert np.isfinite(m.predict(X)).all()


def test_fewer_rows_without_reduction_still_raises_with_the_minimum() -> None:
    X = {k: v[:5] for k, v in _design().items()}
    y = energy(X, draw_theta(np.random.default_rng(3)))
    with pytest.raises(ValueError, match="measure at least 12 configurations"):
        EnergyModel(reduce=False).fit(X, y)


def test_user_fixed_coefficients_stay_in_control() -> None:
    X = _design()
    y = energy(X, draw_theta(np.random.default_rng(4)))
    m = _fit_quietly(EnergyModel(fixed={"t3": 0.5, "t8": 1e-6}), X, y)
    assert m.params_["t3"] == 0.5 and m.params_["t8"] == 1e-6
    assert "t3" not in m.reduced_ and "t8" not in m.reduced_


def test_full_data_keeps_the_full_template() -> None:
    X = _design(80)
    theta = draw_theta(np.random.default_rng(5))
    y = energy(X, theta)
    m = EnergyModel(loss="linear").fit(X, y)
    assert m.reduced_ == {}
    X_new = _design(100, seed=9)
    assert np.median(np.abs(m.predict(X_new) / energy(X_new, theta) - 1)) < 1e-3


def test_reduced_models_save_and_load(tmp_path: Path) -> None:
    X = _design()
    X["tp"] = np.ones(len(X["tp"]))
    y = energy(X, draw_theta(np.random.default_rng(6)))
    m = _fit_quietly(EnergyModel(), X, y)
    m.save(tmp_path / "m.json")
    back = EnergyModel.load(tmp_path / "m.json")
    assert back.reduced_ == m.reduced_ and back.ranges_ == m.ranges_
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    assert back.outside_range({**X, "tp": np.full(len(X["tp"]), 2.0)}).all()
    # A version-1 file (written before the adaptive fit) still loads, as the full template.
    d = json.loads((tmp_path / "m.json").read_text())
    d["format_version"] = 1
    del d["hyper"]["reduce"], d["fit"]["reduced"], d["fit"]["ranges"]
    old = EnergyModel.from_dict(d)
    assert old.reduce is False and old.reduced_ == {} and old.ranges_ is None
    assert not old.outside_range(X).any()


def test_float_batch_is_accepted_and_tp_still_must_be_an_integer() -> None:
    X = _design()
    X["batch"] = X["batch"] - 0.03  # a time-averaged running batch
    y = energy(X, draw_theta(np.random.default_rng(7)))
    m = _fit_quietly(EnergyModel(), X, y)
    assert np.isfinite(m.predict(X)).all()
    with pytest.raises(ValueError, match=r"'tp' must be an integer, got 1\.5 at row 0"):
        m.predict({**X, "tp": np.full(len(X["tp"]), 1.5)})
    with pytest.raises(ValueError, match="'batch' must be positive"):
        m.predict({**X, "batch": np.zeros(len(X["tp"]))})


def test_n_gpus_feeds_the_per_gpu_terms() -> None:
    X = _design()
    n = len(X["tp"])
    X["tp"], X["pp"] = np.ones(n), np.ones(n)
    gpus = np.where(np.arange(n) % 2 == 0, 4.0, 8.0)  # expert parallel: tp=1 on 4 or 8 GPUs
    theta = draw_theta(np.random.default_rng(8))
    y = energy({**X, "tp": gpus}, theta)  # the truth: per-GPU terms see the GPUs
    with_g = _fit_quietly(EnergyModel(loss="linear"), {**X, "n_gpus": gpus}, y)
    without = _fit_quietly(EnergyModel(loss="linear"), X, y)
    err_with = np.median(np.abs(with_g.predict({**X, "n_gpus": gpus}) / y - 1))
    err_without = np.median(np.abs(without.predict(X) / y - 1))
    assert err_with < 0.01 < err_without
    with pytest.raises(ValueError, match="'n_gpus' must be at least tp \\* pp, got 1 at row 0"):
        with_g.predict({**X, "tp": np.full(n, 2.0), "n_gpus": np.ones(n)})
    # An empty cell means tp * pp.
    nan = np.full(n, np.nan)
    np.testing.assert_array_equal(with_g.predict({**X, "n_gpus": nan}), with_g.predict(X))


def _latency_data(n: int = 30) -> tuple[dict[str, np.ndarray], np.ndarray]:
    X = _design(n)
    tpot = 0.01 + 2e-5 * X["batch"] * X["tp"] ** -0.5
    return X, tpot


def test_tpot_only_latency_model_and_limits_in_space_and_selector() -> None:
    X, tpot = _latency_data()
    lat = LatencyModel().fit(X, tpot_s=tpot)
    assert lat.ttft_model_ is None and set(lat.predict_all(X)) == {"tpot_s"}
    with pytest.raises(ValueError, match="fitted without a ttft_s target"):
        lat.predict(X)
    d = lat.to_dict()
    assert "ttft" not in d and LatencyModel.from_dict(d).tpot_model_ is not None
    em = EnergyModel().fit(X, energy(X, draw_theta(np.random.default_rng(9))))
    space = ConfigSpace({"tp": [1, 2, 4, 8], "pp": [1], "batch": [1, 8, 32, 64]})
    for models in ([em, lat], [em, TpotModel().fit(X, tpot)]):
        limit = 0.0105
        sel = space.argmin(
            "energy_per_request_j", subject_to={"tpot_s": ("<=", limit)}, models=models,
            input_len=512, output_len=128,
        )  # fmt: skip
        frame = space.to_frame(models=models, input_len=512, output_len=128, as_frame=False)
        assert "tpot_s" in frame and "latency_s" not in frame
        ok = frame["tpot_s"] <= limit
        assert sel.feasible
        assert sel.value == pytest.approx(frame["energy_per_request_j"][ok].min())
        with pytest.raises(ValueError, match="needs a fitted latency model"):
            space.argmin("latency_s", models=models, input_len=512, output_len=128)
        s = Selector(space, energy_model=em, latency_model=models[1])
        best = s.best(512, 128, tpot_limit_s=limit)
        assert best.feasible and best.value == pytest.approx(sel.value)
        with pytest.raises(ValueError, match="latency_limit_s: needs a latency model with both"):
            s.best(512, 128, latency_limit_s=1.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda X: {**X, "batch": np.where(np.arange(len(X["tp"])) == 3, np.nan, X["batch"])},
         "'batch' has a non-finite value \\(nan\\) at row 3"),
        (lambda X: {**X, "output_len": np.where(np.arange(len(X["tp"])) == 2, np.inf, 1.0)},
         "'output_len' has a non-finite value \\(inf\\) at row 2"),
        (lambda X: {**X, "input_len": -X["input_len"]}, "'input_len' must be non-negative"),
        (lambda X: {k: v[:0] for k, v in X.items()}, "at least 1 row"),
    ],
)  # fmt: skip
def test_bad_input_is_a_value_error_naming_column_and_row(change, match: str) -> None:
    X = _design()
    y = energy(X, draw_theta(np.random.default_rng(10)))
    Xb = change(X)
    with pytest.raises(ValueError, match=match):
        EnergyModel().fit(Xb, y[: len(Xb["tp"])])


def test_single_row_and_constant_target_fit_without_crashing() -> None:
    X = _design()
    one = {k: v[:1] for k, v in X.items()}
    m = _fit_quietly(EnergyModel(), one, np.array([123.0]))
    assert m.predict(one)[0] == pytest.approx(123.0, rel=1e-6)
    m = _fit_quietly(EnergyModel(), X, np.full(len(X["tp"]), 50.0))
    assert np.isfinite(m.predict(X)).all()


def test_read_mlenergy_maps_columns_with_units(shared_data: Path) -> None:
    path = shared_data / MLENERGY
    if not path.is_file():
        pytest.skip("ML.ENERGY v3 data not present")
    c = read_mlenergy(path)
    np.testing.assert_allclose(c["tpot_s"], c["median_itl_ms"] / 1000)
    np.testing.assert_allclose(c["energy_j"], c["energy_per_request_joules"] * c["avg_batch_size"])
    assert (c["n_gpus"] >= c["tp"]).all() and (c["pp"] == 1).all()
    g = c["group"] == c["group"][0]
    X = {k: v[g] for k, v in c.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        em = EnergyModel().fit(X, "energy_j")
        tm = TpotModel().fit(X, "tpot_s")
    assert np.median(np.abs(em.predict(X) / X["energy_j"] - 1)) < 0.1
    assert np.median(np.abs(tm.predict(X) / X["tpot_s"] - 1)) < 0.3


def test_read_mlenergy_json_and_bad_records(tmp_path: Path) -> None:
    rec = {
        "model_id": "m", "gpu_model": "H100", "num_gpus": 2, "tensor_parallel": 2,
        "avg_batch_size": 7.9, "avg_output_len": 300.0, "energy_per_request_joules": 90.0,
        "median_itl_ms": 20.0, "avg_power_watts": 800.0,
        "output_throughput_tokens_per_sec": 400.0, "output_length_distribution": {"a": 1},
    }  # fmt: skip
    p = tmp_path / "gpqa.json"
    p.write_text(json.dumps({"configurations": [rec, {**rec, "avg_batch_size": 15.8}]}))
    c = read_mlenergy(p)
    assert list(c["group"]) == ["gpqa|m|H100"] * 2
    assert c["batch"][0] == 7.9 and c["energy_j"][0] == pytest.approx(90.0 * 7.9)
    p.write_text(json.dumps([{**rec, "median_itl_ms": None}]))
    with pytest.raises(ValueError, match="field 'median_itl_ms' must be a positive number"):
        read_mlenergy(p)
