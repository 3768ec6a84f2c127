"""Structure discovery (issue 14): planted forms, the simulator, ML.ENERGY, against gplearn.

(a) planted: data from random sparse forms (3-8 terms of the default 40-term library, 2 %
    log-normal noise, 50/100/200 rows): share whose exact structure ``discover`` recovers, its
    error on 200 fresh rows (RMS of log ratios), its wall time; gplearn's SymbolicRegressor given
    the same wall time (generations run with warm start until the time is spent).
(b) simulator: per (model, GPU) a discovery on a separate 200-row profiling set (other noise
    seed, other rows), then the discovered structure refitted on the same n = 50 rows as
    ``energy_v2`` and scored by bench/eval_selection.py's Top-1 (same latency models).
(c) ML.ENERGY v3 (real, LLM tasks): per (task, model, GPU) group with >= 8 rows, leave-one-out
    error of energy per request and Top-1 (LOO-predicted argmin is the measured argmin) for
    ``discover`` (max 3 terms), a 3-term NNLS (c1 L_out N / b + c2 L_out + c3) and gplearn at
    equal wall time.

Run:  PYTHONPATH=python python bench/eval_discover.py --quick     (~3-4 min on 2 shared cores)
      PYTHONPATH=python python bench/eval_discover.py             (full: 20 forms x 3 sizes, all
                                                                   simulator deployments)
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_selection as es
from energycore import discover
from energycore._util.columns import FEATURES
from energycore._util.select import constrained_argmin
from energycore.app import grid as _grid
from energycore.fit.discover import default_terms
from energycore.simulate import Node

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlenergy-leaderboard-v3-llm"


# ----------------------------------------------------------------------------- (a) planted
def planted(
    seed: int, n: int, noise: float = 0.02
) -> tuple[dict, np.ndarray, dict, np.ndarray, set]:
    """A random 3-8 term form, n training rows and 200 fresh test rows."""
    rng = np.random.default_rng(seed)
    lib = default_terms()
    k = int(rng.integers(3, 9))
    form = [lib[i] for i in rng.choice(len(lib), k, replace=False)]

    def rows(m: int) -> dict[str, np.ndarray]:
        return {
            "tp": rng.choice([1.0, 2, 4, 8], m), "pp": rng.choice([1.0, 2], m),
            "batch": rng.choice(2.0 ** np.arange(8), m),
            "input_len": rng.choice([128.0, 256, 512, 1024, 2048], m),
            "output_len": rng.choice([64.0, 128, 256, 512, 1024], m),
        }  # fmt: skip

    def cols(X: dict[str, np.ndarray]) -> np.ndarray:
        V = {**X, "n_gpus": X["tp"] * X["pp"], "tp-1": X["tp"] - 1, "pp-1": X["pp"] - 1}
        return np.column_stack([np.prod([V[v] ** e for v, e in t.factors] or [np.ones(len(X["tp"]))], axis=0) for t in form])  # fmt: skip

    X, Xt = rows(n), rows(200)
    T = cols(X)
    coef = rng.uniform(0.2, 1.0, k) / T.mean(axis=0)
    y = T @ coef * np.exp(rng.normal(0, noise, n))
    yt = cols(Xt) @ coef * np.exp(rng.normal(0, noise, 200))
    return X, y, Xt, yt, {str(t) for t in form}


def _gp_features(X: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.column_stack([X[k] for k in names])


def gplearn_run(
    X, y, Xt, budget_s: float, seed: int, names: list[str], curve: list | None = None
) -> tuple[np.ndarray, float, int, int]:
    """gplearn given ``budget_s``: predictions on Xt, time used, generations, program length."""
    from gplearn.genetic import SymbolicRegressor

    scale = float(np.mean(y))
    F = _gp_features(X, names)
    sr = SymbolicRegressor(population_size=500, generations=1, warm_start=True, random_state=seed,
                           function_set=("add", "sub", "mul", "div"), parsimony_coefficient=0.001,
                           n_jobs=1, metric="mse")  # fmt: skip
    t0 = time.perf_counter()
    gens = 0
    Ft = _gp_features(Xt, names)
    while True:
        gens += 1
        sr.set_params(generations=gens)
        sr.fit(F, y / scale)
        if curve is not None:  # (seconds so far, predictions) after each generation
            curve.append((time.perf_counter() - t0, np.asarray(sr.predict(Ft)) * scale))
        if time.perf_counter() - t0 >= budget_s:
            break
    pred = np.asarray(sr.predict(Ft)) * scale
    return pred, time.perf_counter() - t0, gens, int(sr._program.length_)


def time_to_error(X, y, Xt, yt, target: float, budget_s: float, seed: int) -> tuple[float, float]:
    """(seconds gplearn needs to reach `target` test error or inf, best error in the budget)."""
    curve: list[tuple[float, np.ndarray]] = []
    gplearn_run(X, y, Xt, budget_s, seed, list(FEATURES), curve)
    errs = [(t, logerr(p, yt)) for t, p in curve]
    hit = [t for t, e in errs if e <= target]
    return (hit[0] if hit else float("inf")), min(e for _, e in errs)


def logerr(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.log(np.maximum(pred, 1e-9 * np.mean(y)) / y) ** 2)))


def eval_planted(quick: bool, with_gp: bool) -> list[str]:
    out = ["| rows | forms | exact structure | median test RMS log | median time (s) | max time (s) |",
           "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    gp_rows = []
    slow: list[tuple] = []
    names = list(FEATURES)
    for n in (50, 100, 200):
        seeds = range(10 if quick else 20)
        ok, errs, ts = [], [], []
        for s in seeds:
            X, y, Xt, yt, truth = planted(1000 + s, n)
            t0 = time.perf_counter()
            d = discover(X, y, max_terms=10, seed=s)
            dt = time.perf_counter() - t0
            ts.append(dt)
            ok.append({str(t) for t in d.best.terms} == truth)
            errs.append(logerr(d.best.predict(Xt), yt))
            if with_gp and n == 200 and (not quick or s < 5):
                pred, tg, gens, size = gplearn_run(X, y, Xt, dt, s, names)
                gp_rows.append((s, errs[-1], d.best.n_params, dt, logerr(pred, yt), size, tg, gens))
                if s < (3 if quick else 5):  # time to discover's error, budget 100x (<= 30 s)
                    budget = min(30.0, 100 * dt)
                    tte, best = time_to_error(X, y, Xt, yt, errs[-1], budget, s)
                    slow.append((s, dt, errs[-1], budget, tte, best))
        out.append(f"| {n} | {len(ok)} | {100 * np.mean(ok):.0f} % | {np.median(errs):.4f} | "
                   f"{np.median(ts):.2f} | {max(ts):.2f} |")  # fmt: skip
    if gp_rows:
        out += ["", "Against gplearn at equal wall time (200 rows):", "",
                "| form | discover RMS log | coefs | time (s) | gplearn RMS log | program length | time (s) | generations |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for s, e, k, dt, eg, size, tg, gens in gp_rows:
            out.append(
                f"| {s} | {e:.4f} | {k} | {dt:.2f} | {eg:.4f} | {size} | {tg:.2f} | {gens} |"
            )
        win = np.mean([r[1] < r[4] for r in gp_rows])
        out.append(
            f"\ndiscover lower error than gplearn in {100 * win:.0f} % of {len(gp_rows)} forms"
        )
    if slow:
        out += ["", "Time for gplearn to reach discover's test error (budget 100x, at most 30 s):", "",
                "| form | discover time (s) | discover RMS log | gplearn budget (s) | gplearn time to it | gplearn best RMS log |",
                "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for s_, dt, e, budget, tte, best in slow:
            tt = "not reached" if tte == float("inf") else f"{tte:.1f} s ({tte / dt:.0f}x)"
            out.append(f"| {s_} | {dt:.2f} | {e:.4f} | {budget:.1f} | {tt} | {best:.4f} |")
    return out


# ----------------------------------------------------------------------------- (b) simulator
class DiscoverPredictor(es.EnergycorePredictor):
    """``structure``: a DiscoveredModel (its structure refitted on the deployment's rows) or a
    Discovery (the front entry the deployment's rows support best, Discovery.refit)."""

    def __init__(self, d: dict[str, np.ndarray], seed: int, structure: Any) -> None:
        super().__init__(d, seed)
        self.e = structure.refit(d, d["energy_j"])


def eval_simulator(
    quick: bool,
    seed: int = 0,
    prof_rows: int = 200,
    free: tuple[str, ...] = (),
    monotone: bool = False,
    max_terms: int = 12,
    deploy_cv: bool = False,
) -> list[str]:
    models = es.MODELS[:2] if quick else es.MODELS
    gpus = es.GPUS[:3] if quick else es.GPUS
    n = 50
    hits: dict[str, list[bool]] = defaultdict(list)
    regret: dict[str, list[float]] = defaultdict(list)
    forms = []
    for mi, model in enumerate(models):
        for gi, gpu in enumerate(gpus):
            s = seed + 1000 * mi + 17 * gi
            node = Node(gpu, model, n_gpus=es.N_GPUS, noise=0.03, seed=s)
            truth = Node(gpu, model, n_gpus=es.N_GPUS, noise=0.0)
            data = es.measure(node, es.plan(s, np.random.default_rng(s)), n)
            if len(data["tp"]) < n:
                continue
            # the profiling set: other noise seed, other random plan order
            lab = Node(gpu, model, n_gpus=es.N_GPUS, noise=0.03, seed=s + 99991)
            prof = es.measure(lab, es.plan(s + 7, np.random.default_rng(s + 7)), prof_rows)
            found = discover(
                prof,
                prof["energy_j"],
                max_terms=max_terms,
                seed=s,
                free_exponents=free,
                constraints={"monotone_batch": monotone},
            )
            disc = found.best
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                preds = {"energy_v2": es.EnergycorePredictor(data, s),
                         "discover": DiscoverPredictor(data, s, found if deploy_cv else disc)}  # fmt: skip
            if deploy_cv:
                disc = preds["discover"].e
            forms.append((model, gpu, disc.n_params, disc.formula(digits=3)))
            for li, lo in es.WORKLOADS:
                X = _grid.enumerate_configs(es.N_GPUS, es.SELECT_BATCHES, li, lo)
                t = truth.run(X, noise=False)
                ok = t["valid"]
                if not ok.any():
                    continue
                for factor in es.LIMITS:
                    limit = factor * np.min(t["latency_s"][ok])
                    opt = constrained_argmin(t["energy_per_request_j"], ok, t["latency_s"], limit)
                    if opt is None:
                        continue
                    e_opt = t["energy_per_request_j"][opt]
                    for name, p in preds.items():
                        e, lat = p.predict(X)
                        pick = constrained_argmin(e, ok, lat, limit)
                        hits[name].append(pick == opt)
                        regret[name].append(np.nan if pick is None else
                                            max(t["energy_per_request_j"][pick] / e_opt - 1, 0))  # fmt: skip
                    for name, ideal in (
                        ("energy_v2", preds["energy_v2"]),
                        ("discover", preds["discover"]),
                    ):
                        e = ideal.e.predict(X) / X["batch"]
                        pick = constrained_argmin(e, ok, t["latency_s"], limit)
                        hits[name + " (true latency)"].append(pick == opt)
    out = ["| energy model at n = 50 | scenarios | Top-1 | mean regret |", "|---|---:|---:|---:|"]
    for name in hits:
        r = regret.get(name)
        reg = f"{100 * np.nanmean(r):.2f} %" if r else "-"
        out.append(f"| {name} | {len(hits[name])} | {100 * np.mean(hits[name]):.1f} % | {reg} |")
    ks = [k for _, _, k, _ in forms]
    out += [
        "",
        f"Discovered forms ({prof_rows}-row profiling set, max_terms={max_terms}, free "
        f"exponents {free or 'none'}, monotone_batch={monotone}, structure per deployment "
        f"{'by CV on its 50 rows (Discovery.refit)' if deploy_cv else 'the profiling best'}); "
        "fitted parameters "
        f"(coefficients + free exponents) min {min(ks)}, median {int(np.median(ks))}, max {max(ks)}:",
        "",
    ]
    out += [f"- {m} / {g} ({k} coefficients): `{f}`" for m, g, k, f in forms]
    return out


# ----------------------------------------------------------------------------- (c) ML.ENERGY
def load_groups(min_rows: int = 8) -> list[dict[str, np.ndarray]]:
    if not (DATA / "llm_configs.csv").is_file():
        return []
    with open(DATA / "llm_configs.csv") as f:
        rows = list(csv.DictReader(f))
    llm = {"gpqa", "lm-arena-chat", "sourcegraph-fim"}
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["task"] in llm:
            by[(r["task"], r["model_id"], r["gpu_model"])].append(r)
    out = []
    for key, g in sorted(by.items()):
        if len(g) < min_rows:
            continue
        out.append({
            "key": np.array("/".join(key)),
            "batch": np.array([float(r["avg_batch_size"]) for r in g]),
            "output_len": np.array([float(r["avg_output_len"]) for r in g]),
            "n_gpus": np.array([float(r["num_gpus"]) for r in g]),
            "tp": np.array([float(r["tensor_parallel"]) for r in g]),
            "e_req": np.array([float(r["energy_per_request_joules"]) for r in g]),
        })  # fmt: skip
    return out


REAL_TERMS = ["1", "output_len", "output_len*batch^-1", "output_len*n_gpus*batch^-1",
              "output_len*batch^-0.5", "output_len*n_gpus*batch^-0.5", "output_len*batch^0.5",
              "n_gpus", "batch^-1", "n_gpus*batch^-1", "output_len*n_gpus", "output_len^2*batch^-1"]  # fmt: skip


def nnls3(X: dict[str, np.ndarray], y: np.ndarray):
    from scipy.optimize import nnls

    def basis(Z):
        return np.column_stack(
            [Z["output_len"] * Z["n_gpus"] / Z["batch"], Z["output_len"], np.ones(len(Z["batch"]))]
        )

    c = nnls(basis(X) / y[:, None], np.ones(len(y)))[0]
    return lambda Z: basis(Z) @ c


def ev2(
    X: dict[str, np.ndarray],
    y: np.ndarray,
    Xt: dict[str, np.ndarray],
    tp: np.ndarray,
    tp_t: np.ndarray,
) -> float:
    """energy_v2 (EnergyModel) on a group: tp = GPUs used (TP, DP or EP), pp = 1, input 400.

    ML.ENERGY has no input-length sweep: 400 tokens as in simulate/calibration.py; ``tp`` is
    unused (kept for a future TP/DP split).
    """
    from energycore import EnergyModel

    def feats(Z: dict[str, np.ndarray], t: np.ndarray) -> dict[str, np.ndarray]:
        return {"tp": Z["n_gpus"], "pp": np.ones(len(t)),
                "batch": np.maximum(np.round(Z["batch"]), 1.0),
                "input_len": np.full(len(t), 400.0), "output_len": Z["output_len"]}  # fmt: skip

    F = feats(X, tp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m = EnergyModel(seed=0, n_threads=1).fit(F, y * F["batch"])
        except ValueError:  # fewer rows than free coefficients
            return float("nan")
    Ft = feats(Xt, tp_t)
    return float(m.predict(Ft)[0] / Ft["batch"][0])


def eval_real(with_gp: bool, quick: bool) -> list[str]:
    groups = load_groups()
    if not groups:
        return ["(ML.ENERGY data not found: skipped)"]
    if quick:
        groups = groups[::3]
    res: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for gi, g in enumerate(groups):
        n = len(g["batch"])
        cols = {k: g[k] for k in ("batch", "output_len", "n_gpus")}
        preds: dict[str, np.ndarray] = {
            m: np.empty(n) for m in ("discover", "3-term NNLS", "energy_v2", "gplearn")
        }
        times = defaultdict(float)
        for i in range(n):
            tr = np.arange(n) != i
            Xtr = {k: v[tr] for k, v in cols.items()}
            Xte = {k: v[i : i + 1] for k, v in cols.items()}
            t0 = time.perf_counter()
            d = discover(
                Xtr,
                g["e_req"][tr],
                terms=REAL_TERMS,
                max_terms=3,
                cv=max(2, min(5, (n - 1) // 2)),
                seed=gi,
                target="energy_per_request_j",
            )
            dt = time.perf_counter() - t0
            times["discover"] += dt
            preds["discover"][i] = d.best.predict(Xte)[0]
            preds["3-term NNLS"][i] = nnls3(Xtr, g["e_req"][tr])(Xte)[0]
            preds["energy_v2"][i] = ev2(Xtr, g["e_req"][tr], Xte, g["tp"][tr], g["tp"][i : i + 1])
            if with_gp:
                p, tg, _, _ = gplearn_run(
                    Xtr, g["e_req"][tr], Xte, dt, gi, ["batch", "output_len", "n_gpus"]
                )
                preds["gplearn"][i] = p[0]
                times["gplearn"] += tg
        for m, p in preds.items():
            if m == "gplearn" and not with_gp:
                continue
            res[m]["err"].append(logerr(p, g["e_req"]) if np.isfinite(p).all() else np.nan)
            res[m]["top1"].append(
                np.isfinite(p).all() and int(np.argmin(p)) == int(np.argmin(g["e_req"]))
            )
            res[m]["time"].append(times[m])
    out = [f"{len(groups)} groups (task, model, GPU) with >= 8 configurations, leave-one-out:", "",
           "| method | median LOO RMS log | mean LOO RMS log | Top-1 | lower error than NNLS |",
           "|---|---:|---:|---:|---:|"]  # fmt: skip
    base = np.array(res["3-term NNLS"]["err"])
    for m, r in res.items():
        e = np.array(r["err"])
        if np.isnan(e).all():
            out.append(
                f"| {m} | not fitted: every group has fewer rows than its free coefficients | | | |"
            )
            continue
        ok = np.isfinite(e)
        note = "" if ok.all() else f" ({ok.sum()} groups fitted)"
        out.append(f"| {m}{note} | {np.median(e[ok]):.4f} | {np.mean(e[ok]):.4f} | "
                   f"{100 * np.mean(np.array(r['top1'])[ok]):.0f} % | {100 * np.mean(e[ok] < base[ok]):.0f} % |")  # fmt: skip
    if "gplearn" in res:
        w = np.mean(np.array(res["discover"]["err"]) < np.array(res["gplearn"]["err"]))
        out.append(
            f"\ndiscover lower LOO error than gplearn (equal wall time) in {100 * w:.0f} % of groups"
        )
    return out


# ----------------------------------------------------------------------------- speed
def speed() -> str:
    X, y, _, _, _ = planted(7, 200)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        d = discover(X, y, max_terms=10)
        ts.append(time.perf_counter() - t0)
    return (f"discover on 200 rows x {len(d.candidates)} candidate terms, max 10 terms: "
            f"{min(ts):.2f} s (best of 3), {d.n_fits} NNLS fits")  # fmt: skip


def space_speed() -> list[str]:
    """A discovered model in a ConfigSpace: native (models=, the C++ term-sum template) against
    the scorer path (scorers=, numpy on batches of valid points) and the derived expression, on
    the same space in the same run (best of 3 each); every point has its own model inputs (the
    lengths are axes), so nothing is tabulated."""
    from energycore import ConfigSpace

    X, y, _, _, _ = planted(7, 200)
    m = discover(X, y, max_terms=8).best
    space = ConfigSpace(
        {"tp": [1, 2, 4, 8], "pp": [1, 2, 4, 8], "batch": ConfigSpace.powers_of_two(1, 512),
         "input_len": list(range(64, 4096, 64)), "output_len": list(range(32, 2048, 32))},
        constraints=["tp * pp <= 8"],
    )  # fmt: skip
    s2 = ConfigSpace(
        {a.name: list(a.values) for a in space.axes},
        constraints=["tp * pp <= 8"],
        derived={"e": m.to_expression()},
    )
    runs = {
        "models= (C++ term-sum template)": lambda: space.argmin("energy_j", models=m),
        "derived= (C++ expression)": lambda: s2.argmin("e"),
        "scorers= (numpy predict on batches)": lambda: space.argmin("e", scorers={"e": m}),
    }
    out = [f"ConfigSpace.argmin over {space.size:,} points ({m.n_terms}-term discovered form):", "",
           "| path | time (s) | vs models= |", "|---|---:|---:|"]  # fmt: skip
    ts, picks = {}, set()
    for name, f in runs.items():
        best = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = f()
            best.append(time.perf_counter() - t0)
        ts[name] = min(best)
        picks.add(r.index)
    base = ts[next(iter(runs))]
    out += [f"| {k} | {v:.3f} | {v / base:.1f}x |" for k, v in ts.items()]
    out.append(f"\nsame argmin on every path: {len(picks) == 1}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-gplearn", action="store_true")
    ap.add_argument("--only", choices=("a", "b", "c", "speed", "space"))
    ap.add_argument("--prof-rows", type=int, default=200, help="(b) profiling-set rows")
    ap.add_argument("--free", default="", help="(b) comma-separated free-exponent variables")
    ap.add_argument("--monotone", action="store_true", help="(b) monotone_batch constraint")
    ap.add_argument("--max-terms", type=int, default=12, help="(b) largest form searched")
    ap.add_argument("--deploy-cv", action="store_true",
                    help="(b) front entry chosen per deployment by CV on its rows (Discovery.refit)")  # fmt: skip
    args = ap.parse_args()
    gp = not args.no_gplearn
    t0 = time.perf_counter()
    parts = {"speed": lambda: [speed()], "a": lambda: eval_planted(args.quick, gp),
             "b": lambda: eval_simulator(args.quick, 0, args.prof_rows,
                                        tuple(v for v in args.free.split(",") if v), args.monotone,
                                        args.max_terms, args.deploy_cv),
             "c": lambda: eval_real(gp, args.quick), "space": space_speed}  # fmt: skip
    for k, f in parts.items():
        if args.only and k != args.only:
            continue
        print(f"## ({k})")
        print("\n".join(f()))
        print(f"[{time.perf_counter() - t0:.0f} s]\n", flush=True)


if __name__ == "__main__":
    main()
