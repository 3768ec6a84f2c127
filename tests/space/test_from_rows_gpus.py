"""ConfigSpace.from_rows with an ``n_gpus`` column: GPUs that are not ``tp * pp`` (issue 11)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from energycore import ConfigSpace, EnergyModel, TpotModel
from energycore.space.selector import Selector

WORK = {"input_len": 512.0, "output_len": 256.0}


def _rows() -> pd.DataFrame:
    """Expert-parallel candidates: tp = 1 or 2 on 2, 4 or 8 GPUs, three batches."""
    out = [
        {"tp": tp, "pp": pp, "n_gpus": g, "batch": b}
        for tp in (1, 2)
        for pp in (1, 2)
        for g in (2, 4, 8)
        for b in (16, 64, 256)
        if g >= tp * pp and g % pp == 0
    ]
    return pd.DataFrame(out)


def _models() -> list[Any]:
    rng = np.random.default_rng(3)
    n = 60
    X = {
        "tp": rng.choice([1.0, 2.0], n),
        "pp": np.ones(n),
        "n_gpus": rng.choice([2.0, 4.0, 8.0], n),
        "batch": rng.choice([8.0, 32.0, 128.0, 512.0], n),
        "input_len": np.full(n, 512.0),
        "output_len": np.full(n, 256.0),
    }
    # energy grows with the GPUs that draw power, not with tp
    y = (40.0 * X["n_gpus"] + 0.5 * X["batch"] * 256) * rng.lognormal(0, 0.02, n)
    tpot = (0.01 + 2e-5 * X["batch"] / X["n_gpus"] ** 0.5) * rng.lognormal(0, 0.02, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [EnergyModel().fit(X, y), TpotModel().fit(X, tpot)]


@pytest.fixture(scope="module")
def models() -> list[Any]:
    return _models()


def test_models_see_the_rows_gpus(models: list[Any]) -> None:
    rows = _rows()
    space = ConfigSpace.from_rows(rows)
    frame = space.to_frame(None, models=models, **WORK)
    assert list(frame["n_gpus"]) == list(rows["n_gpus"])
    assert list(frame["gpus_per_stage"]) == list(rows["n_gpus"] // rows["pp"])
    feats = {**{c: rows[c].to_numpy(float) for c in rows}, **WORK}
    feats = {k: np.broadcast_to(v, len(rows)).astype(float) for k, v in feats.items()}
    np.testing.assert_allclose(frame["energy_j"], models[0].predict(feats), rtol=1e-12)
    np.testing.assert_allclose(frame["tpot_s"], models[1].predict(feats), rtol=1e-12)
    # without the column the models read tp * pp GPUs: a different answer where they differ
    plain = {k: v for k, v in feats.items() if k != "n_gpus"}
    more = (rows["n_gpus"] > rows["tp"] * rows["pp"]).to_numpy()
    assert more.any() and not more.all()
    wrong = models[0].predict(plain)
    assert np.all(wrong[more] < frame["energy_j"].to_numpy()[more] - 1.0)  # fewer GPUs read
    np.testing.assert_allclose(wrong[~more], frame["energy_j"].to_numpy()[~more], rtol=1e-12)


def test_selector_and_argmin_agree_with_brute_force(models: list[Any]) -> None:
    space = ConfigSpace.from_rows(_rows())
    frame = space.to_frame(None, models=models, **WORK)
    limit = float(np.quantile(frame["tpot_s"], 0.4))
    ok = frame[frame["tpot_s"] <= limit]
    best = ok.loc[ok["energy_per_request_j"].idxmin()]
    got = space.argmin("energy_per_request_j", {"tpot_s": ("<=", limit)}, models=models, **WORK)
    assert got.feasible and got.index == int(best.name)
    assert got.config is not None and got.config["n_gpus"] == best["n_gpus"]
    sel = Selector(space, models=models)
    pick = sel.best(WORK["input_len"], WORK["output_len"], tpot_limit_s=limit, confidence=None)
    assert (pick.feasible, pick.index) == (True, got.index)


def test_saved_space_keeps_the_gpus(models: list[Any]) -> None:
    space = ConfigSpace.from_rows(_rows())
    back = ConfigSpace.from_dict(space.to_dict())
    pd.testing.assert_frame_equal(
        back.to_frame(None, models=models, **WORK), space.to_frame(None, models=models, **WORK)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tp": 2, "n_gpus": 1}, "'n_gpus' must be at least tp \\* pp, got 1 at row 0"),
        ({"n_gpus": 2.5}, "rows: 'n_gpus' must be a positive integer, got 2.5 at row 0"),
        ({"pp": 2, "n_gpus": 5}, "'n_gpus' must be a multiple of 'pp', got 5 at row 0"),
        ({"n_gpus": -4}, "column 'n_gpus' row 0: -4 is not a positive number"),
        ({"gpus_per_stage": 3}, "'gpus_per_stage' is n_gpus / pp, got 3 at row 0"),
    ],
)
def test_bad_gpus_name_the_row(change: dict[str, Any], message: str) -> None:
    rows = _rows().astype(float)
    if "gpus_per_stage" in change:  # as a saved space holds it
        rows["gpus_per_stage"] = rows["n_gpus"] / rows["pp"]
    for k, v in change.items():
        rows.loc[0, k] = v
    with pytest.raises(ValueError, match=message):
        ConfigSpace.from_rows(rows)


def test_n_gpus_stays_reserved_elsewhere() -> None:
    with pytest.raises(ValueError, match="'n_gpus' is reserved"):
        ConfigSpace({"n_gpus": [1, 2]})
