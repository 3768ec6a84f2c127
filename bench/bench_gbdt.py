"""Gradient-boosted trees: energycore's C++ trees against LightGBM and XGBoost, in the same run.

Training: n = 1k, 10k, 100k rows x 20 features (a smooth nonlinear target with noise, five
informative features), 100 trees, learning rate 0.1, L2 1, 255 bins, on

- leaf-wise trees, 31 leaves, min_child_samples 20 (LightGBM's defaults) against LightGBM,
- depth-wise trees, max_depth 6, min_child_weight 1 (XGBoost's defaults) against XGBoost
  (``tree_method="hist"``),

each with its test RMSE on 20k fresh rows beside the time. Times are the best of --repeat runs:
CPU time with one thread (robust on a shared machine) and wall time with all threads.

Prediction (100 trees of depth 6, fitted on 10k rows): one row from Python, each call a
different row (energycore ``predict_row`` with a list and with a numpy row; LightGBM's and
XGBoost's scikit-learn ``predict`` on a 1 x 20 array, and XGBoost's ``inplace_predict``), and
batches of 1k and 100k rows (wall time, all threads). The script checks that the three libraries' predictions of the batch agree with their own
single-row predictions.

Run:

    PYTHONPATH=python python bench/bench_gbdt.py          # ~2 min on 2 cores; --quick: fewer sizes
"""

from __future__ import annotations

import argparse
import os
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

from energycore import GradientBoosting

P = 20
COMMON = {"n_estimators": 100, "learning_rate": 0.1, "reg_lambda": 1.0, "max_bin": 255}
SETUPS = {
    "leaf-wise (31 leaves)": (
        "lightgbm",
        {**COMMON, "growth": "leafwise", "num_leaves": 31, "max_depth": None,
         "min_child_samples": 20, "min_child_weight": 1e-3},
    ),
    "depth-wise (depth 6)": (
        "xgboost",
        {**COMMON, "growth": "depthwise", "max_depth": 6, "min_child_weight": 1.0},
    ),
}  # fmt: skip


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, P))
    f = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3]
         + 5 * X[:, 4])  # fmt: skip
    return X, f + rng.normal(size=n)


def reference(name: str, threads: int) -> Any:
    if name == "lightgbm":
        import lightgbm as lgb

        return lgb.LGBMRegressor(n_estimators=100, learning_rate=0.1, num_leaves=31,
                                 max_depth=-1, reg_lambda=1.0, min_child_samples=20,
                                 min_child_weight=1e-3, max_bin=255, n_jobs=threads,
                                 verbose=-1)  # fmt: skip
    import xgboost as xgb

    return xgb.XGBRegressor(n_estimators=100, learning_rate=0.1, max_depth=6, reg_lambda=1.0,
                            min_child_weight=1.0, max_bin=255, tree_method="hist",
                            n_jobs=threads)  # fmt: skip


def best_time(fn: Callable[[], Any], repeat: int, cpu: bool) -> float:
    clock = time.process_time if cpu else time.perf_counter
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def training(sizes: list[int], repeat: int) -> list[str]:
    Xt, yt = make_data(20_000, seed=99)
    threads = os.cpu_count() or 1
    lines = [
        "| trees | n | energycore 1 thread (CPU s) | reference 1 thread (CPU s) | ratio | "
        f"energycore {threads} threads (wall s) | reference {threads} threads (wall s) | ratio "
        "| test RMSE energycore / reference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, (ref_name, params) in SETUPS.items():
        for n in sizes:
            X, y = make_data(n, seed=n)
            row = [label + f" vs {ref_name}", f"{n:,}"]
            acc = ""
            for threads_used, cpu in ((1, True), (threads, False)):
                ours = GradientBoosting(**params, n_jobs=threads_used)
                ref = reference(ref_name, threads_used)
                t_ours = best_time(lambda o=ours, X=X, y=y: o.fit(X, y), repeat, cpu)
                t_ref = best_time(lambda r=ref, X=X, y=y: r.fit(X, y), repeat, cpu)
                row += [f"{t_ours:.3f}", f"{t_ref:.3f}", f"**{t_ours / t_ref:.2f}**"]
                acc = f"{rmse(ours.predict(Xt), yt):.3f} / {rmse(ref.predict(Xt), yt):.3f}"
            lines.append("| " + " | ".join([*row, acc]) + " |")
            print(lines[-1], flush=True)
    return lines


def per_row_us(fn: Callable[[Any], Any], rows: list[Any], repeat: int = 5) -> float:
    """Best time per call of fn over distinct rows (a tuner never asks twice for one row, and
    repeating one row would let the branch predictor learn its path)."""

    def run() -> None:
        for r in rows:
            fn(r)

    return min(timeit.repeat(run, number=1, repeat=repeat)) / len(rows) * 1e6


def prediction(repeat: int) -> list[str]:
    import lightgbm as lgb
    import xgboost as xgb

    X, y = make_data(10_000, seed=1)
    ours = GradientBoosting(n_estimators=100, max_depth=6).fit(X, y)
    lg = lgb.LGBMRegressor(n_estimators=100, max_depth=6, num_leaves=64, verbose=-1).fit(X, y)
    xg = xgb.XGBRegressor(n_estimators=100, max_depth=6, tree_method="hist").fit(X, y)
    booster = xg.get_booster()
    Xq, _ = make_data(2000, seed=3)
    lists = Xq.tolist()
    arrays = list(Xq)
    arrays2d = [r[None, :] for r in Xq[:200]]
    # the single-row paths agree with each library's batch prediction
    for r in Xq[:20]:
        assert ours.predict_row(r.tolist()) == ours.predict(r[None, :])[0]
    assert np.isclose(lg.predict(arrays2d[0])[0], lg.predict(Xq[:1])[0])
    assert np.isclose(booster.inplace_predict(arrays2d[0])[0], xg.predict(Xq[:1])[0])
    t = {
        "energycore predict_row(list)": per_row_us(ours.predict_row, lists),
        "energycore predict_row(ndarray)": per_row_us(ours.predict_row, arrays),
        "LightGBM predict(1 x 20)": per_row_us(lg.predict, arrays2d, 3),
        "LightGBM Booster.predict(1 x 20, num_threads=1)": per_row_us(
            lambda r: lg.booster_.predict(r, num_threads=1), arrays2d, 3
        ),
        "XGBoost predict(1 x 20)": per_row_us(xg.predict, arrays2d, 3),
        "XGBoost inplace_predict(1 x 20)": per_row_us(booster.inplace_predict, arrays2d, 3),
    }
    base = t["energycore predict_row(list)"]
    lines = ["| single row from Python | µs per call | vs energycore (list) |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.2f} | {v / base:.0f}x |" for k, v in t.items()]
    Xb, _ = make_data(100_000, seed=2)
    lines += [
        "",
        "| batch | energycore (ms) | LightGBM (ms) | XGBoost (ms) | LightGBM / energycore | "
        "XGBoost / energycore |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in (1_000, 100_000):
        B = Xb[:n]
        np.testing.assert_allclose(ours.predict(B)[:5], [ours.predict_row(r) for r in B[:5]])
        a = best_time(lambda B=B: ours.predict(B), repeat, cpu=False) * 1e3
        b = best_time(lambda B=B: lg.predict(B), repeat, cpu=False) * 1e3
        c = best_time(lambda B=B: xg.predict(B), repeat, cpu=False) * 1e3
        lines.append(f"| {n:,} rows | {a:.2f} | {b:.2f} | {c:.2f} | {b / a:.1f}x | {c / a:.1f}x |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1k and 10k rows only")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (best kept)")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    print("Training (time ratio energycore / reference: below 1 is faster):")
    lines = training(sizes, args.repeat)
    print()
    print("\n".join(lines))
    print()
    print("Prediction (100 trees of depth 6):")
    print("\n".join(prediction(args.repeat)))


if __name__ == "__main__":
    main()
