"""Transfer to unseen hardware (issue 13): tuning scorers, the warm-started Tuner, the energy model.

1. **Scorers**, leave-one-GPU-out on benchmark-hub-convolution (A100, A6000, MI250X, W7800; the
   same 4 362 configurations): ``TransferScorer`` from the three other GPUs plus k random target
   measurements (k = 0, 5, 10, 20, 50; ``--seeds`` samples each) against params-only transfer (one
   model on the pooled sources), a target-only model on the k rows (and on 200) and 5 random
   picks. Also "active": the k target rows chosen by the scorer itself in rounds of 5 (the top
   of its utility not yet measured), the final top 5 ranking measured rows by their values.
   Reported: Spearman over the valid configurations, top-1 / top-5 recall of the true best,
   top-5 score (best true time / best true time among the 5 predicted best; 0 if all fail).
   The dedispersion set of ../shared/data has one GPU (A100) only: no transfer to evaluate.
2. **Tuner** warm-started from the other three GPUs (``Tuner(..., prior=...)``) vs cold start:
   evaluations to the top 1 % / 0.1 % of the held-out GPU (budget 400, batch 16), the prior at
   a fixed weight and adaptive (the default), and a cold start told the sources' best
   configuration first (does one good row from the sources trap the search?).
3. **Energy model**: ML.ENERGY v3 groups (task, model) with both H100 and B200 (>= 6 rows on
   the source, so it can be fitted), both directions: fit on the source GPU, transfer
   (``transfer_model``), refit with 0 / 5 / 10 target rows as prior (``fit_with_prior``) vs a fit
   on the same target rows alone, vs a fit on half the target group. Top-1 = the configuration
   with the least predicted energy per output token is the measured best; regret = its measured
   energy per token over the best's, minus 1. The same on the simulator's six GPUs (SIMULATED).

    PYTHONPATH=python python bench/eval_transfer.py                       # ~10 min here
    PYTHONPATH=python python bench/eval_transfer.py --seeds 50 --tuner-seeds 25   # full
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONV = ["block_size_x", "block_size_y", "tile_size_x", "tile_size_y", "read_only",
        "use_padding", "use_shmem", "use_cmem", "filter_height", "filter_width"]  # fmt: skip
GPUS = ["A100", "A6000", "MI250X", "W7800"]
KS = (0, 5, 10, 20, 50)


def load_conv():
    import pandas as pd

    d = pd.read_csv(DATA / "benchmark-hub-convolution" / "convolution_milo_cache.csv")
    d = d.sort_values(["gpu", *CONV], kind="stable")
    X = d[d.gpu == "A100"][CONV].reset_index(drop=True)
    y = {}
    for g in GPUS:
        dg = d[d.gpu == g]
        assert (dg[CONV].to_numpy() == X.to_numpy()).all(), "GPUs must share the configurations"
        y[g] = np.where(dg.status == "ok", dg.time, np.nan).astype(float)
    return X, y, d


def metrics(order: np.ndarray, score: np.ndarray | None, yt: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    ok = np.isfinite(yt)
    best = int(np.nanargmin(yt))
    v = yt[order[:5]]
    v = v[np.isfinite(v)]
    out = {
        "top5_score": float(np.nanmin(yt) / v.min()) if v.size else 0.0,
        "top1": float(order[0] == best),
        "top5": float(best in order[:5]),
    }
    if score is not None:
        out["spearman"] = float(spearmanr(score[ok], -yt[ok])[0])
    return out


def fmt(rows: list[dict[str, float]]) -> str:
    s = np.array([r["top5_score"] for r in rows])
    sp = [r["spearman"] for r in rows if "spearman" in r]
    spt = f"{np.median(sp):.2f}" if sp else "-"
    return (f"{spt} / {np.mean([r['top1'] for r in rows]):.2f} / "
            f"{np.mean([r['top5'] for r in rows]):.2f} / {np.median(s):.2f} ({(s >= 0.9).mean():.0%})")  # fmt: skip


def eval_scorers(seeds: int, gpus: list[str] | None = None) -> None:
    from energycore.learn.scorers import PerformanceScorer
    from energycore.learn.transfer import TransferScorer
    from energycore.tune import CacheReplay

    X, y, d = load_conv()
    if gpus is None:
        gpus = GPUS
    A = X.to_numpy(float)
    n = len(A)
    print("\n## Scorers: leave-one-GPU-out, benchmark-hub-convolution")
    print("cells: median Spearman / top-1 recall / top-5 recall / median top-5 score "
          f"(share of {seeds} seeds with top-5 score >= 0.9)\n")  # fmt: skip
    print("| held-out | method | " + " | ".join(f"k={k}" for k in KS) + " |")
    print("|---|---|" + "---|" * len(KS))
    summary = {}
    for tg in gpus:
        t0 = time.perf_counter()
        src = {g: (X, y[g]) for g in GPUS if g != tg}
        ts = TransferScorer().fit_sources(src)
        rep = CacheReplay.from_frame(d[d.gpu == tg].drop(columns="gpu"), CONV, device_name=tg,
                                     kernel_name="convolution", problem_size=[4096, 4096])  # fmt: skip
        S = ts.source_scores(X)
        yt = y[tg]
        # params-only transfer: one model on the pooled sources (log time z-scored per source)
        Xp, yp = [], []
        for g in src:
            ok = np.isfinite(y[g])
            lg = -np.log(y[g][ok])
            Xp.append(A[ok])
            yp.append((lg - lg.mean()) / lg.std())
        pooled = PerformanceScorer("squared_error", n_estimators=100, max_depth=6,
                                   subsample=0.8, n_jobs=1).fit(np.vstack(Xp), np.concatenate(yp))  # fmt: skip
        ps = pooled.predict(A)
        rows: dict[str, list[str]] = {m: [] for m in ("transfer", "transfer, active",
                                                       "warm tuner", "params-only",
                                                       "target-only", "random")}  # fmt: skip
        for k in KS:
            res: dict[str, list[dict[str, float]]] = {m: [] for m in rows}
            for seed in range(seeds if k else 1):
                rng = np.random.default_rng([seed, k])
                idx = rng.choice(n, size=k, replace=False)
                ts.fit_target(A[idx], yt[idx], scores=S[idx])
                u = ts.utility(A)
                res["transfer"].append(metrics(np.argsort(-u, kind="stable"), u, yt))
                res["transfer, active"].append(active(ts, A, S, yt, k, seed))
                if k >= 5:
                    res["warm tuner"].append(warm_tuner(ts, rep, A, S, yt, k, seed))
                res["params-only"].append(metrics(np.argsort(-ps), ps, yt))
                if k >= 5:
                    ok = np.isfinite(yt[idx])
                    if ok.sum() >= 2:
                        m = PerformanceScorer("squared_error", n_estimators=50, max_depth=3,
                                              min_child_samples=2, n_jobs=1).fit(A[idx][ok], -np.log(yt[idx][ok]))  # fmt: skip
                        sc = m.predict(A)
                        res["target-only"].append(metrics(np.argsort(-sc), sc, yt))
                res["random"].append(metrics(rng.choice(n, size=5, replace=False), None, yt))
            for mname in rows:
                rows[mname].append(fmt(res[mname]) if res[mname] else "-")
            if k == 20:
                summary[tg] = res
        # target-only at k = 200
        t200 = []
        for seed in range(seeds):
            idx = np.random.default_rng([seed, 200]).choice(n, size=200, replace=False)
            ok = np.isfinite(yt[idx])
            m = PerformanceScorer("squared_error", n_estimators=50, max_depth=3,
                                  min_child_samples=2, n_jobs=1).fit(A[idx][ok], -np.log(yt[idx][ok]))  # fmt: skip
            sc = m.predict(A)
            t200.append(metrics(np.argsort(-sc), sc, yt))
        for mname, cells in rows.items():
            print(f"| {tg} | {mname} | " + " | ".join(cells) + " |")
        print(f"| {tg} | target-only, k=200 | {fmt(t200)} |" + " |" * (len(KS) - 1))
        print(f"<!-- {tg}: {time.perf_counter() - t0:.1f} s -->", flush=True)


def active(ts, A: np.ndarray, S: np.ndarray, yt: np.ndarray, k: int, seed: int) -> dict:
    """k target rows chosen by the scorer (rounds of 5), final top 5 by measured-or-predicted."""
    measured: list[int] = []
    ts.fit_target(A[:0], yt[:0], scores=S[:0])
    while len(measured) < k:
        u = ts.utility(A)
        u[measured] = -np.inf
        m = min(5, k - len(measured))
        measured += np.argsort(-u, kind="stable")[:m].tolist()
        idx = np.asarray(measured)
        ts.fit_target(A[idx], yt[idx], scores=S[idx])
    u = ts.utility(A)
    if measured:
        idx = np.asarray(measured)
        good = np.isfinite(yt[idx])
        # measured rows rank by their values, above every unmeasured one they beat
        if ts.n_target_ >= 4:
            g = ts.predict(A, scores=S)
            g[idx] = np.where(good, -np.log(np.where(good, yt[idx], 1.0)), -np.inf)
            u = g
        else:
            u[idx[~good]] = -np.inf
    del seed
    return metrics(np.argsort(-u, kind="stable"), u, yt)


def warm_tuner(ts, rep, A: np.ndarray, S: np.ndarray, yt: np.ndarray, k: int, seed: int) -> dict:
    """k target rows chosen by the warm-started Tuner (``prior=`` the source-fitted scorer,
    budget k, batch 5); predicted top 5 = the measured rows by their values, then the
    transferred score adapted to them."""
    from energycore.learn.tuner import Tuner

    t = Tuner(rep, budget=k, batch=5, seed=seed, prior=ts)
    asked: list[int] = []
    while not t.done:
        c = t.ask()
        t.tell(c, [rep(x) for x in c])
        asked += [rep.index_of(x) for x in c]
    idx = np.asarray(asked, dtype=np.intp)
    ts.fit_target(A[idx], yt[idx], scores=S[idx])
    u = ts.utility(A)
    good = np.isfinite(yt[idx])
    # measured rows first, fastest first (above every unmeasured row); failed ones last
    u[idx] = np.where(good, 1e6 - np.log(np.where(good, yt[idx], 1.0)), -np.inf)
    return metrics(np.argsort(-u, kind="stable"), None, yt)


def evals_to(values: np.ndarray, thr: float) -> float:
    hit = np.flatnonzero(np.isfinite(values) & (values <= thr))
    return float(hit[0] + 1) if hit.size else np.inf


def _evals(x: float, budget: int) -> str:
    return f"{x:.0f}" if np.isfinite(x) else f"> {budget}"


def eval_tuner(
    seeds: int, budget: int, gpus: list[str] | None = None, extra: dict | None = None
) -> None:
    from energycore.learn.transfer import TransferScorer
    from energycore.learn.tuner import Tuner
    from energycore.tune import CacheReplay

    X, y, d = load_conv()
    reps = {g: CacheReplay.from_frame(d[d.gpu == g].drop(columns="gpu"), CONV, device_name=g,
                                      kernel_name="convolution", problem_size=[4096, 4096])
            for g in GPUS}  # fmt: skip
    print(f"\n## Tuner: warm start from the other three GPUs vs cold, budget {budget}, "
          f"batch 16, {seeds} seeds\n")  # fmt: skip
    print("cells: median evaluations to the top 1 % / 0.1 % (share of seeds reaching 0.1 %); "
          "fixed: the prior's weight 50 / (n + 50) (prior_adapt=False, prior_explore=0); "
          "adaptive: the defaults; cold + top told: a cold start told the sources' consensus "
          "best configuration before its first batch\n")  # fmt: skip
    extra = extra or {}
    if extra:
        print(f"warm columns with the extra Tuner options {extra}\n")
    print("| held-out | cold | warm, fixed | warm, adaptive | warm / cold (0.1 %) fixed -> "
          "adaptive | cold + top told | round overhead cold / fixed / adaptive |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    modes = {"cold": None, "fixed": {"prior_adapt": False, "prior_explore": 0.0, **extra},
             "adaptive": dict(extra), "told": None}  # fmt: skip
    for tg in gpus or GPUS:
        rep = reps[tg]
        v = rep.values()
        ok = np.sort(v[np.isfinite(v)])
        t1, t01 = ok[int(0.01 * ok.size) - 1], ok[max(int(0.001 * ok.size) - 1, 0)]
        prior = {g: reps[g] for g in GPUS if g != tg}
        consensus = TransferScorer().fit_sources({g: (X, y[g]) for g in prior})
        top_cfg = X.iloc[int(np.argmax(consensus.predict(X)))].to_dict()
        out = {}
        for mode, kw in modes.items():
            e1, e01, rs = [], [], []
            for seed in range(seeds):
                if kw is None:
                    t = Tuner(rep, budget=budget, batch=16, seed=seed)
                else:
                    t = Tuner(rep, budget=budget, batch=16, seed=seed, prior=prior, **kw)
                order = []
                if mode == "told":
                    t.tell([top_cfg], [rep(top_cfg)])
                    order.append(rep.index_of(top_cfg))
                while not t.done:
                    c = t.ask()
                    t.tell(c, [rep(x) for x in c])
                    order += [rep.index_of(x) for x in c]
                vals = v[np.asarray(order)]
                e1.append(evals_to(vals, t1))
                e01.append(evals_to(vals, t01))
                rs.append(float(np.mean(t.round_seconds_)))
            out[mode] = (np.median(e1), np.median(e01), np.mean(np.isfinite(e01)), np.mean(rs))

        def cell(m, out=out):
            a, b, share, _ = out[m]
            return f"{_evals(a, budget)} / {_evals(b, budget)} ({share:.0%})"

        def ratio(m, out=out):
            c = out["cold"][1]
            return f"{out[m][1] / c:.2f}" if np.isfinite(c) else "-"

        print(
            f"| {tg} | {cell('cold')} | {cell('fixed')} | {cell('adaptive')} | "
            f"{ratio('fixed')} -> {ratio('adaptive')} | {cell('told')} | "
            f"{out['cold'][3] * 1e3:.0f} / {out['fixed'][3] * 1e3:.0f} / "
            f"{out['adaptive'][3] * 1e3:.0f} ms |",
            flush=True,
        )


# ---------------------------------------------------------------- energy model

PRIOR_KW: dict = {}
FALLBACK = {"t2": 0.0, "t3": 0.0, "t5": 0.0, "t8": 0.0, "t9": 0.0, "t11": 0.0}


def fit_alone(X: dict, y: np.ndarray):
    """A target-only fit; with too few rows for the free coefficients, a smaller model."""
    from energycore.fit.energy import EnergyModel

    try:
        return EnergyModel(n_threads=1, fixed={"t2": 0.0}).fit(X, y)
    except ValueError:
        try:
            return EnergyModel(n_threads=1, fixed=FALLBACK).fit(X, y)
        except ValueError:
            return None


def v3_groups():
    import pandas as pd

    d = pd.read_csv(DATA / "mlenergy-leaderboard-v3-llm" / "llm_configs.csv")

    def feats(g):
        b = np.maximum(1.0, np.round(g.avg_batch_size.to_numpy(float)))
        X = {"tp": g.num_gpus.to_numpy(float), "pp": np.ones(len(g)), "batch": b,
             "input_len": np.full(len(g), 400.0),
             "output_len": np.maximum(1.0, np.round(g.avg_output_len.to_numpy(float)))}  # fmt: skip
        return (
            X,
            g.energy_per_request_joules.to_numpy(float) * b,
            g.energy_per_token_joules.to_numpy(float),
        )

    for (task, model), grp in d.groupby(["task", "model_id"]):
        if set(grp.gpu_model) != {"H100", "B200"}:
            continue
        yield f"{task} {model}", {g: feats(grp[grp.gpu_model == g]) for g in ("H100", "B200")}


def sub(X: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in X.items()}


def pick_eval(model, X: dict, ept: np.ndarray) -> tuple[float, float]:
    if model is None:
        return 0.0, np.nan
    pred = model.predict(X) / (X["batch"] * X["output_len"])
    j = int(np.argmin(pred))
    return float(ept[j] == ept.min()), float(ept[j] / ept.min() - 1.0)


def eval_energy(seeds: int) -> None:
    from energycore.fit.energy import EnergyModel
    from energycore.fit.transfer import fit_with_prior, transfer_model

    print(f"\n## Energy model: ML.ENERGY v3, H100 <-> B200 (same task and model), {seeds} seeds\n")
    res: dict[str, list[tuple[float, float]]] = {}
    n_groups = 0
    for _name, g in v3_groups():
        for src, tgt in (("H100", "B200"), ("B200", "H100")):
            Xs, ys, _ = g[src]
            Xt, yt, ept = g[tgt]
            nt = len(yt)
            if len(ys) < 6 or nt < 6:
                continue
            try:
                ms = EnergyModel(n_threads=1, fixed={"t2": 0.0}).fit(Xs, ys)
            except ValueError:
                continue
            n_groups += 1
            prior = transfer_model(ms, tgt, from_gpu=src)
            res.setdefault("source model, unscaled (k=0)", []).append(pick_eval(ms, Xt, ept))
            res.setdefault("transferred prior (k=0)", []).append(pick_eval(prior, Xt, ept))
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                perm = rng.permutation(nt)
                half = perm[: nt // 2]
                res.setdefault("target alone, half the group", []).append(
                    pick_eval(fit_alone(sub(Xt, half), yt[half]), Xt, ept))  # fmt: skip
                for k in (5, 10):
                    if k >= nt:
                        continue
                    idx = perm[:k]
                    m = fit_with_prior(EnergyModel(n_threads=1, fixed={"t2": 0.0}),
                                       sub(Xt, idx), yt[idx], prior, **PRIOR_KW)  # fmt: skip
                    res.setdefault(f"prior + {k} target rows", []).append(pick_eval(m, Xt, ept))
                    res.setdefault(f"target alone, {k} rows", []).append(
                        pick_eval(fit_alone(sub(Xt, idx), yt[idx]), Xt, ept))  # fmt: skip
    print(f"{n_groups} (group, direction) pairs with >= 6 rows on both GPUs\n")
    print("| method | n | Top-1 | mean regret | median regret | no fit |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, v in res.items():
        a = np.array(v)
        reg = a[:, 1]
        print(f"| {k} | {len(a)} | {a[:, 0].mean():.1%} | {np.nanmean(reg):.2%} | "
              f"{np.nanmedian(reg):.2%} | {np.isnan(reg).sum()} |")  # fmt: skip


def eval_sim(seeds: int) -> None:
    from energycore.fit.energy import EnergyModel
    from energycore.fit.transfer import fit_with_prior, transfer_model
    from energycore.simulate import Node

    gpus = ["A100", "H100", "H200", "B200", "L40S", "MI300X"]
    model_name, n_gpus = "llama-3.1-8b", 8
    print(f"\n## Energy model on the simulator (SIMULATED): {model_name}, {n_gpus} GPUs, "
          f"all 30 ordered pairs of {', '.join(gpus)}, {seeds} seeds\n")  # fmt: skip
    tp = np.array([1, 2, 4, 8], dtype=float)
    batch = 2.0 ** np.arange(0, 10)
    T, B = np.meshgrid(tp, batch)
    grid = {"tp": T.ravel(), "pp": np.ones(T.size), "batch": B.ravel(),
            "input_len": np.full(T.size, 512.0), "output_len": np.full(T.size, 256.0)}  # fmt: skip
    res: dict[str, list[tuple[float, float]]] = {}
    fitted = {}
    truth = {}
    for g in gpus:
        node = Node(g, model_name, n_gpus=n_gpus, noise=0.03, seed=0)
        rng = np.random.default_rng(1)
        m = 60
        plan = {"tp": rng.choice(tp, m), "pp": np.ones(m), "batch": rng.choice(batch, m),
                "input_len": rng.choice([128.0, 512.0, 2048.0], m),
                "output_len": rng.choice([64.0, 256.0, 1024.0], m)}  # fmt: skip
        r = node.run(plan)
        ok = np.asarray(r["valid"], dtype=bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted[g] = EnergyModel(n_threads=1).fit(sub(plan, np.flatnonzero(ok)),
                                                     np.asarray(r["energy_j"])[ok])  # fmt: skip
        t = node.run(grid, noise=False)
        valid = np.asarray(t["valid"], dtype=bool)
        e = np.where(valid, np.asarray(t["energy_j"]) / grid["batch"], np.inf)
        truth[g] = (node, e)
    for s in gpus:
        for tg in gpus:
            if s == tg:
                continue
            node, e = truth[tg]
            cand = np.flatnonzero(np.isfinite(e))
            Xc = sub(grid, cand)
            ec = e[cand]

            def ev(mdl, Xc=Xc, ec=ec):
                if mdl is None:
                    return 0.0, np.nan
                p = mdl.predict(Xc) / Xc["batch"]
                j = int(np.argmin(p))
                return float(ec[j] == ec.min()), float(ec[j] / ec.min() - 1.0)

            prior = transfer_model(fitted[s], tg, from_gpu=s)
            res.setdefault("source model, unscaled (k=0)", []).append(ev(fitted[s]))
            res.setdefault("transferred prior (k=0)", []).append(ev(prior))
            for seed in range(seeds):
                rng = np.random.default_rng([seed, 7])
                for k in (5, 10):
                    idx = rng.choice(cand.size, k, replace=False)
                    Xk = sub(Xc, idx)
                    yk = np.asarray(node.run(Xk)["energy_j"])
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        m = fit_with_prior(EnergyModel(n_threads=1), Xk, yk, prior)
                        res.setdefault(f"prior + {k} target rows", []).append(ev(m))
                        res.setdefault(f"target alone, {k} rows", []).append(ev(fit_alone(Xk, yk)))
    print("| method | n | Top-1 | mean regret | median regret | no fit |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, v in res.items():
        a = np.array(v)
        print(f"| {k} | {len(a)} | {a[:, 0].mean():.1%} | {np.nanmean(a[:, 1]):.2%} | "
              f"{np.nanmedian(a[:, 1]):.2%} | {np.isnan(a[:, 1]).sum()} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--tuner-seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--only", choices=["scorers", "tuner", "energy", "sim"], default=None)
    ap.add_argument("--tuner-kw", default="{}",
                    help="JSON object of extra Tuner options for the warm columns, e.g. "
                         "'{\"local\": 0.0}'")  # fmt: skip
    ap.add_argument("--gpus", default=",".join(GPUS),
                    help="held-out GPUs of the scorer and tuner sections (comma-separated)")  # fmt: skip
    a = ap.parse_args()
    gpus = [g for g in a.gpus.split(",") if g]
    bad = [g for g in gpus if g not in GPUS]
    if bad or not gpus:
        ap.error(f"--gpus: expected some of {','.join(GPUS)}, got {a.gpus!r}")
    try:
        extra = json.loads(a.tuner_kw)
    except json.JSONDecodeError as e:
        ap.error(f"--tuner-kw: not JSON ({e})")
    if not isinstance(extra, dict):
        ap.error(f"--tuner-kw: expected a JSON object, got {a.tuner_kw!r}")
    t0 = time.perf_counter()
    warnings.simplefilter("ignore")
    if a.only in (None, "scorers"):
        eval_scorers(a.seeds, gpus)
    if a.only in (None, "energy"):
        eval_energy(a.seeds)
    if a.only in (None, "sim"):
        eval_sim(min(a.seeds, 10))
    if a.only in (None, "tuner"):
        eval_tuner(a.tuner_seeds, a.budget, gpus, extra)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
