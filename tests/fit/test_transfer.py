"""fit.transfer: spec-ratio scaling of a fitted EnergyModel, and a fit with it as prior."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from energycore.fit.energy import EnergyModel
from energycore.fit.transfer import (
    GPU_SPECS,
    GpuSpec,
    fit_with_prior,
    scale_factors,
    transfer_model,
)

TRUE = np.array([2e-3, 1e-8, 0.1, 0.1, 1e-4, 3.0, 2e-2, 1e-6, 0.05, 0.1, 1e-3, 5.0])


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "tp": rng.choice([1.0, 2.0, 4.0, 8.0], n),
        "pp": rng.choice([1.0, 2.0], n),
        "batch": rng.choice([1.0, 4.0, 16.0, 64.0, 256.0], n),
        "input_len": rng.choice([128.0, 512.0, 2048.0], n),
        "output_len": rng.choice([64.0, 256.0, 1024.0], n),
    }


def _truth(X: dict, coef: np.ndarray) -> np.ndarray:
    from energycore import _core
    from energycore._util.columns import as_feature_table

    return _core.template_value("energy_v2", as_feature_table(X), coef, 1)


@pytest.fixture(scope="module")
def h100() -> EnergyModel:
    X = _rows(80, 0)
    return EnergyModel(n_threads=1).fit(X, _truth(X, TRUE))


def test_factors_follow_the_spec_ratios() -> None:
    f = scale_factors("H100", "B200")
    a, b = GPU_SPECS["H100"], GPU_SPECS["B200"]
    assert f["t7"] == pytest.approx((b.tdp_w / b.tflops) / (a.tdp_w / a.tflops))
    assert f["t8"] == pytest.approx((b.tdp_w / b.hbm_tbps) / (a.tdp_w / a.hbm_tbps))
    assert f["t11"] == pytest.approx((b.tdp_w / b.link_gbps) / (a.tdp_w / a.link_gbps))
    assert f["t12"] == pytest.approx(b.idle_w / a.idle_w)
    assert f["t3"] == f["t4"] == f["t9"] == f["t10"] == 1.0
    assert scale_factors("H100", "H100") == {k: 1.0 for k in f}


def test_transfer_scales_coefficients_and_keeps_the_source(h100: EnergyModel) -> None:
    before = h100.coef_.copy()
    b = transfer_model(h100, "B200", from_gpu="H100")
    f = scale_factors("H100", "B200")
    assert np.allclose(b.coef_, before * np.array([f[f"t{i}"] for i in range(1, 13)]))
    assert np.array_equal(h100.coef_, before)
    assert b.transfer_["to_gpu"] == "B200"
    # a custom spec equal to the table entry gives the same model
    spec = GPU_SPECS["B200"]
    c = transfer_model(h100, "my-gpu", from_gpu="H100", spec=spec.__dict__)
    assert np.allclose(c.coef_, b.coef_)


def test_transferred_model_saves_and_loads(tmp_path, h100: EnergyModel) -> None:
    b = transfer_model(h100, "MI300X", from_gpu="H100")
    b.save(tmp_path / "m.json")
    back = EnergyModel.load(tmp_path / "m.json")
    X = _rows(10, 3)
    assert np.allclose(back.predict(X), b.predict(X))


def test_prior_with_zero_target_rows_predicts_the_scaled_model(h100: EnergyModel) -> None:
    prior = transfer_model(h100, "B200", from_gpu="H100")
    empty = {k: np.empty(0) for k in ("tp", "pp", "batch", "input_len", "output_len")}
    m = fit_with_prior(EnergyModel(n_threads=1), empty, np.empty(0), prior)
    X = _rows(20, 5)
    assert np.allclose(m.predict(X), prior.predict(X))


def test_prior_regularises_a_fit_from_few_rows(h100: EnergyModel) -> None:
    target = TRUE * np.where(np.arange(12) % 2 == 0, 0.6, 1.0)  # a "B200" with other ratios
    target[[2, 3, 8, 9]] = TRUE[[2, 3, 8, 9]]  # exponents/overheads unchanged
    prior = transfer_model(h100, "B200", from_gpu="H100")
    Xk = _rows(5, 11)
    yk = _truth(Xk, target)
    with pytest.raises(ValueError, match="cannot determine"):
        EnergyModel(n_threads=1, reduce=False).fit(Xk, yk)  # 5 rows cannot fit 12 coefficients
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reduced fit warns about what it could not identify
        alone = EnergyModel(n_threads=1).fit(Xk, yk)  # the adaptive fit: a reduced model
    m = fit_with_prior(EnergyModel(n_threads=1), Xk, yk, prior)
    Xt = _rows(200, 12)
    yt = _truth(Xt, target)
    err = lambda mdl: float(np.median(np.abs(np.log(mdl.predict(Xt) / yt))))  # noqa: E731
    assert err(m) < err(prior)
    assert err(m) < err(alone)
    assert m.prior_["n_target"] == 5 and m.prior_["n_pseudo"] > 5


def test_bad_inputs(h100: EnergyModel) -> None:
    with pytest.raises(ValueError, match="unknown GPU 'Z9'"):
        transfer_model(h100, "Z9", from_gpu="H100")
    with pytest.raises(ValueError, match="from_gpu: unknown GPU"):
        transfer_model(h100, "B200", from_gpu="nope")
    with pytest.raises(ValueError, match="lacks"):
        transfer_model(h100, "x", from_gpu="H100", spec={"tflops": 1.0})
    with pytest.raises(ValueError, match="tdp_w"):
        GpuSpec(1.0, 1.0, 1.0, -5.0, 1.0)
    with pytest.raises(ValueError, match="not fitted"):
        transfer_model(EnergyModel(), "B200", from_gpu="H100")
    X = _rows(5, 1)
    with pytest.raises(ValueError, match="prior: the model is not fitted"):
        fit_with_prior(EnergyModel(), X, _truth(X, TRUE), EnergyModel())
    with pytest.raises(ValueError, match="strength"):
        fit_with_prior(EnergyModel(), X, _truth(X, TRUE), h100, strength=0)
