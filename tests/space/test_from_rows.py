"""ConfigSpace.from_rows: a space over an explicit list of configurations."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from energycore import ConfigSpace, EnergyModel, LatencyModel
from energycore.simulate import Node
from energycore.space.selector import Selector
from energycore.space.slo import SLO

WORK = {"input_len": 512.0, "output_len": 256.0}
AXES = {
    "gpu": ["H100", "A100"],
    "tp": [1, 2, 4, 8],
    "pp": [1, 2],
    "batch": ConfigSpace.powers_of_two(1, 128),
}
CONSTRAINTS = ["tp * pp <= 8", "batch * pp <= 128"]


def _fit(gpu: str, seed: int) -> list[Any]:
    node = Node(gpu, "llama-3.1-8b", n_gpus=8, noise=0.03, seed=seed)
    rng = np.random.default_rng(seed)
    X = {
        "tp": rng.choice([1.0, 2, 4, 8], 120),
        "pp": rng.choice([1.0, 2], 120),
        "batch": rng.choice([1.0, 4, 16, 64], 120),
        "input_len": rng.choice([128.0, 512, 2048], 120),
        "output_len": rng.choice([64.0, 256], 120),
    }
    r = node.run(X)
    ok = np.flatnonzero(r["valid"])[:40]
    d = {k: v[ok] for k, v in X.items()}
    d.update({k: r[k][ok] for k in ("energy_j", "ttft_s", "tpot_s")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [EnergyModel().fit(d, "energy_j"), LatencyModel().fit(d, "ttft_s", "tpot_s")]


@pytest.fixture(scope="module")
def models() -> dict[str, list[Any]]:
    return {"H100": _fit("H100", 1), "A100": _fit("A100", 2)}


def _subset(seed: int) -> tuple[ConfigSpace, pd.DataFrame, np.ndarray]:
    """The Cartesian space, random rows of its product (valid or not, in index order)."""
    cart = ConfigSpace(AXES, constraints=CONSTRAINTS)
    every = ConfigSpace(AXES).to_frame(None)
    rng = np.random.default_rng(seed)
    k = int(rng.integers(5, len(every)))
    pick = np.sort(rng.choice(len(every), size=k, replace=False))
    if seed % 2:  # a shuffled order too: ties then follow the row order
        pick = rng.permutation(pick)
    rows = every.iloc[pick][list(AXES)].reset_index(drop=True)
    return cart, rows, every.index.to_numpy()[pick]


def _pareto(e: np.ndarray, lat: np.ndarray) -> set[int]:
    keep = set()
    for i in range(len(e)):
        dom = (e <= e[i]) & (lat <= lat[i]) & ((e < e[i]) | (lat < lat[i]))
        if not dom.any():
            keep.add(i)
    return keep


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("confidence", [None, 0.9])
def test_same_answers_as_the_filtered_cartesian_space(
    models: Any, seed: int, confidence: float | None
) -> None:
    cart, rows, cart_idx = _subset(seed)
    space = ConfigSpace.from_rows(rows, constraints=CONSTRAINTS)
    assert space.size == len(rows) and space.explicit
    full = cart.to_frame(None, models=models, confidence=confidence, **WORK)
    valid = np.isin(cart_idx, full.index)
    assert space.count_valid() == int(valid.sum())
    got = space.to_frame(None, models=models, confidence=confidence, **WORK)
    np.testing.assert_array_equal(got.index, np.flatnonzero(valid))
    want = full.loc[cart_idx[valid]]
    for col in want.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    if not valid.any():
        return
    # argmin under a latency limit (maybe infeasible): the earliest row of least energy
    lat = "latency_s" if confidence is None else "latency_upper_s"
    lim = float(np.quantile(got[lat], 0.3))
    r = space.argmin(
        "energy_per_request_j", {"latency_s": ("<=", lim)}, models=models,
        confidence=confidence, **WORK,
    )  # fmt: skip
    ok = got[got[lat] <= lim]
    assert r.feasible == (len(ok) > 0)
    if r.feasible:
        e = ok["energy_per_request_j"].to_numpy()
        assert r.index == int(ok.index[np.flatnonzero(e == e.min())[0]])
        assert r.n_feasible == len(ok) and r.n_valid == len(got)
    # top_k and a mean SLO
    top = space.top_k("energy_j", 5, models=models, slo=SLO(tpot_s=0.02), confidence=confidence,
                      **WORK)  # fmt: skip
    tcol = "tpot_s" if confidence is None else "tpot_upper_s"
    cand = got[got[tcol] <= 0.02]
    order = np.lexsort((cand.index.to_numpy(), cand["energy_j"].to_numpy()))[:5]
    np.testing.assert_array_equal(top.index, cand.index.to_numpy()[order])
    # Pareto front
    front = space.pareto_front(["energy_j", "latency_s"], models=models, **WORK)
    want_front = _pareto(got["energy_j"].to_numpy(), got["latency_s"].to_numpy())
    assert set(front.index) == {int(got.index[i]) for i in want_front}


def test_selector_over_rows(models: Any) -> None:
    _, rows, _ = _subset(3)
    space = ConfigSpace.from_rows(rows, constraints=CONSTRAINTS)
    sel = Selector(space, models=models)
    for lin, lout, lim in ((512, 256, 2.0), (128, 64, 0.3), (2048, 512, 9.0)):
        for c in (None, 0.9):
            a = sel.best(lin, lout, latency_limit_s=lim, confidence=c)
            b = space.argmin(
                "energy_per_request_j", {"latency_s": ("<=", lim)}, models=models,
                confidence=c, input_len=lin, output_len=lout,
            )  # fmt: skip
            assert (a.feasible, a.index, a.nearest_index) == (b.feasible, b.index, b.nearest_index)


def test_whole_product_in_order_gives_the_same_indices(models: Any) -> None:
    cart = ConfigSpace(AXES, constraints=CONSTRAINTS)
    every = ConfigSpace(AXES).to_frame(None)[list(AXES)]
    space = ConfigSpace.from_rows(every, constraints=CONSTRAINTS)
    lat = cart.to_frame(None, models=models, **WORK)["latency_s"]
    for lim in (float(lat.median()), 0.5 * float(lat.min())):
        for kw in ({}, {"confidence": 0.8}):
            lim_ = {"latency_s": ("<=", lim)}
            a = cart.argmin("energy_j", lim_, models=models, **WORK, **kw)
            b = space.argmin("energy_j", lim_, models=models, **WORK, **kw)
            assert (a.index, a.nearest_index, a.n_valid, a.n_feasible) == (
                b.index, b.nearest_index, b.n_valid, b.n_feasible,
            )  # fmt: skip
            assert a.feasible == b.feasible and (not a.feasible or a.value == b.value)


def test_inputs_of_every_form() -> None:
    cols = {"tp": [1, 2, 4], "batch": [8.0, 16.0, 8.0], "gpu": ["H100", "A100", "A100"]}
    ref = ConfigSpace.from_rows(cols).to_frame()
    as_frame = ConfigSpace.from_rows(pd.DataFrame(cols)).to_frame()
    pd.testing.assert_frame_equal(ref, as_frame)
    st = np.array(list(zip(*cols.values())), dtype=[("tp", "i8"), ("batch", "f8"), ("gpu", "U8")])
    pd.testing.assert_frame_equal(ref, ConfigSpace.from_rows(st).to_frame())
    arr = np.array([[1, 8.0], [2, 16.0], [4, 8.0]])
    got = ConfigSpace.from_rows((arr, ["tp", "batch"])).to_frame()
    np.testing.assert_array_equal(got["batch"], [8.0, 16.0, 8.0])
    assert ref["gpu"].tolist() == ["H100", "A100", "A100"]
    sp = ConfigSpace.from_rows(cols, constraints=["tp <= 2"])
    assert sp.count_valid() == 2 and "3 rows" in repr(sp)
    again = ConfigSpace.from_json(sp.to_json())
    assert again == sp and again.explicit and again.count_valid() == 2


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ({"tp": [1, 2], "batch": [1.0, math.nan]}, r"column 'batch' row 1: nan"),
        ({"tp": [1, 2], "batch": [1.0, math.inf]}, r"column 'batch' row 1: inf"),
        ({"tp": [], "batch": []}, "no rows"),
        ({}, "no columns"),
        ({"tp": [1, 2, 1], "batch": [4, 4, 4]}, r"row 2 repeats row 0"),
        ({"tp": [1, 2], "batch": [4]}, r"column 'batch' has 1 values"),
        ({"tp": [1, "2"]}, r"column 'tp' row 1: '2'"),
        ({"gpu": ["H100", None]}, r"column 'gpu' row 1: None"),
        ({"energy_j": [1.0, 2.0]}, r"'energy_j' is reserved"),
        ({"tpot_upper_s": [1.0, 2.0]}, r"'tpot_upper_s' is reserved"),
        ({"my col": [1, 2]}, "not a valid column name"),
        ({"t": np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")}, "unsupported"),
        ({"c": np.array([1 + 1j, 2])}, "unsupported"),
        (np.zeros((3, 2)), "no column names"),
        ((np.zeros((3, 2)), ["a"]), r"shape \(n, 1\)"),
        ([1, 2, 3], "expected a DataFrame"),
    ],
)
def test_bad_rows(rows: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ConfigSpace.from_rows(rows)


def test_missing_model_column_is_named(models: Any) -> None:
    space = ConfigSpace.from_rows({"tp": [1, 2], "pp": [1, 1]})
    with pytest.raises(ValueError, match="batch: the models need it"):
        space.argmin("energy_j", models=models["H100"], **WORK)
    # given as a fixed value it works
    r = space.argmin("energy_j", models=models["H100"], batch=8, **WORK)
    assert r.feasible
    bad = ConfigSpace.from_rows({"tp": [1, 2], "batch": [0, 8]})
    with pytest.raises(ValueError, match="batch: the models need positive values, got 0"):
        bad.argmin("energy_j", models=models["H100"], **WORK)


def test_rows_with_scorers_and_rate(models: Any) -> None:
    _, rows, _ = _subset(4)
    space = ConfigSpace.from_rows(rows, constraints=CONSTRAINTS)
    got = space.to_frame(None, models=models, **WORK)
    sc = {"per_gpu_w": lambda c: c["power_w"] / c["n_gpus"]}
    r = space.argmin("per_gpu_w", models=models, scorers=sc, **WORK)
    vals = (got["power_w"] / got["n_gpus"]).to_numpy()
    assert r.index == int(got.index[np.argmin(vals)])
    rate = float(np.median(got["batch"] / got["latency_s"]))
    n = space.count_valid(models=models, slo=SLO(request_rate=rate), **WORK)
    assert n == int((got["batch"] >= rate * got["latency_s"]).sum())
