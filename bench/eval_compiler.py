"""Optimisation selection and phase ordering on Embench-IoT with clang/opt (issue 15, item 3).

1. Code size, per program: search the pipeline space (a level x a pass sequence x before/after)
   with each strategy at the same number of evaluations; IR instructions of the best verified
   pipeline relative to ``-Oz`` (geometric mean over programs), evaluations, failures.
2. Code size, leave one program out: the best pipelines the tuner found on each program form a
   candidate set; every candidate is measured on every program; for each held-out program the
   policy is the candidate with the best geometric-mean ratio to ``-Oz`` on the *other*
   programs (verified on all of them), applied to the held-out one.
3. Run time, leave one program out: a seeded sample of pipelines around ``-O2``/``-O3`` (plus
   the levels themselves) is timed on every program at a scale factor that runs ~0.1 s; the
   policy for a held-out program is the best geometric-mean speed-up over ``-O3`` on the
   others.

    python bench/eval_compiler.py                      # ~10 min on 2 shared cores
    python bench/eval_compiler.py --programs crc32 edn --budget 20 --rt-candidates 4

Run time is wall time of the whole process (least of ``--repeats`` runs), on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from energycore.compiler import Build, config_passes, find_toolchain, pipeline_space, search

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "embench-iot"
PROGRAMS = [
    "aha-mont64",
    "crc32",
    "edn",
    "huffbench",
    "matmult-int",
    "md5sum",
    "nettle-aes",
    "nettle-sha256",
]


def gmean(x: list[float]) -> float:
    x = [v for v in x if math.isfinite(v) and v > 0]
    return float(np.exp(np.mean(np.log(x)))) if x else math.nan


def key(passes: list[str]) -> str:
    return " ".join(passes)


def code_size(args: argparse.Namespace, builds: dict[str, Build]) -> dict[str, Any]:
    sp = pipeline_space(max_len=args.max_len, pool=args.pool)
    base: dict[str, dict[str, float]] = {}
    per: dict[str, dict[str, Any]] = {}
    for p, b in builds.items():
        base[p] = {lv: b.evaluate([lv])["ir_instructions"] for lv in ("O2", "O3", "Oz")}
        per[p] = {}
        for s in args.strategies:
            vals, fails, evals, secs, best = [], 0, 0, 0.0, None
            stages: list[str] = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                out = search(b, sp, strategy=s, budget=args.budget, batch=args.batch, seed=seed)
                secs += time.perf_counter() - t0
                vals.append(out["best_value"] / base[p]["Oz"])
                fails += out["failed"]
                stages += [str(x) for x in out["failures"]]
                evals += out["evaluations"]
                if best is None or out["best_value"] < best[0]:
                    best = (out["best_value"], out["best_passes"])
                if s == "tuner" and seed == 0:
                    ok = sorted(
                        (r["ir_instructions"], key(config_passes(c)))
                        for c, r in out["records"]
                        if r["status"] == "ok"
                    )
                    top: list[str] = []
                    for _, k in ok:
                        if k not in top:
                            top.append(k)
                    per[p]["_top"] = top[: args.policy_k]
            assert best is not None
            per[p][s] = {
                "ratio_vs_Oz": float(np.mean(vals)),
                "failed": fails,
                "failure_stages": stages,
                "evaluations": evals,
                "seconds": secs,
                "best": best[1],
            }
            print(f"  {p:14s} {s:12s} {np.mean(vals):.4f} x Oz  failed {fails}/{evals}", flush=True)
    # leave one program out
    cands = sorted({k for p in per for k in per[p].get("_top", [])} | {"Oz"})
    M = {}
    for p, b in builds.items():
        for k in cands:
            r = b.evaluate(k.split())
            M[(p, k)] = r["ir_instructions"] / base[p]["Oz"] if r["status"] == "ok" else math.inf
    lopo, lopo_fail = {}, 0
    for p in builds:
        others = [q for q in builds if q != p]
        score = {k: gmean([M[(q, k)] for q in others]) for k in cands
                 if all(math.isfinite(M[(q, k)]) for q in others)}  # fmt: skip
        pick = min(score, key=lambda k: score[k])
        lopo[p] = {"policy": pick, "ratio_vs_Oz": M[(p, pick)]}
        lopo_fail += not math.isfinite(M[(p, pick)])
    summary = {
        s: {
            "gmean_vs_Oz": gmean([per[p][s]["ratio_vs_Oz"] for p in builds]),
            "gmean_vs_O3": gmean(
                [per[p][s]["ratio_vs_Oz"] * base[p]["Oz"] / base[p]["O3"] for p in builds]
            ),
            "evaluations_per_program": args.budget,
            "failed": sum(per[p][s]["failed"] for p in builds),
            "evaluations": sum(per[p][s]["evaluations"] for p in builds),
            "seconds_per_search": float(np.mean([per[p][s]["seconds"] for p in builds]))
            / args.seeds,
        }
        for s in args.strategies
    }
    summary["O2"] = {"gmean_vs_Oz": gmean([base[p]["O2"] / base[p]["Oz"] for p in builds])}
    summary["O3"] = {"gmean_vs_Oz": gmean([base[p]["O3"] / base[p]["Oz"] for p in builds])}
    summary["leave-one-out policy"] = {
        "gmean_vs_Oz": gmean([v["ratio_vs_Oz"] for v in lopo.values()]),
        "failed_on_held_out": lopo_fail,
        "candidates": len(cands),
    }
    for p in per:
        per[p].pop("_top", None)
    return {"base": base, "per_program": per, "lopo": lopo, "summary": summary}


def run_time(args: argparse.Namespace, builds: dict[str, Build]) -> dict[str, Any]:
    sp = pipeline_space(max_len=4, levels=("O2", "O3"), pool=args.pool)
    cands = [["O3"], ["O2"], ["Os"]] + [
        config_passes(c) for c in sp.sample(args.rt_candidates, seed=args.seed_rt)
    ]
    keys = [key(c) for c in cands]
    T: dict[tuple[str, str], float] = {}
    timed = {}
    for p, b in builds.items():
        scale = b.calibrate(args.target_s, ["O3"])  # at scale 1 process start dominates
        with Build(p, b.root, toolchain=b.tc, scale=scale) as probe:
            scale = max(
                1, round(scale * args.target_s / probe.evaluate(["O3"], repeats=2)["run_s"])
            )
        with Build(p, b.root, toolchain=b.tc, scale=scale) as bt:
            for k, c in zip(keys, cands):
                r = bt.evaluate(c, repeats=args.repeats)
                T[(p, k)] = r["run_s"] if r["status"] == "ok" else math.inf
            # O3 again at the end: drift of the shared machine
            r = bt.evaluate(["O3"], repeats=args.repeats)
            T[(p, "O3")] = min(T[(p, "O3")], r["run_s"])
        timed[p] = {"scale": scale, "O3_s": T[(p, "O3")]}
        print(f"  {p:14s} scale {scale:5d}  O3 {T[(p, 'O3')]:.4f} s", flush=True)
    lopo = {}
    for p in builds:
        others = [q for q in builds if q != p]
        score = {k: gmean([T[(q, "O3")] / T[(q, k)] for q in others]) for k in keys
                 if all(math.isfinite(T[(q, k)]) for q in others)}  # fmt: skip
        pick = max(score, key=lambda k: score[k])
        lopo[p] = {"policy": pick, "speedup_vs_O3": T[(p, "O3")] / T[(p, pick)]}
    oracle = {p: max(T[(p, "O3")] / T[(p, k)] for k in keys) for p in builds}
    return {
        "timed": timed,
        "lopo": lopo,
        "summary": {
            "policy_gmean_speedup_vs_O3": gmean([v["speedup_vs_O3"] for v in lopo.values()]),
            "O2_gmean_speedup_vs_O3": gmean([T[(p, "O3")] / T[(p, "O2")] for p in builds]),
            "per_program_best_of_candidates": gmean(list(oracle.values())),
            "candidates": len(keys),
            "failed": sum(not math.isfinite(v) for v in T.values()),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", nargs="+", default=PROGRAMS)
    ap.add_argument("--strategies", nargs="+", default=["tuner", "random", "tuner+local"])
    ap.add_argument("--budget", type=int, default=50, help="evaluations per program search")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=6)
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--policy-k", type=int, default=3)
    ap.add_argument("--rt-candidates", type=int, default=12)
    ap.add_argument("--seed-rt", type=int, default=0)
    ap.add_argument("--target-s", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-runtime", action="store_true")
    ap.add_argument("--root", default=str(ROOT))
    ap.add_argument("--out", default="bench/eval_compiler.json")
    args = ap.parse_args()
    tc = find_toolchain()
    if tc is None:
        raise SystemExit("no LLVM toolchain: apt-get install clang-19 llvm-19")
    t0 = time.perf_counter()
    builds = {p: Build(p, args.root, toolchain=tc) for p in args.programs}
    print(f"LLVM {tc.version}, {len(builds)} programs, budget {args.budget}", flush=True)
    res: dict[str, Any] = {"llvm": tc.version, "args": vars(args)}
    res["code_size"] = code_size(args, builds)
    print(json.dumps(res["code_size"]["summary"], indent=1), flush=True)
    if not args.skip_runtime:
        res["run_time"] = run_time(args, builds)
        print(json.dumps(res["run_time"]["summary"], indent=1), flush=True)
    res["seconds"] = time.perf_counter() - t0
    for b in builds.values():
        b.close()
    Path(args.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"total {res['seconds']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
