"""Simulator throughput: 100 000 configurations in one ``Node.run`` call on one core.

Target (issue 17): <= 0.3 s for 100 000 configurations. Also printed as a ratio to the anchor
``numpy`` work of the same size (one exp + log over 100 000 x 50 floats), so a slower machine
shows the same ratio. Pin to one core with ``taskset -c 0`` where available.

Run:  PYTHONPATH=python python bench/bench_simulate.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from energycore.simulate import Node

N = 100_000


def best(f: Any, repeat: int = 5) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main() -> None:
    rng = np.random.default_rng(0)
    X = {
        "tp": rng.choice([1.0, 2, 4, 8], N), "pp": rng.choice([1.0, 2, 4], N),
        "batch": rng.choice(2.0 ** np.arange(12), N), "input_len": rng.integers(0, 4096, N) * 1.0,
        "output_len": rng.integers(1, 1024, N) * 1.0,
    }  # fmt: skip
    anchor_x = rng.random((N, 50))
    t_anchor = best(lambda: np.log(np.exp(anchor_x)))
    print(f"{'node':<40} {'s / 100k':>9} {'x anchor':>9}  target <= 0.3 s")
    for gpu, model in (
        ("H100", "llama-3.1-70b"),
        ("B200", "qwen3-235b-a22b"),
        ("H100", "gemma-3-27b"),
        ("H100", "nemotron-nano-9b-v2"),
    ):
        node = Node(gpu, model, n_gpus=8)
        r = node.run(X)
        assert r["energy_j"].shape == (N,) and np.isfinite(r["energy_j"][r["valid"]]).all()
        t = best(lambda node=node: node.run(X))
        print(
            f"{gpu + ' ' + model:<40} {t:9.3f} {t / t_anchor:9.1f}  {'ok' if t <= 0.3 else 'SLOW'}"
        )
    print(f"(anchor: exp+log of 100k x 50 floats, {t_anchor * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
