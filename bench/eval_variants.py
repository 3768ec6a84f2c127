"""Run-time variant selection on the TF2 detection zoo: quality vs budget, missed budgets, decision latency.

The table (41 COCO detectors, mean speed and box mAP; ../shared/data/tf2-detection-zoo) gives one
mean latency per detector. We state the spread: per-image latency log-normal with coefficient of
variation ``--cv`` (default 0.1) around the published mean. For each of ``--budgets`` budgets
(log-spaced, 8 ms to 400 ms) and ``--requests`` simulated requests:

- ``VariantSelector.select(budget, p)`` picks a detector (p = ``--probability``, default 0.99);
- missed budget: the request's drawn latency of the pick exceeds the budget;
- best feasible: the best mAP among detectors whose Monte-Carlo share of draws within the budget
  is >= p (an independent check of the selector's quantile arithmetic);
- per-input oracle: for each request, the best mAP among detectors whose *drawn* latency fits
  (what a perfect per-input predictor could reach; the seed paper's point).

Decision latency: every ``select`` call timed alone with ``perf_counter_ns`` (p50, p99).

    python bench/eval_variants.py [--cv 0.1] [--probability 0.99] [--requests 40000]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from energycore import VariantSelector

DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "tf2-detection-zoo" / "detectors.csv"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv", type=float, default=0.1)
    ap.add_argument("--probability", type=float, default=0.99)
    ap.add_argument("--requests", type=int, default=40000)
    ap.add_argument("--budgets", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    if not args.data.exists():
        raise SystemExit(f"{args.data}: the detection-zoo table is not there (see shared/data)")

    vs = VariantSelector.from_csv(
        args.data, name="model", quality="coco_map", latency="speed_ms",
        latency_unit="ms", latency_cv=args.cv,
    )  # fmt: skip
    rng = np.random.default_rng(args.seed)
    sigma = math.sqrt(math.log1p(args.cv**2))
    mu = np.log(vs.latency_mean_s) - 0.5 * sigma**2
    draws = rng.lognormal(mu[None, :], sigma, size=(args.requests, len(vs)))  # requests x variants
    q = vs.quality
    budgets = np.geomspace(0.008, 0.4, args.budgets)

    missed = served = 0
    gaps, oracle_gaps, worst_gap = [], [], 0.0
    infeasible = 0
    for b in budgets:
        c = vs.select(float(b), args.probability)
        share = (draws <= b).mean(axis=0)
        ok_mc = share >= args.probability
        if not c.feasible:
            infeasible += 1
            assert not ok_mc.any() or share[ok_mc].min() < args.probability + 0.01
            continue
        best = q[ok_mc].max() if ok_mc.any() else math.nan
        gap = best - c.quality if ok_mc.any() else 0.0
        gaps.append(gap)
        worst_gap = max(worst_gap, abs(gap))
        lat = draws[:, c.index]
        missed += int((lat > b).sum())
        served += len(lat)
        fits = draws <= b
        oracle = np.where(fits, q[None, :], -np.inf).max(axis=1)
        oracle = oracle[np.isfinite(oracle)]
        oracle_gaps.append(float(oracle.mean() - c.quality))

    times = np.empty(20000)
    bs = rng.choice(budgets, len(times))
    for i, b in enumerate(bs.tolist()):
        t0 = time.perf_counter_ns()
        vs.select(b, args.probability)
        times[i] = time.perf_counter_ns() - t0
    p50, p99 = np.percentile(times / 1e3, [50, 99])

    print(
        f"detection zoo: {len(vs)} detectors, latency log-normal cv {args.cv}, p = {args.probability}"
    )
    print(f"budgets: {len(budgets)} from 8 ms to 400 ms ({infeasible} below every detector)")
    print("| figure | value | target |")
    print("|---|---|---|")
    print(
        f"| worst |quality gap| to the best feasible (Monte Carlo) | {worst_gap:.2f} mAP | <= 0.5 |"
    )
    print(
        f"| missed budgets (drawn latency > budget) | {100 * missed / max(served, 1):.2f} % | <= 1 % |"
    )
    print(
        f"| per-input oracle's mean gain over the pick | {np.mean(oracle_gaps):.2f} mAP | (headroom) |"
    )
    print(f"| decision latency p50 / p99 | {p50:.2f} / {p99:.2f} us | p99 <= 10 us |")


if __name__ == "__main__":
    main()
