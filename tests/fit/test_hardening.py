"""Adversarial cases of issue 18 on the models: bad inputs and tampered model files refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energycore import EnergyModel, GradientBoosting, LatencyModel

FIXTURE = Path(__file__).parent.parent / "fixtures" / "energy_model_v1.json"
DOC = json.loads(FIXTURE.read_text())
MODEL = EnergyModel.from_dict(DOC)
ROW = {"tp": [1], "pp": [1], "batch": [8], "input_len": [512.0], "output_len": [128.0]}


def test_predict_refuses_lengths_past_the_physical_bounds() -> None:
    for col, v in (("input_len", 1e300), ("output_len", 2.0**40), ("batch", 2**30), ("tp", 2**20)):
        with pytest.raises(ValueError, match=f"'{col}' .*physical bound"):
            MODEL.predict({**ROW, col: [v]})
    out = MODEL.predict({**ROW, "input_len": [2.0**31], "batch": [2**24]})
    assert np.isfinite(out).all()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.array([1 + 5j]), "complex"),
        (np.array([1 + 0j], dtype=object), "complex"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "datetime64"),
        (np.array([5], dtype="timedelta64[s]"), "timedelta64"),
    ],
)
def test_complex_and_datetime_inputs_are_refused(value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MODEL.predict({**ROW, "tp": value})


def test_seed_past_uint64_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"seed: must be an integer in \[0, 2\*\*64\)"):
        EnergyModel(seed=2**64).fit(ROW, [1.0])
    with pytest.raises(ValueError, match="seed"):
        MODEL.bootstrap({k: v * 20 for k, v in ROW.items()}, [1.0] * 20, n=2, seed=2**64)
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="random_state"):
        GradientBoosting(random_state=2**64).fit(X, X[:, 0])


@pytest.mark.parametrize("depth", [-3, 0])
def test_gbdt_max_depth_below_one_is_refused(depth: int) -> None:
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="max_depth: must be at least 1"):
        GradientBoosting(max_depth=depth).fit(X, X[:, 0])


def _tamper(path: list[Any], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(DOC)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (["fit", "params", "t1"], "0.0002", "coefficient 't1' must be a number"),
        (["fit", "params", "t1"], -0.5, "coefficient 't1' is -0.5, below its lower bound"),
        (["fit", "params", "t3"], 5.0, "above its upper bound"),
        (["fit", "params", "t2"], True, "must be a number"),
        (["fit", "stderr", "t1"], -1.0, "non-negative"),
        (["fit", "stderr", "t1"], "x", "must be a number or null"),
        (["fit", "covariance"], [[1.0, 2.0]], "covariance"),
        (["fit", "covariance", 0], "abc", "covariance row 0"),
        (["fit", "covariance", 0, 0], "1e-9", "covariance\\[0\\]\\[0\\]"),
        (["fit", "covariance", 1, 1], -1.0, "non-negative"),
        (["fit", "fixed_mask"], [0] * 12, "fixed_mask"),
        (["fit", "unidentified"], ["t99"], "unidentified"),
        (["fit", "residual_scale"], -0.1, "residual_scale"),
        (["fit", "result", "iterations"], -4, "result.iterations"),
        (["fit", "result", "success"], "yes", "result.success"),
        (["fit", "result", "at_bound"], {"t1": "sideways"}, "at_bound"),
        (["fit"], [1, 2], "'fit' must be a mapping"),
    ],
)
def test_tampered_model_files_are_refused(path: list[Any], value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EnergyModel.from_dict(_tamper(path, value))


def test_a_tampered_latency_half_is_refused() -> None:
    lat = json.loads((FIXTURE.parent / "latency_model_v1.json").read_text())
    assert LatencyModel.from_dict(lat) is not None
    lat["ttft"]["fit"]["params"]["a1"] = -1.0
    with pytest.raises(ValueError, match="coefficient 'a1'"):
        LatencyModel.from_dict(lat)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"\xff\xfe\x00garbage\x80", "not a text file"), (b"[" * 100_000, "nested too deeply")],
)
def test_binary_and_deeply_nested_files(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "m.json"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        EnergyModel.load(p)


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.floats(), max_size=3),
)
_PATHS = [
    ["fit", "params", "t1"],
    ["fit", "params", "t9"],
    ["fit", "stderr", "t4"],
    ["fit", "covariance", 3],
    ["fit", "covariance", 2, 5],
    ["fit", "fixed_mask"],
    ["fit", "fixed_mask", 0],
    ["fit", "residual_scale"],
    ["fit", "result", "cost"],
    ["fit", "result", "status"],
    ["hyper", "n_starts"],
    ["hyper", "seed"],
    ["hyper", "f_scale"],
    ["template"],
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(_PATHS), value=_LEAVES)
def test_fuzz_model_file_tampering(path: list[Any], value: Any) -> None:
    """Any tampered field: a ValueError, or a model whose predictions are finite and positive."""
    d = _tamper(path, value)
    try:
        m = EnergyModel.from_dict(json.loads(json.dumps(d)))
    except ValueError:
        return
    pred = m.predict(ROW)
    assert np.isfinite(pred).all() and (pred > 0).all()


def test_model_file_with_an_overflowing_coefficient_is_refused() -> None:
    """Found by the tampering fuzz (t1 = 4.39e304): accepted at load, predict overflowed."""
    d = _tamper(["fit", "params", "t1"], 4.39e304)
    with pytest.raises(ValueError, match=r"coefficient 't1'.*corrupt"):
        EnergyModel.from_dict(json.loads(json.dumps(d)))
