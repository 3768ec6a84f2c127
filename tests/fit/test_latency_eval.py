"""The selection-scoring helpers of bench/eval_real.py and bench/diag_latency.py (issue 11).

The benchmarks' figures rest on these: the "measured where measured" latency, the residual
carrying of ``--residuals`` (``NeighbourResiduals``, tested in test_latency_neighbours.py),
and the limit margins and noisy-truth predictor of ``diag_latency.py --ceiling``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def er() -> ModuleType:
    return _bench("eval_real")


@pytest.fixture(scope="module")
def diag() -> ModuleType:
    return _bench("diag_latency")


def _group(n: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = 2.0 ** np.arange(3, 3 + n)
    tpot = (0.01 + 2e-5 * batch) * np.exp(0.02 * rng.standard_normal(n))
    out_len = np.full(n, 500.0)
    # energy per batch: a static power times the batch's duration plus a per-token cost
    energy = (300.0 * tpot * out_len + 0.5 * batch * out_len) * np.exp(
        0.02 * rng.standard_normal(n)
    )
    return {
        "tp": np.ones(n),
        "pp": np.ones(n),
        "n_gpus": np.ones(n),
        "batch": batch,
        "input_len": np.zeros(n),
        "output_len": out_len,
        "tpot_s": tpot,
        "energy_j": energy,
    }


def test_measured_where_measured_uses_the_measurements_of_the_fitting_half(
    er: ModuleType,
) -> None:
    g = _group()
    half = np.array([0, 2, 4, 6, 8])
    measured = np.zeros(10, dtype=bool)
    measured[half] = True
    tr = er.sub(g, half)
    cache: dict[str, object] = {}
    e0, pred = er.predict_method("default, predicted latency", tr, g, 0, cache, measured)
    e1, lat = er.predict_method("default, measured where measured", tr, g, 0, cache, measured)
    np.testing.assert_array_equal(e0, e1)
    np.testing.assert_array_equal(lat[measured], g["tpot_s"][measured])
    np.testing.assert_array_equal(lat[~measured], pred[~measured])
    _, ub = er.predict_method(
        "default, measured where measured, confidence 0.9", tr, g, 0, cache, measured
    )
    np.testing.assert_array_equal(ub[measured], g["tpot_s"][measured])
    assert np.all(ub[~measured] > pred[~measured])  # the bound, above the prediction
    with pytest.raises(ValueError, match="measured rows"):
        er.predict_method("default, measured where measured", tr, g, 0, {}, None)


def test_neighbour_residual_energy_reproduces_the_measured_half(er: ModuleType) -> None:
    g = _group(seed=1)
    half = np.array([1, 3, 5, 7, 9])
    tr = er.sub(g, half)
    e, _ = er.predict_method(
        "default + neighbour residuals (alpha = 1), true latency", tr, g, 0, {}, None
    )
    # alpha = 1 carries each measured row's own residual: its energy per token exactly
    np.testing.assert_allclose(e[half], er.per_token(g)[half], rtol=1e-9)


def test_limit_margins_flag_an_unmeasured_optimum_at_the_limit(diag: ModuleType) -> None:
    # ITL rises and energy per token falls with the batch: the optimum under a limit is the
    # largest batch that meets it; with 5 rows the percentiles 25/50/75 fall on rows 1, 2, 3
    itl = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    e = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    none = np.zeros(5, dtype=bool)
    out = diag.limit_margins(itl, e, none, (0.0, 0.5))
    assert len(out) == 3
    for below, _ in out:
        assert below == [True, True]  # each optimum sits exactly at its limit, unmeasured
    # the next config above the 25th-percentile limit (2.0) is 3.0: 50 % above it
    assert out[0][1] == [False, True]
    measured = np.array([False, True, True, True, False])
    for below, _ in diag.limit_margins(itl, e, measured, (0.0,)):
        assert below == [False]


def test_noisy_truth_leaves_measured_rows_exact(diag: ModuleType) -> None:
    itl = np.array([1.0, 2.0, 4.0])
    z = np.array([1.0, -1.0, 0.5])
    np.testing.assert_array_equal(diag.noisy_truth(itl, z, 0.0, None), itl)
    np.testing.assert_allclose(diag.noisy_truth(itl, z, 0.1, None), itl * np.exp(0.1 * z))
    m = np.array([True, False, True])
    got = diag.noisy_truth(itl, z, 0.1, m)
    np.testing.assert_array_equal(got[m], itl[m])
    assert got[1] == pytest.approx(2.0 * np.exp(-0.1))
