"""Models attached to a ConfigSpace: scores equal the models' own predictions, per-GPU models,
the precomputed model table equals direct scoring, and bad model arguments give clear errors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from energycore import ConfigSpace, EnergyModel, LatencyModel, TtftModel
from energycore._util.columns import FEATURES
from tests.helpers import SPACE, fitted


def _frame_features(cols: dict[str, np.ndarray], **fixed: float) -> dict[str, np.ndarray]:
    n = len(cols["tp"])
    return {
        f: np.asarray(cols[f] if f in cols else np.full(n, fixed[f]), dtype=float) for f in FEATURES
    }


def test_scores_equal_model_predictions() -> None:
    em, lm = fitted()
    space = ConfigSpace(SPACE, constraints=["tp * pp <= 8"])
    cols = space.to_frame(None, models=[em, lm], as_frame=False, input_len=700, output_len=90)
    X = _frame_features(cols, input_len=700, output_len=90)
    e = em.predict(X)
    parts = lm.predict_all(X)
    np.testing.assert_allclose(cols["energy_j"], e, rtol=1e-12)
    np.testing.assert_allclose(cols["energy_per_request_j"], e / X["batch"], rtol=1e-12)
    np.testing.assert_allclose(cols["ttft_s"], parts["ttft_s"], rtol=1e-12)
    np.testing.assert_allclose(cols["tpot_s"], parts["tpot_s"], rtol=1e-12)
    np.testing.assert_allclose(cols["latency_s"], parts["latency_s"], rtol=1e-12)
    np.testing.assert_allclose(cols["power_w"], e / parts["latency_s"], rtol=1e-12)
    assert (cols["n_gpus"] == cols["tp"] * cols["pp"]).all()


def test_per_gpu_models_score_each_gpu_with_its_own() -> None:
    slow, fast = fitted(2.0), fitted(1.0)
    space = ConfigSpace(SPACE)
    models = {"A100": list(slow), "H100": list(fast)}
    cols = space.to_frame(None, models=models, as_frame=False, input_len=256, output_len=64)
    X = _frame_features(cols, input_len=256, output_len=64)
    for gpu, (em, lm) in (("A100", slow), ("H100", fast)):
        m = cols["gpu"] == gpu
        sub = {k: v[m] for k, v in X.items()}
        np.testing.assert_allclose(cols["energy_j"][m], em.predict(sub), rtol=1e-12)
        np.testing.assert_allclose(cols["latency_s"][m], lm.predict(sub), rtol=1e-12)
    best = space.argmin("energy_j", models=models, input_len=256, output_len=64)
    assert best.config is not None and best.config["gpu"] == "H100"


def test_model_table_equals_direct_scoring() -> None:
    # With an extra axis the engine precomputes model values per distinct model input; a
    # space without it scores every point directly. The scores must agree exactly.
    em, lm = fitted()
    base = {k: v for k, v in SPACE.items() if k != "gpu"}
    big = ConfigSpace({**base, "knob": list(range(7))})
    small = ConfigSpace(base)
    a = big.to_frame(None, models=[em, lm], as_frame=False, input_len=512, output_len=128)
    b = small.to_frame(None, models=[em, lm], as_frame=False, input_len=512, output_len=128)
    assert big._query([em, lm], {"input_len": 512, "output_len": 128}).engine.uses_table
    assert not small._query([em, lm], {"input_len": 512, "output_len": 128}).engine.uses_table
    for col in ("energy_j", "latency_s", "power_w"):
        np.testing.assert_array_equal(a[col][::7], b[col])


def test_input_len_as_axis_is_scored_per_point() -> None:
    em, lm = fitted()
    space = ConfigSpace({"tp": [1, 2], "input_len": [128, 1024], "output_len": [16, 256]})
    cols = space.to_frame(None, models=[em, lm], as_frame=False, batch=4)
    X = _frame_features(cols, batch=4, pp=1)
    np.testing.assert_allclose(cols["latency_s"], lm.predict(X), rtol=1e-12)
    assert len(set(itertools.product(cols["input_len"], cols["output_len"]))) == 4


def test_model_errors() -> None:
    em, lm = fitted()
    space = ConfigSpace(SPACE)
    with pytest.raises(ValueError, match="needs a fitted latency model"):
        space.argmin("latency_s", models=em, input_len=1, output_len=1)
    with pytest.raises(ValueError, match="not fitted"):
        space.argmin("energy_j", models=EnergyModel(), input_len=1, output_len=1)
    with pytest.raises(ValueError, match="not fitted"):
        space.argmin("latency_s", models=LatencyModel(), input_len=1, output_len=1)
    with pytest.raises(ValueError, match="no model for gpu='A100'"):
        space.argmin("energy_j", models={"H100": em}, input_len=1, output_len=1)
    with pytest.raises(ValueError, match="'V100' is not a value of axis 'gpu'"):
        space.argmin(
            "energy_j", models={"H100": em, "A100": em, "V100": em}, input_len=1, output_len=1
        )
    with pytest.raises(ValueError, match="needs a fitted latency model"):
        space.argmin("latency_s", models=[em, lm.ttft_model_], input_len=1, output_len=1)
    with pytest.raises(ValueError, match="two energy models"):
        space.argmin("energy_j", models=[em, em], input_len=1, output_len=1)
    with pytest.raises(ValueError, match="expected an EnergyModel"):
        space.argmin("energy_j", models=[object()], input_len=1, output_len=1)
    with pytest.raises(ValueError, match="input_len: the models need it"):
        space.argmin("energy_j", models=em, output_len=1)
    with pytest.raises(ValueError, match="categorical model axis"):
        ConfigSpace({"tp": [1, 2]}).argmin(
            "energy_j", models={"x": em}, input_len=1, output_len=1, batch=1
        )
    assert isinstance(lm.ttft_model_, TtftModel)


def test_scorers_add_columns_and_match_the_engine() -> None:
    em, lm = fitted()
    space = ConfigSpace({**SPACE, "knob": [1, 2, 3]}, constraints=["tp * pp <= 8"])
    kw = {"models": [em, lm], "input_len": 512, "output_len": 128}
    calls: list[int] = []

    def twice_energy(cols: dict[str, np.ndarray]) -> np.ndarray:
        calls.append(len(cols["tp"]))
        return cols["energy_j"] * 1.0 + 0.0 * cols["knob"]

    def quality(cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.where(cols["gpu"] == "H100", 0.9, 0.8) - 0.01 * cols["knob"]

    sc = {"e": twice_energy, "quality": quality}
    f = space.to_frame(None, scorers=sc, as_frame=False, **kw)
    np.testing.assert_array_equal(f["e"], f["energy_j"])
    assert len(calls) == 1 and calls[0] == space.count_valid()
    # The numpy reductions of the scorer path follow the C++ rules exactly.
    for limits in (
        {"latency_s": ("<=", 0.5)},
        {"latency_s": ("<=", 1e-6), "power_w": ("<", 10.0)},
        None,
    ):
        a = space.argmin("e", subject_to=limits, scorers=sc, **kw)
        b = space.argmin("energy_j", subject_to=limits, **kw)
        assert (a.feasible, a.index, a.nearest_index, a.n_valid, a.n_feasible) == (
            b.feasible,
            b.index,
            b.nearest_index,
            b.n_valid,
            b.n_feasible,
        )
        assert a.violation == pytest.approx(b.violation, rel=1e-12)
    a = space.argmin("quality", subject_to={"e": ("<=", 300.0)}, maximize=True, scorers=sc, **kw)
    want = max(
        (j for j in range(len(f["index"])) if f["e"][j] <= 300.0),
        key=lambda j: (f["quality"][j], -f["index"][j]),
    )
    assert a.index == f["index"][want] and a.config is not None and a.config["quality"] == a.value
    top = space.top_k("quality", 4, maximize=True, scorers=sc, as_frame=False, **kw)
    order = sorted(range(len(f["index"])), key=lambda j: (-f["quality"][j], f["index"][j]))[:4]
    assert top["index"].tolist() == [int(f["index"][j]) for j in order]
    assert space.top_k("e", 3, scorers=sc, as_frame=False, **kw)["index"].tolist() == (
        space.top_k("energy_j", 3, as_frame=False, **kw)["index"].tolist()
    )


def test_scorer_errors() -> None:
    space = ConfigSpace(SPACE)
    with pytest.raises(ValueError, match="'tp' is already a column"):
        space.to_frame(scorers={"tp": lambda c: c["tp"]})
    with pytest.raises(ValueError, match="not callable"):
        space.to_frame(scorers={"x": 3})
    with pytest.raises(ValueError, match="returned shape \\(1,\\)"):
        space.to_frame(scorers={"x": lambda c: np.zeros(1)})
    with pytest.raises(ValueError, match="returned inf"):
        space.to_frame(scorers={"x": lambda c: np.full(len(c["tp"]), np.inf)})
    with pytest.raises(ValueError, match="expected a mapping"):
        space.to_frame(scorers=[len])


def test_model_features_must_be_valid_model_inputs() -> None:
    em, _ = fitted()
    with pytest.raises(ValueError, match="tp: the models need positive values, got 0"):
        ConfigSpace({"tp": [0, 1]}).argmin(
            "energy_j", models=em, batch=1, input_len=1, output_len=1
        )
    with pytest.raises(ValueError, match="batch: the models need positive values, got 0"):
        ConfigSpace({"tp": [1]}).argmin("energy_j", models=em, batch=0, input_len=1, output_len=1)
    with pytest.raises(ValueError, match="axis 'batch' must be numeric"):
        ConfigSpace({"batch": ["a"]}).argmin("energy_j", models=em, input_len=1, output_len=1)
    with pytest.raises(ValueError, match="output_len: the models need non-negative values"):
        ConfigSpace({"output_len": [-1.0, 2.0]}).argmin("energy_j", models=em, batch=1, input_len=1)
