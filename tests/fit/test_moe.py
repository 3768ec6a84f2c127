"""MoeTpotModel: expert coverage in the decode step (template tpot_moe_v1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from energycore import ConfigSpace, LatencyModel, MoeTpotModel, TpotModel, TtftModel, _core
from tests.helpers import SPACE, fitted, table, template_data

#: Mixtral-like: 2 of 8 experts per token, expert weights dominate the step.
THETA = np.array([2e-3, 1e-5, 1e-9, -0.7, 0.1, 1e-6, 1.2e-2, 0.25])


def _data(seed: int = 0, n: int = 120, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    X = {
        "tp": rng.choice([1.0, 2, 4, 8], n),
        "pp": rng.choice([1.0, 2], n),
        "batch": rng.choice([1.0, 2, 4, 8, 16, 32, 64, 128], n),
        "input_len": rng.choice([128.0, 512, 2048], n),
        "output_len": rng.choice([64.0, 256], n),
    }
    y = _core.template_value("tpot_moe_v1", table(X), THETA) * np.exp(rng.normal(0, noise, n))
    return X, y


def test_noise_free_data_recover_the_coefficients() -> None:
    X, y = _data()
    m = MoeTpotModel(seed=0).fit(X, y)
    assert m.param_names() == ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8")
    np.testing.assert_allclose(m.predict(X), y, rtol=1e-6)
    for name, want in (("c1", 2e-3), ("c4", -0.7), ("c7", 1.2e-2), ("c8", 0.25)):
        assert m.params_[name] == pytest.approx(want, rel=1e-3), name


def test_the_dense_template_cannot_follow_expert_coverage() -> None:
    X, y = _data(noise=0.02)
    Xt, yt = _data(seed=1)
    moe = MoeTpotModel(seed=0).fit(X, y)
    dense = TpotModel(seed=0).fit(X, y)
    err = {
        k: np.median(np.abs(m.predict(Xt) / yt - 1)) for k, m in (("moe", moe), ("dense", dense))
    }
    assert err["moe"] < 0.02 < err["dense"], err


def test_pinned_routing_fraction_is_kept() -> None:
    X, y = _data(noise=0.02)
    m = MoeTpotModel(seed=0, fixed={"c8": 0.25}).fit(X, y)
    assert m.params_["c8"] == 0.25 and m.fixed_mask_[7]
    with pytest.raises(ValueError, match="outside its bounds"):
        MoeTpotModel(fixed={"c8": 1.5}).fit(X, y)


def test_phases_split_dense_experts_and_allreduce() -> None:
    X, y = _data()
    m = MoeTpotModel(seed=0).fit(X, y)
    ph = m.predict_phases(X)
    assert list(ph) == ["compute", "experts", "allreduce"]
    np.testing.assert_allclose(sum(ph.values()), m.predict(X), rtol=1e-12)
    # experts read grows with the batch and saturates: share of the batch-1 step rises with b
    one = {k: np.array([1.0]) for k in ("tp", "pp", "input_len", "output_len")}
    e = [m.predict_phases({**one, "batch": np.array([b])})["experts"][0] for b in (1, 8, 128)]
    assert e[0] < e[1] < e[2] <= m.params_["c7"] * 1.0000001


def test_constant_batch_drops_the_expert_term() -> None:
    X, _ = _data()
    X = {k: v[X["batch"] == 16] for k, v in X.items()}
    y = _core.template_value("tpot_moe_v1", table(X), THETA)
    m = MoeTpotModel(seed=0).fit(X, y)  # coverage is a constant: collinear with c1
    assert {"c2", "c7", "c8"} <= set(m.reduced_)  # each with its reason
    np.testing.assert_allclose(m.predict(X), y, rtol=1e-6)


def test_save_load_and_the_generic_loaders(tmp_path: Path) -> None:
    X, y = _data(noise=0.01)
    m = MoeTpotModel(seed=0).fit(X, y)
    p = tmp_path / "model.tpot.json"
    m.save(p)
    for loader in (MoeTpotModel.load, TpotModel.load):  # a TpotModel file of the MoE form
        back = loader(p)
        assert type(back) is MoeTpotModel
        np.testing.assert_array_equal(back.predict(X), m.predict(X))
    dense = tmp_path / "dense.json"
    TpotModel(seed=0).fit(X, y).save(dense)
    with pytest.raises(ValueError, match="holds template 'tpot_v2'"):
        MoeTpotModel.load(dense)


def test_latency_model_from_halves_and_space_selection(tmp_path: Path) -> None:
    X, y = _data(noise=0.01)
    Xa, ya = template_data(1.0, 0)
    ttft = TtftModel(seed=0).fit(Xa, ya["ttft_v1"])
    tpot = MoeTpotModel(seed=0).fit(X, y)
    lat = LatencyModel.from_models(ttft, tpot)
    assert list(lat.params_)[-2:] == ["c7", "c8"]
    np.testing.assert_array_equal(lat.predict_tpot(X), tpot.predict(X))
    lat.save(tmp_path / "lat.json")
    back = LatencyModel.load(tmp_path / "lat.json")
    assert type(back.tpot_model_) is MoeTpotModel
    with pytest.raises(ValueError, match="not fitted"):
        LatencyModel.from_models(tpot=MoeTpotModel())
    with pytest.raises(ValueError, match="expected a TpotModel"):
        LatencyModel.from_models(tpot=ttft)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        LatencyModel.from_models()
    # a space scores the MoE form like any other: its TPOT column equals predict()
    em = fitted()[0]
    space = ConfigSpace(SPACE, constraints=["tp * pp <= 8"])
    cols = space.to_frame(None, models=[em, lat], as_frame=False, input_len=512, output_len=128)
    n = len(cols["tp"])
    Xs = {f: np.asarray(cols[f], dtype=float) for f in ("tp", "pp", "batch")}
    Xs.update(input_len=np.full(n, 512.0), output_len=np.full(n, 128.0))
    np.testing.assert_allclose(cols["tpot_s"], tpot.predict(Xs), rtol=1e-12)
    np.testing.assert_allclose(cols["latency_s"], lat.predict(Xs), rtol=1e-12)
