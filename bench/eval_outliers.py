"""Resistance of the default fit to gross outliers (issue 18), on the simulator.

80 valid configurations of a simulated H100 node (4 % noise), one row's (or ``--k`` rows')
energy set to 1e-4 J; median relative error on the clean rows, corrupted fit vs clean fit, and
rows the clean fit flags as outliers. Run:

    PYTHONPATH=python python bench/eval_outliers.py [--seeds 10] [--rows 8] [--k 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

from energycore import EnergyModel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.helpers import simulated_energy_rows


def main() -> None:
    warnings.simplefilter("ignore")  # fits with the screen off may stop at max_iter (counted)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rows", type=int, default=8, help="corrupted rows tried per data set")
    ap.add_argument("--k", type=int, default=1, help="rows corrupted at once")
    args = ap.parse_args()
    for label, kw in (("outliers=0 (screen off)", {"outliers": 0}), ("default", {})):
        ratios, clean_flags, found = [], 0, 0
        for model in ("llama-3.1-70b", "llama-3.1-8b"):
            for s in range(args.seeds):
                X, y = simulated_energy_rows(s, model)
                clean = EnergyModel(n_threads=1, **kw).fit(X, y)
                clean_flags += len(getattr(clean, "outliers_", {}))
                rng = np.random.default_rng(s)
                for _ in range(args.rows):
                    idx = rng.choice(len(y), args.k, replace=False)
                    yb = y.copy()
                    yb[idx] = 1e-4
                    bad = EnergyModel(n_threads=1, **kw).fit(X, yb)
                    keep = np.setdiff1d(np.arange(len(y)), idx)
                    Xk = {k: v[keep] for k, v in X.items()}

                    yk = y[keep]
                    e_bad = float(np.median(np.abs(bad.predict(Xk) / yk - 1)))
                    e_clean = float(np.median(np.abs(clean.predict(Xk) / yk - 1)))
                    ratios.append(e_bad / e_clean)
                    found += set(idx) <= set(getattr(bad, "outliers_", {}))
        r = np.array(ratios)
        print(
            f"{label}: {len(r)} corrupted fits; error / clean error median {np.median(r):.3f}, "
            f"p90 {np.quantile(r, 0.9):.3f}, max {r.max():.3f}; within 10 %: "
            f"{np.mean(r <= 1.1):.1%}; corrupted rows flagged: {found}/{len(r)}; "
            f"rows flagged on the {2 * args.seeds} clean fits: {clean_flags}"
        )


if __name__ == "__main__":
    main()
