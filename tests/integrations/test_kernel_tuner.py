"""energycore's Tuner as a Kernel Tuner strategy, end to end in Kernel Tuner's simulation mode
on a cache built from the shared benchmark-hub data (needs kernel_tuner, a [test] extra)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from energycore.integrations.kernel_tuner import EnergycoreStrategy, strategy
from energycore.tune import CacheReplay

kernel_tuner = pytest.importorskip("kernel_tuner")

CONV_PARAMS = ["block_size_x", "block_size_y", "tile_size_x", "tile_size_y", "read_only",
               "use_padding", "use_shmem", "use_cmem", "filter_height", "filter_width"]  # fmt: skip
#: The constraints of the benchmark hub's convolution_milo space (its README).
CONV_RESTRICTIONS = [
    "use_padding==0 or block_size_x % 32 != 0",
    "block_size_x*block_size_y <= 1024",
    "use_padding==0 or use_shmem != 0",
    "use_shmem == 0 or (block_size_x*tile_size_x + filter_width-1)"
    "*(block_size_y*tile_size_y + filter_height-1) < 12*1024",
]


@pytest.fixture(scope="module")
def conv_cache(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, CacheReplay]:
    import pandas as pd

    csv = shared_data / "benchmark-hub-convolution" / "convolution_milo_cache.csv"
    if not csv.exists():
        pytest.skip("benchmark-hub-convolution not present")
    df = pd.read_csv(csv)
    df = df[df.gpu == "A6000"].drop(columns="gpu")
    rep = CacheReplay.from_frame(df, CONV_PARAMS, device_name="NVIDIA RTX A6000",
                                 kernel_name="convolution_kernel", problem_size=[4096, 4096])  # fmt: skip
    return rep.save(tmp_path_factory.mktemp("kt") / "conv_a6000.json"), rep


def _tune(cache: Path, strat: object, fevals: int) -> tuple[list[dict], dict]:
    tune_params = CacheReplay.load(cache).tune_params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Kernel Tuner's own deprecation/user warnings
        return kernel_tuner.tune_kernel(
            "convolution_kernel", "/* simulated */", [4096, 4096], [], tune_params,
            restrictions=CONV_RESTRICTIONS, cache=str(cache), simulation_mode=True,
            strategy=strat, strategy_options={"max_fevals": fevals}, quiet=True,
        )  # fmt: skip


def test_strategy_runs_in_simulation_mode(conv_cache: tuple[Path, CacheReplay]) -> None:
    cache, rep = conv_cache
    s = strategy(batch=16, seed=0)
    results, env = _tune(cache, s, 96)
    assert env["simulation"] is True
    keys = [tuple(r[p] for p in CONV_PARAMS) for r in results]
    assert len(keys) == 96 == len(set(keys))  # the budget, nothing measured twice
    assert s.tuner_ is not None and s.tuner_.n_measured == 96
    failed = sum("__error__" in r for r in results)
    assert failed == s.tuner_.n_failed
    # failures told as failures, times as the cache has them
    for r in results[:20]:
        cached = rep({p: r[p] for p in CONV_PARAMS})
        if "__error__" in r:
            assert cached["status"] != "ok"
        else:
            assert r["time"] == pytest.approx(cached["time"])
    best = min(r["time"] for r in results if "__error__" not in r)
    assert best == s.tuner_.best_value_
    assert best < np.nanmedian(rep.values()) / 2
    assert env["best_config"]["time"] == best


def test_strategy_is_deterministic_and_validates(conv_cache: tuple[Path, CacheReplay]) -> None:
    cache, _ = conv_cache
    a, _ = _tune(cache, strategy(batch=8, seed=3), 32)
    b, _ = _tune(cache, strategy(batch=8, seed=3), 32)
    key = [[r[p] for p in CONV_PARAMS] for r in a]
    assert key == [[r[p] for p in CONV_PARAMS] for r in b]
    with pytest.raises(ValueError, match="objective"):
        EnergycoreStrategy(objective="time")
    assert callable(strategy().tune)
