"""Selection on real measurements: ML.ENERGY leaderboard v3 (issue 11's protocol).

For each (task, model, GPU) group with at least 6 configurations, and each seed: fit on a
random half of the group's configurations, then pick the configuration of least energy per
output token among *all* of the group's configurations under a limit on the median
inter-token latency (the 25th, 50th and 75th percentile of the group's median ITL, and no
limit). A pick is Top-1 when it is the true optimum among the configurations that meet the
limit; its regret is its true energy per token over the optimum's, minus 1; it breaks the
limit when its true median ITL exceeds the limit.

Methods (all in the same run, same halves):

- ``default, predicted latency``: ``EnergyModel()`` and ``TpotModel()`` as a user calls them;
  the limit is judged by the fitted ``TpotModel``'s prediction;
- ``default, predicted latency, confidence c`` (one row per ``--confidence`` value): the limit
  is judged by the upper bound at one-sided confidence ``c`` that ``ConfigSpace.argmin(...,
  confidence=c)`` uses (``energycore.space.uncertainty.upper_bound``: residual scale and
  delta-method parameter variance, Student-t quantile);
- ``default, measured where measured`` (and ``..., confidence c``): the limit judged by the
  *measured* ITL for the configurations of the fitting half (a user who measured them knows
  their latency) and by the fitted ``TpotModel``'s prediction (or its bound at ``c``) for the
  unmeasured half; the energy is the model's everywhere. Not yet what ``ConfigSpace`` does:
  it scores every configuration by the model;
- ``default, true latency``: the same energy model, the limit judged by the measured ITL;
- ``default + neighbour residuals, true latency`` (``--residuals``; two rows, ``alpha = 1`` and
  ``alpha`` chosen by leave-one-out on the fitting half): the ``EnergyModel``'s prediction times
  ``exp(alpha r(x))``, ``r`` the log residual ``log(measured / predicted)`` of the measured
  configurations with the same ``tp``, ``pp`` and ``n_gpus``, interpolated linearly in ``log
  batch`` and held constant beyond the measured batches
  (``energycore.fit.latency.NeighbourResiduals``): a
  prototype for the energy model's gap to NNLS, judged by the true latency as that row;
  ``... on energy and latency[, confidence c]``: the ``TpotModel``'s prediction (or bound)
  times ``exp(r(x))`` of its own residuals as well (``alpha = 1``: each measured
  configuration gets its measured ITL); with ``--measured`` also under a confidence, the bound's
  factor on the unmeasured configurations only (``..., measured where measured, confidence c``);
- ``NNLS``: ``a + b / avg_batch + c * n_gpus`` on energy per token (non-negative least
  squares), true latency;
- ``RandomForest``, ``LightGBM`` (if installed): log energy per token from
  ``batch, n_gpus, tp, output_len``, true latency;
- ``highest throughput (measured half)``: among the measured half that meets the limit.

Run::

    PYTHONPATH=python python bench/eval_real.py                 # LLM tasks, seeds 0-19
    PYTHONPATH=python python bench/eval_real.py --tasks all
    PYTHONPATH=python python bench/eval_real.py --confidence 0.5 0.8 0.9 0.95 --no-trees
    PYTHONPATH=python python bench/eval_real.py --no-trees --measured   # + measured rows
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from energycore.data import read_mlenergy
from energycore.errors import ConvergenceWarning
from energycore.fit.energy import EnergyModel, TpotModel
from energycore.fit.latency import NeighbourResiduals
from energycore.space.uncertainty import upper_bound

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CSV = "mlenergy-leaderboard-v3-llm/llm_configs.csv"
LLM_TASKS = ("gpqa", "lm-arena-chat", "sourcegraph-fim")
LIMITS = (25, 50, 75, None)


def groups(cols: dict[str, np.ndarray], tasks: str, min_rows: int = 6) -> list[np.ndarray]:
    """Row indices of each group with at least ``min_rows`` configurations."""
    keep = np.ones(len(cols["group"]), dtype=bool)
    if tasks == "llm":
        keep = np.isin(cols["task"], LLM_TASKS)
    out = []
    for g in sorted(set(cols["group"][keep].tolist())):
        rows = np.flatnonzero((cols["group"] == g) & keep)
        if len(rows) >= min_rows:
            out.append(rows)
    return out


def sub(cols: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in cols.items()}


def per_token(cols: dict[str, np.ndarray]) -> np.ndarray:
    return cols["energy_j"] / (cols["batch"] * cols["output_len"])


def features(c: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([c["batch"], c["n_gpus"], c["tp"], c["output_len"]])


def nnls_predict(tr: dict[str, np.ndarray], te: dict[str, np.ndarray]) -> np.ndarray:
    from scipy.optimize import nnls

    def design(c: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([np.ones(len(c["batch"])), 1.0 / c["batch"], c["n_gpus"]])

    coef, _ = nnls(design(tr), per_token(tr))
    return design(te) @ coef


def rf_predict(tr: dict[str, np.ndarray], te: dict[str, np.ndarray], seed: int) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor

    m = RandomForestRegressor(n_estimators=50, random_state=seed, min_samples_leaf=1)
    m.fit(features(tr), np.log(per_token(tr)))
    return np.exp(m.predict(features(te)))


def lgb_predict(tr: dict[str, np.ndarray], te: dict[str, np.ndarray], seed: int) -> np.ndarray:
    import lightgbm as lgb

    m = lgb.LGBMRegressor(
        n_estimators=100, learning_rate=0.1, min_child_samples=1, min_data_in_bin=1,
        random_state=seed, verbose=-1,
    )  # fmt: skip
    m.fit(features(tr), np.log(per_token(tr)))
    return np.exp(m.predict(features(te)))


def pick(score: np.ndarray, feasible: np.ndarray, fallback: np.ndarray) -> int:
    """Least score among the feasible; when none, the least ``fallback`` (nearest to feasible)."""
    if feasible.any():
        idx = np.flatnonzero(feasible)
        return int(idx[np.argmin(score[idx])])
    return int(np.argmin(fallback))


def run(tasks: str, seeds: int, methods: list[str]) -> dict[str, Any]:
    cols = read_mlenergy(DATA / CSV)
    gs = groups(cols, tasks)
    # results[method] = list of (group, seed, limit, top1, regret, broke, no feasible), fails
    res: dict[str, list[tuple[int, int, int, bool, float, bool, bool]]] = {m: [] for m in methods}
    fails = dict.fromkeys(methods, 0)
    fits = 0
    timing: dict[str, float] = dict.fromkeys(methods, 0.0)
    # held-out configurations whose measured ITL is at most the latency the method judges by
    covered: dict[str, list[bool]] = {m: [] for m in methods}
    for gi, rows in enumerate(gs):
        g = sub(cols, rows)
        n = len(rows)
        e_true = per_token(g)
        itl = g["tpot_s"]
        limits = [None if p is None else float(np.percentile(itl, p)) for p in LIMITS]
        for seed in range(seeds):
            rng = np.random.default_rng(seed * 1000 + gi)
            half = np.sort(rng.choice(n, size=n // 2, replace=False))
            tr = sub(g, half)
            fits += 1
            preds: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
            cache: dict[str, Any] = {}
            measured = np.zeros(n, dtype=bool)
            measured[half] = True
            for m in methods:
                t0 = time.perf_counter()
                try:
                    preds[m] = predict_method(m, tr, g, seed, cache, measured)
                except ValueError as e:
                    fails[m] += 1
                    preds[m] = None
                    if fails[m] <= 3:
                        print(f"  fit failed: {m}, group {g['group'][0]}: {e}", file=sys.stderr)
                timing[m] += time.perf_counter() - t0
                p = preds[m]
                if p is not None:
                    out_rows = np.setdiff1d(np.arange(n), half)
                    covered[m] += (itl[out_rows] <= p[1][out_rows]).tolist()
            for li, lim in enumerate(limits):
                ok_true = np.ones(n, dtype=bool) if lim is None else itl <= lim
                best = int(np.flatnonzero(ok_true)[np.argmin(e_true[ok_true])])
                for m in methods:
                    p = preds[m]
                    if p is None:
                        res[m].append((gi, seed, li, False, math.nan, False, True))
                        continue
                    e_hat, lat_hat = p
                    feas = np.ones(n, dtype=bool) if lim is None else lat_hat <= lim
                    if m == "highest throughput (measured half)":
                        cand = np.zeros(n, dtype=bool)
                        cand[half] = True
                        feas = cand & (ok_true if lim is not None else True)
                        if not feas.any():
                            feas = cand
                        k = pick(-g["throughput_tok_s"], feas, -g["throughput_tok_s"])
                    else:
                        k = pick(e_hat, feas, lat_hat)
                    broke = lim is not None and itl[k] > lim
                    regret = e_true[k] / e_true[best] - 1.0
                    none_ok = lim is not None and not feas.any()  # the pick is the fallback
                    res[m].append((gi, seed, li, k == best, regret, bool(broke), none_ok))
    return {
        "groups": len(gs), "fits": fits, "res": res, "fails": fails, "timing": timing,
        "covered": covered,
    }  # fmt: skip


#: fit outcomes of the default method's energy fits, printed at the end
STATS = {"energy fits": 0, "energy fits at max_iter": 0, "energy fits with outliers excluded": 0}


def predict_method(
    m: str, tr: dict[str, np.ndarray], te: dict[str, np.ndarray], seed: int,
    cache: dict[str, Any], measured: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(predicted energy per token, latency used for the limit) of every configuration.

    ``cache`` holds the default models of this (group, seed), fitted once for every row;
    ``measured`` marks the rows of ``te`` that are in the fitting half (for the "measured
    where measured" methods, which judge those rows by their measured latency).
    """
    true_lat = te["tpot_s"]
    if m.startswith("default"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning on real data would be a finding
            # ... except stopping at max_iter, which is counted (the fit is kept, as before)
            warnings.simplefilter("ignore", ConvergenceWarning)
            if "em" not in cache:
                em = EnergyModel().fit(tr, "energy_j")
                STATS["energy fits"] += 1
                STATS["energy fits at max_iter"] += em.fit_result_.status == 0
                STATS["energy fits with outliers excluded"] += bool(em.outliers_)
                cache["em"] = em
            e = cache["em"].predict(te) / (te["batch"] * te["output_len"])
            if m.startswith("default + neighbour residuals"):
                alpha: float | str = 1.0 if "alpha = 1" in m else "loo"
                carry = NeighbourResiduals(alpha).fit(tr, tr["energy_j"], cache["em"].predict(tr))
                e = e * carry.factor(te)
            if m.endswith("true latency"):
                return e, true_lat
            if "tm" not in cache:
                cache["tm"] = TpotModel().fit(tr, "tpot_s")
            tm = cache["tm"]
            c = float(m.rsplit("confidence ", 1)[1]) if "confidence " in m else None
            lat = tm.predict(te) if c is None else upper_bound(tm, te, c)
            if "on energy and latency" in m:  # the latency's residuals carried the same way
                lat = lat * NeighbourResiduals().fit(tr, tr["tpot_s"], tm.predict(tr)).factor(te)
            if "measured where measured" in m:
                if measured is None:
                    raise ValueError(f"{m}: needs the measured rows")
                lat = np.where(measured, true_lat, lat)
            return e, lat
    if m == "NNLS":
        return nnls_predict(tr, te), true_lat
    if m == "RandomForest":
        return rf_predict(tr, te, seed), true_lat
    if m == "LightGBM":
        return lgb_predict(tr, te, seed), true_lat
    if m == "highest throughput (measured half)":
        return np.zeros(len(true_lat)), true_lat
    raise ValueError(f"unknown method {m}")


def summarise(out: dict[str, Any], ref: str = "NNLS", boot: int = 2000) -> dict[str, Any]:
    table = {}
    rng = np.random.default_rng(0)
    for m, rows in out["res"].items():
        a = np.array(rows, dtype=np.float64)
        limited = a[:, 2] < 3
        reg = a[:, 4][np.isfinite(a[:, 4])]
        row = {
            "fit_fail_pct": 100.0 * out["fails"][m] / out["fits"],
            "top1_all": float(a[:, 3].mean()),
            "top1_nolimit": float(a[~limited, 3].mean()),
            "mean_regret_pct": 100.0 * float(reg.mean()) if len(reg) else math.nan,
            "p95_regret_pct": 100.0 * float(np.percentile(reg, 95)) if len(reg) else math.nan,
            "breaks_pct": 100.0 * float(a[limited, 5].mean()),
            # limited picks where no configuration met the (predicted) limit: the pick is the
            # one of least predicted latency, as argmin's nearest point
            "no_feasible_pct": 100.0 * float(a[limited, 6].mean()),
            "breaks_feasible_pct": 100.0 * float(a[limited & (a[:, 6] == 0), 5].mean()),
            "seconds": out["timing"][m],
            "coverage_pct": 100.0 * float(np.mean(out["covered"][m])) if out["covered"][m] else 0,
        }
        table[m] = row
    # Paired bootstrap over groups of Top-1 (all limits) minus the reference.
    if ref in out["res"]:
        ra = np.array(out["res"][ref], dtype=np.float64)
        G = out["groups"]
        ref_g = np.array([ra[ra[:, 0] == g, 3].mean() for g in range(G)])
        for m, rows in out["res"].items():
            if m == ref:
                continue
            a = np.array(rows, dtype=np.float64)
            d = np.array([a[a[:, 0] == g, 3].mean() for g in range(G)]) - ref_g
            idx = rng.integers(0, G, size=(boot, G))
            bs = d[idx].mean(axis=1)
            lo, hi = np.percentile(bs, [2.5, 97.5])
            table[m]["top1_minus_ref"] = [float(d.mean()), float(lo), float(hi)]
    return table


def markdown(table: dict[str, Any], ref: str = "NNLS") -> str:
    lines = [
        "| method | fit fails | Top-1, 4 limits | Top-1, no limit | mean regret | p95 regret "
        f"| breaks limit | none feasible | breaks, feasible picks | Top-1 minus {ref} (95 % CI) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m, r in table.items():
        d = r.get("top1_minus_ref")
        ci = "-" if d is None else f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
        lines.append(
            f"| {m} | {r['fit_fail_pct']:.1f} % | {r['top1_all']:.3f} | {r['top1_nolimit']:.3f} "
            f"| {r['mean_regret_pct']:.2f} % | {r['p95_regret_pct']:.1f} % "
            f"| {r['breaks_pct']:.1f} % | {r['no_feasible_pct']:.1f} % "
            f"| {r['breaks_feasible_pct']:.1f} % | {ci} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", choices=("llm", "all"), default="llm")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument(
        "--confidence", type=float, nargs="*", default=[0.9],
        help="one-sided confidences of the latency bound, one row each (none: no such row)",
    )  # fmt: skip
    ap.add_argument("--no-trees", action="store_true", help="skip RandomForest and LightGBM")
    ap.add_argument(
        "--residuals", action="store_true",
        help="add the 'default + neighbour residuals' rows (energy prototype, true latency)",
    )  # fmt: skip
    ap.add_argument(
        "--measured", action="store_true",
        help="add the 'measured where measured' rows (measured ITL for the fitting half)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, help="write the table as JSON here")
    args = ap.parse_args()
    if not (DATA / CSV).is_file():
        sys.exit(f"no data at {DATA / CSV}")
    methods = [
        "default, predicted latency",
        *(f"default, predicted latency, confidence {c:g}" for c in args.confidence),
        *(
            ["default, measured where measured"]
            + [f"default, measured where measured, confidence {c:g}" for c in args.confidence]
            if args.measured
            else []
        ),
        "default, true latency",
        *(
            [
                "default + neighbour residuals (alpha = 1), true latency",
                "default + neighbour residuals (alpha by LOO), true latency",
            ]
            if args.residuals
            else []
        ),
        *(
            ["default + neighbour residuals (alpha = 1) on energy and latency"]
            if args.residuals
            else []
        ),
        *(
            [
                "default + neighbour residuals (alpha = 1) on energy and latency, measured where "
                f"measured, confidence {c:g}"
                for c in args.confidence
            ]
            if args.residuals and args.measured
            else []
        ),
        "NNLS",
        "highest throughput (measured half)",
    ]
    if not args.no_trees:
        for name, mod in (("RandomForest", "sklearn"), ("LightGBM", "lightgbm")):
            try:
                __import__(mod)
                methods.append(name)
            except ImportError:
                print(f"{name}: {mod} not installed, skipped", file=sys.stderr)
    t0 = time.perf_counter()
    out = run(args.tasks, args.seeds, methods)
    table = summarise(out)
    print(
        f"ML.ENERGY v3, {args.tasks} tasks: {out['groups']} groups x {args.seeds} seeds, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    print(markdown(table))
    print(
        "held-out coverage (measured ITL of the unmeasured half <= the latency judged by): "
        + ", ".join(
            f"{m} {table[m]['coverage_pct']:.1f} %"
            for m in methods
            if m.startswith("default, predicted")
        )
    )
    print(", ".join(f"{k}: {v}" for k, v in STATS.items()))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
