"""Private bridge of the demo, the CLI and the harness to the configuration space.

``node_space`` builds the :class:`energycore.ConfigSpace` of one node (tp, pp, batch within its
GPUs) with its validity written as constraint expressions with explicit numbers from the spec
sheets (GPU count, divisibility, memory fit: the same physics as the simulator's own check, so
the engine enumerates exactly the configurations the node can run). The plain-numpy
enumeration and argmin below serve the accuracy harness, whose baselines are not template
models the engine can score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from energycore.simulate.catalog import GPU, ModelSpec
from energycore.simulate.node import memory_constraint
from energycore.space.configspace import ConfigSpace

FloatArray = npt.NDArray[np.float64]


def node_constraints(gpu: GPU, model: ModelSpec, n_gpus: int, memory_fraction: float) -> list[str]:
    """The node's validity as ConfigSpace constraints (numbers in GB from the catalogue)."""
    cons = [
        ConfigSpace.gpu_count(n_gpus),
        ConfigSpace.divisible(heads=model.heads, layers=model.layers),
    ]
    if model.kv_heads:
        kv = model.kv_heads
        cons.append(f"{kv} % tp == 0 or tp % {kv} == 0")
    cons.append(memory_constraint(gpu, model, memory_fraction))
    return cons


def node_space(
    n_gpus: int,
    max_batch: int,
    gpu: GPU | None = None,
    model: ModelSpec | None = None,
    memory_fraction: float = 0.9,
) -> ConfigSpace:
    """(tp, pp, batch) powers of two within ``n_gpus`` GPUs; with a GPU and a model, only the
    configurations that fit (divisibility and memory)."""
    axes = {
        "tp": powers_of_two(1, n_gpus),
        "pp": powers_of_two(1, n_gpus),
        "batch": powers_of_two(1, max_batch),
    }
    if gpu is not None and model is not None:
        cons = node_constraints(gpu, model, n_gpus, memory_fraction)
    else:
        cons = [ConfigSpace.gpu_count(n_gpus)]
    return ConfigSpace(axes, constraints=cons, n_threads=1)


def powers_of_two(lo: int, hi: int) -> list[int]:
    """Powers of two in ``[lo, hi]``."""
    out, v = [], 1
    while v <= hi:
        if v >= lo:
            out.append(v)
        v *= 2
    return out


def enumerate_configs(
    n_gpus: int,
    batches: list[int],
    input_len: float,
    output_len: float,
) -> dict[str, FloatArray]:
    """Every (tp, pp, batch) with tp, pp powers of two and ``tp * pp <= n_gpus``, one workload."""
    rows = [
        (tp, pp, b)
        for tp in powers_of_two(1, n_gpus)
        for pp in powers_of_two(1, n_gpus)
        if tp * pp <= n_gpus
        for b in batches
    ]
    a = np.array(rows, dtype=np.float64).reshape(-1, 3)
    n = len(a)
    return {
        "tp": a[:, 0].copy(),
        "pp": a[:, 1].copy(),
        "batch": a[:, 2].copy(),
        "input_len": np.full(n, float(input_len)),
        "output_len": np.full(n, float(output_len)),
    }


def gpu_seconds_per_request(latency_s: FloatArray, X: dict[str, Any]) -> FloatArray:
    """GPU-seconds one request holds: batch latency x GPUs (tp * pp) / batch. Its minimum
    within a latency limit is the throughput-optimal configuration when replicas fill a node."""
    return latency_s * X["tp"] * X["pp"] / X["batch"]


def take(cols: dict[str, Any], i: int) -> dict[str, Any]:
    """One row of a dict of arrays as plain Python values."""
    out: dict[str, Any] = {}
    for k, v in cols.items():
        x = v[i]
        out[k] = x.item() if hasattr(x, "item") else x
    return out
