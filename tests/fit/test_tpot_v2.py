"""TpotModel's default template tpot_v2 (a power law in the batch): reduction, monotonicity,
persistence, and the tpot_v1 files written before it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from energycore import LatencyModel, MoeTpotModel, TpotModel, _core
from energycore._util.columns import FEATURES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: c1 .. c7 of a decode step that grows slower than linearly in the batch (c7 < 0)
CONCAVE = np.array([8e-3, 4e-4, 1e-9, -0.6, 0.0, 0.0, -0.45])


def _rows(n: int, seed: int, tp: tuple[float, ...] = (1.0, 2.0, 4.0)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "tp": rng.choice(tp, n),
        "pp": np.ones(n),
        "batch": np.exp(rng.uniform(np.log(4), np.log(1024), n)),  # float, as engines report
        "input_len": rng.choice([256.0, 1024.0], n),
        "output_len": rng.choice([128.0, 512.0], n),
    }


def _table(X: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([X[k] for k in FEATURES])


def _target(X: dict[str, np.ndarray], c: np.ndarray, noise: float, seed: int) -> np.ndarray:
    y = _core.template_value("tpot_v2", _table(X), c, 1)
    return y * np.exp(np.random.default_rng(seed + 100).normal(0.0, noise, len(y)))


def test_tpot_v2_at_c7_zero_is_tpot_v1() -> None:
    X = _table(_rows(50, 0))
    c = np.array([1e-2, 1e-5, 1e-9, -0.7, 0.1, 1e-6])
    np.testing.assert_array_equal(
        _core.template_value("tpot_v2", X, np.r_[c, 0.0], 1),
        _core.template_value("tpot_v1", X, c, 1),
    )


def test_default_tpot_model_is_tpot_v2() -> None:
    assert TpotModel().template_name == "tpot_v2"
    assert TpotModel.param_names() == ("c1", "c2", "c3", "c4", "c5", "c6", "c7")
    assert LatencyModel.param_names()[-7:] == TpotModel.param_names()


def test_a_planted_batch_power_is_kept_and_recovered() -> None:
    X = _rows(60, 1)
    m = TpotModel(n_threads=1).fit(X, _target(X, CONCAVE, 0.01, 1))
    assert "c7" not in m.reduced_
    assert m.params_["c7"] == pytest.approx(CONCAVE[6], abs=0.05)
    # the same rows fitted with tpot_v1's linear batch term are worse on fresh rows
    T = _rows(200, 2)
    y = _target(T, CONCAVE, 0.0, 2)
    v1 = TpotModel(n_threads=1, fixed={"c7": 0.0}).fit(X, _target(X, CONCAVE, 0.01, 1))
    err = lambda model: float(np.median(np.abs(model.predict(T) / y - 1)))  # noqa: E731
    assert err(m) < 0.02 < err(v1)


def test_linear_data_drop_or_zero_the_batch_power() -> None:
    X = _rows(60, 3)
    c = CONCAVE.copy()
    c[6] = 0.0
    m = TpotModel(n_threads=1).fit(X, _target(X, c, 0.02, 3))
    assert "c7" in m.reduced_ or abs(m.params_["c7"]) < 0.05


def test_few_rows_reduce_the_batch_power_first() -> None:
    X = _rows(4, 4, tp=(1.0,))
    m = TpotModel(n_threads=1).fit(X, _target(X, CONCAVE, 0.01, 4))
    assert m.params_["c7"] == 0.0
    assert "c7" in m.reduced_


def test_a_single_batch_size_leaves_the_power_unidentified() -> None:
    X = _rows(20, 5)
    X["batch"] = np.full(20, 32.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reduction the data forced: no warning
        m = TpotModel(n_threads=1).fit(X, _target(X, CONCAVE, 0.01, 5))
    assert m.params_["c7"] == 0.0 and "c7" in m.reduced_


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fitted_tpot_is_non_decreasing_in_batch(seed: int) -> None:
    """Every coefficient of the batch terms is non-negative and 1 + c7 > 0 (c7 >= -0.9)."""
    X = _rows(12, 10 + seed)
    rng = np.random.default_rng(seed)
    y = _target(X, CONCAVE, 0.0, seed) * np.exp(rng.normal(0, 0.15, 12))  # very noisy
    m = TpotModel(n_threads=1).fit(X, y)
    b = np.geomspace(1, 4096, 200)
    for tp in (1.0, 2.0, 4.0):
        Q = {"tp": np.full(200, tp), "pp": np.ones(200), "batch": b,
             "input_len": np.full(200, 512.0), "output_len": np.full(200, 256.0)}  # fmt: skip
        assert np.all(np.diff(m.predict(Q)) >= 0)


def test_save_load_round_trip_keeps_the_power_and_the_reductions(tmp_path: Path) -> None:
    for n in (60, 4):
        X = _rows(n, 6, tp=(1.0, 2.0) if n > 4 else (1.0,))
        m = TpotModel(n_threads=1).fit(X, _target(X, CONCAVE, 0.01, 6))
        m.save(tmp_path / "m.json")
        back = TpotModel.load(tmp_path / "m.json")
        assert back.template_name == "tpot_v2"
        assert back.reduced_ == m.reduced_
        np.testing.assert_array_equal(back.coef_, m.coef_)
        np.testing.assert_array_equal(back.predict(X), m.predict(X))


def test_tpot_v1_files_load_as_tpot_v2_with_the_same_predictions(tmp_path: Path) -> None:
    d = json.loads((FIXTURES / "latency_model_v1.json").read_text())
    part = d["tpot"]
    assert part["template"] == "tpot_v1"
    old = np.array([part["fit"]["params"][k] for k in TpotModel.param_names()[:6]])
    m = TpotModel.from_dict(part)
    assert m.template_name == "tpot_v2" and m.params_["c7"] == 0.0
    assert "tpot_v1" in m.reduced_["c7"]
    X = _rows(30, 7)
    np.testing.assert_allclose(
        m.predict(X), _core.template_value("tpot_v1", _table(X), old, 1), rtol=1e-15
    )
    lat = LatencyModel.from_dict(d)
    np.testing.assert_allclose(lat.predict_tpot(X), m.predict(X), rtol=1e-15)
    # and it saves as tpot_v2 from then on
    m.save(tmp_path / "up.json")
    assert json.loads((tmp_path / "up.json").read_text())["template"] == "tpot_v2"


def test_moe_model_still_refuses_a_dense_file() -> None:
    part = json.loads((FIXTURES / "latency_model_v1.json").read_text())["tpot"]
    with pytest.raises(ValueError, match="holds template 'tpot_v1'"):
        MoeTpotModel.from_dict(part)
