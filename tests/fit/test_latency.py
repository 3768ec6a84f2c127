"""LatencyModel: recovery of known coefficients, the latency identity, persistence, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from energycore import LatencyModel, TpotModel, TtftModel, _core
from energycore._util.columns import FEATURES
from tests.helpers import TRUE
from tests.helpers import template_data as _data


def test_fit_recovers_known_coefficients_from_noise_free_data() -> None:
    X, y = _data(1.0, seed=3)
    lm = LatencyModel(n_threads=1).fit(X, y["ttft_v1"], y["tpot_v1"])
    np.testing.assert_allclose(lm.coef_[:6], TRUE["ttft_v1"], rtol=1e-4)
    np.testing.assert_allclose(lm.coef_[6:12], TRUE["tpot_v1"], rtol=1e-4)
    assert abs(lm.coef_[12]) < 1e-6  # tpot_v2's batch power: tpot_v1 data need none
    assert list(lm.params_) == list(LatencyModel.param_names())
    assert set(lm.stderr_) == set(lm.params_)
    assert isinstance(lm.ttft_model_, TtftModel) and isinstance(lm.tpot_model_, TpotModel)


def test_fit_with_noise_is_close_and_column_names_work() -> None:
    X, y = _data(1.0, seed=4)
    rng = np.random.default_rng(1)
    frame = dict(X)
    frame["ttft_s"] = y["ttft_v1"] * np.exp(rng.normal(0, 0.03, len(y["ttft_v1"])))
    frame["tpot_s"] = y["tpot_v1"] * np.exp(rng.normal(0, 0.03, len(y["tpot_v1"])))
    lm = LatencyModel(n_threads=1).fit(frame, "ttft_s", "tpot_s")
    T = np.column_stack([X[k] for k in FEATURES])
    true_lat = _core.template_value("ttft_v1", T, TRUE["ttft_v1"], 1) + X[
        "output_len"
    ] * _core.template_value("tpot_v1", T, TRUE["tpot_v1"], 1)
    err = np.abs(lm.predict(X) / true_lat - 1)
    assert err.max() < 0.05
    s = lm.score(frame, "ttft_s", "tpot_s")
    assert s["ttft_s"]["mape"] < 0.05 and s["tpot_s"]["mape"] < 0.05


def test_latency_is_ttft_plus_output_tokens_times_tpot() -> None:
    X, y = _data(1.0, seed=5)
    lm = LatencyModel(n_threads=1).fit(X, y["ttft_v1"], y["tpot_v1"])
    p = lm.predict_all(X)
    np.testing.assert_allclose(
        p["latency_s"], p["ttft_s"] + X["output_len"] * p["tpot_s"], rtol=1e-15
    )
    np.testing.assert_array_equal(lm.predict(X), p["latency_s"])
    np.testing.assert_array_equal(lm.predict_ttft(X), lm.ttft_model_.predict(X))
    np.testing.assert_array_equal(lm.predict_tpot(X), lm.tpot_model_.predict(X))


def test_fixed_coefficients_are_split_between_halves() -> None:
    X, y = _data(1.0, seed=6)
    lm = LatencyModel(n_threads=1, fixed={"a4": 0.1, "c5": 0.1}).fit(X, y["ttft_v1"], y["tpot_v1"])
    assert lm.params_["a4"] == 0.1 and lm.params_["c5"] == 0.1
    assert lm.ttft_model_.fixed == {"a4": 0.1} and lm.tpot_model_.fixed == {"c5": 0.1}
    with pytest.raises(ValueError, match="unknown coefficient 't1'"):
        LatencyModel(fixed={"t1": 0.0}).fit(X, y["ttft_v1"], y["tpot_v1"])


def test_save_load_round_trip(tmp_path: Path) -> None:
    X, y = _data(1.0, seed=7)
    lm = LatencyModel(n_threads=1, seed=3).fit(X, y["ttft_v1"], y["tpot_v1"])
    path = tmp_path / "lat.json"
    lm.save(path)
    again = LatencyModel.load(path)
    np.testing.assert_array_equal(again.coef_, lm.coef_)
    np.testing.assert_array_equal(again.predict(X), lm.predict(X))
    assert again.get_params() == lm.get_params()
    assert repr(again) == repr(lm)
    unfitted = LatencyModel.from_dict(LatencyModel(seed=2).to_dict())
    assert unfitted.seed == 2 and "not fitted" in repr(unfitted)


def test_bad_files(tmp_path: Path) -> None:
    X, y = _data(1.0, seed=7)
    d = LatencyModel(n_threads=1).fit(X, y["ttft_v1"], y["tpot_v1"]).to_dict()
    future = dict(d, format_version=2)
    with pytest.raises(ValueError, match="newer energycore"):
        LatencyModel.from_dict(future)
    with pytest.raises(ValueError, match="not an energycore latency model"):
        LatencyModel.from_dict({"format": "energycore.model"})
    half = {k: v for k, v in d.items() if k != "tpot"}
    ttft_only = LatencyModel.from_dict(half)  # one half is a model too (e.g. ITL data only)
    assert ttft_only.tpot_model_ is None and ttft_only.ttft_model_ is not None
    swapped = dict(d, ttft=d["tpot"])
    with pytest.raises(ValueError, match="template"):
        LatencyModel.from_dict(swapped)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        LatencyModel.load(bad)
    with pytest.raises(ValueError, match="cannot read"):
        LatencyModel.load(tmp_path / "missing.json")
    # the JSON text itself (not the dict) carries the model: strict JSON, same predictions
    text = json.dumps(d, allow_nan=False)
    np.testing.assert_array_equal(
        LatencyModel.from_dict(json.loads(text)).predict(X), LatencyModel.from_dict(d).predict(X)
    )


def test_bad_input_and_unfitted() -> None:
    X, y = _data(1.0, seed=8)
    with pytest.raises(RuntimeError, match="not fitted"):
        LatencyModel().predict(X)
    with pytest.raises(ValueError, match="tpot_s"):
        LatencyModel().fit(X, y["ttft_v1"], -y["tpot_v1"])
    with pytest.raises(ValueError, match="ttft_s: has 3 values"):
        LatencyModel().fit(X, y["ttft_v1"][:3], y["tpot_v1"])
    with pytest.raises(ValueError, match="missing column 'batch'"):
        LatencyModel().fit({k: v for k, v in X.items() if k != "batch"}, y["ttft_v1"], y["tpot_v1"])
    with pytest.raises(ValueError, match="unknown parameter"):
        LatencyModel().set_params(alpha=1)
    assert LatencyModel().set_params(seed=5).seed == 5
    assert (
        "latency_s = ttft_s + output_len * tpot_s"
        in LatencyModel(n_threads=1).fit(X, y["ttft_v1"], y["tpot_v1"])._repr_html_()
    )


def test_version_1_file_keeps_loading() -> None:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "latency_model_v1.json"
    lm = LatencyModel.load(path)
    X, y = _data(1.0, seed=11)
    np.testing.assert_allclose(lm.predict_ttft(X), y["ttft_v1"], rtol=1e-4)
    np.testing.assert_allclose(lm.predict_tpot(X), y["tpot_v1"], rtol=1e-4)
