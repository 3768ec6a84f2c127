"""Model files record provenance (GPU, served model, engine) and the residual spread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from energycore.fit.energy import EnergyModel, TpotModel
from energycore.fit.latency import LatencyModel
from energycore.fit.provenance import (
    RESID_PERCENTILES,
    check_resid_quantiles,
    quantile_at,
    residual_quantiles,
)
from tests.helpers import template_data


@pytest.fixture(scope="module")
def noisy() -> tuple[dict[str, np.ndarray], np.ndarray]:
    X, y = template_data(1.0, 0)
    rng = np.random.default_rng(3)
    return X, y["tpot_v1"] * np.exp(rng.normal(0.0, 0.1, len(y["tpot_v1"])))


def test_fit_records_the_log_residual_quantiles(noisy: Any) -> None:
    X, y = noisy
    m = TpotModel(n_threads=1).fit(X, y)
    r = np.log(y / m.predict(X))
    assert list(m.resid_quantiles_) == list(RESID_PERCENTILES)
    for p in (1.0, 50.0, 90.0, 99.5, 99.9):
        assert m.resid_quantiles_[p] == pytest.approx(np.quantile(r, p / 100), abs=1e-12)
    # zero-weight rows take no part
    w = np.ones(len(y))
    w[::2] = 0
    mw = TpotModel(n_threads=1).fit(X, y, sample_weight=w)
    rw = np.log(y / mw.predict(X))[w > 0]
    assert mw.resid_quantiles_[90.0] == pytest.approx(np.quantile(rw, 0.9), abs=1e-12)


def test_residual_quantile_helpers() -> None:
    assert residual_quantiles([1.0], [2.0]) is None  # fewer than two rows
    q = residual_quantiles([1.0, 1.0, 1.0], [np.e**-1, 1.0, np.e])
    assert q is not None and q[50.0] == pytest.approx(0.0) and q[99.9] <= 1.0
    assert quantile_at({50.0: 0.0, 90.0: 0.4}, 70.0) == pytest.approx(0.2)
    assert quantile_at({50.0: 0.0, 90.0: 0.4}, 99.0) == pytest.approx(0.4)  # clamped
    with pytest.raises(ValueError, match="resid_quantiles must not decrease"):
        check_resid_quantiles({"50": 0.2, "90": 0.1})
    with pytest.raises(ValueError, match="outside"):
        check_resid_quantiles({"100": 0.2})
    with pytest.raises(ValueError, match="not a percentile"):
        check_resid_quantiles({"p90": 0.2})
    with pytest.raises(ValueError, match=r"resid_quantiles\['90'\] must be a finite number"):
        check_resid_quantiles({"90": None})


def test_provenance_and_quantiles_survive_save_and_load(noisy: Any, tmp_path: Path) -> None:
    X, y = noisy
    m = TpotModel(n_threads=1).fit(X, y).set_provenance("H100", "llama-3.1-70b", "vllm")
    m.save(tmp_path / "m.json")
    d = json.loads((tmp_path / "m.json").read_text())
    assert d["provenance"] == {"gpu": "H100", "served_model": "llama-3.1-70b", "engine": "vllm"}
    assert d["fit"]["resid_quantiles"]["90"] == m.resid_quantiles_[90.0]
    back = TpotModel.load(tmp_path / "m.json")
    assert back.provenance == m.provenance
    assert back.resid_quantiles_ == m.resid_quantiles_
    assert repr(back).endswith("fitted on (gpu, served model, engine): H100, llama-3.1-70b, vllm")
    # partly known; LatencyModel files carry it in their halves
    m.set_provenance(gpu="H200")
    assert "H200, ?, ?" in repr(m)
    lm = LatencyModel(n_threads=1).fit(X, y * 10, y)
    lm.tpot_model_.set_provenance(engine="sglang")
    lm.save(tmp_path / "lm.json")
    assert LatencyModel.load(tmp_path / "lm.json").tpot_model_.provenance["engine"] == "sglang"


def test_old_files_load_with_unknown_provenance(noisy: Any) -> None:
    X, y = noisy
    d = TpotModel(n_threads=1).fit(X, y).to_dict()
    assert "provenance" not in d  # nothing recorded, nothing written
    del d["fit"]["resid_quantiles"]
    old = TpotModel.from_dict(d)
    assert old.provenance == {"gpu": None, "served_model": None, "engine": None}
    assert old.resid_quantiles_ is None
    assert "fitted on" not in repr(old)
    v1 = {**d, "format_version": 1}
    assert TpotModel.from_dict(v1).resid_quantiles_ is None
    assert EnergyModel().provenance["gpu"] is None


@pytest.mark.parametrize(
    ("provenance", "message"),
    [
        ({"gpu": "H100", "node": "x"}, "unknown provenance field 'node'"),
        ({"gpu": 80}, "provenance 'gpu' must be a non-empty string or null"),
        ({"engine": " "}, "provenance 'engine' must be a non-empty string or null"),
        ("H100", "'provenance' must be a mapping"),
    ],
)
def test_bad_provenance_is_refused(noisy: Any, provenance: Any, message: str) -> None:
    X, y = noisy
    d = TpotModel(n_threads=1).fit(X, y).to_dict()
    with pytest.raises(ValueError, match=message):
        TpotModel.from_dict({**d, "provenance": provenance})
    with pytest.raises(ValueError, match="provenance 'served_model' must be"):
        TpotModel().set_provenance(served_model="")
