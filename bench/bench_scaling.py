"""How cost grows with size: the energy fit, enumeration, GBDT training and Selector queries.

Four sections, each a table of time against problem size, with an anchor measured in the same
run where one applies:

- **fit**: ``EnergyModel.fit`` (12 coefficients, soft-L1 loss, bounds, one start from a
  perturbed truth) on 50 -> 10^5 rows, against ``scipy.optimize.least_squares`` (trf, analytic
  Jacobian, same loss, start and bounds); final costs side by side.
- **enumerate**: ``ConfigSpace.argmin`` of the energy per request over 10^3 -> 10^8
  configurations (tp x pp x batch x a user knob, two constraints, one thread), with memory:
  the process's peak RSS after the first query (``resource.getrusage``; it includes the
  transient copies of the axes made while the engine is built), the RSS with the engine built
  once freed heap is given back (``malloc_trim``), the peak RSS during the timed queries alone
  (``VmHWM`` reset through ``/proc/self/clear_refs``: flat when a query's memory does not grow
  with the space or the valid points) and the peak of Python-side allocations during a query
  (``tracemalloc``). Run first, so that the other sections' arrays do not set the marks.
- **gbdt**: ``GradientBoosting`` training (leaf-wise, 31 leaves, 100 trees, LightGBM's
  defaults; 20 features) on 10^3 -> 10^6 rows with ``n_jobs=2``, against LightGBM with the same
  parameters and ``n_jobs=2`` where it is installed; the two alternate within every repeat.
  Wall and CPU time, test RMSE of both.
- **selector**: ``Selector.best`` from Python over 10^2 -> 10^6 candidates (random workloads
  and limits; the median of a thousand queries), with the time to build the selector (a size
  whose build would exceed ``--selector-budget``, extrapolated linearly, is skipped and said so),
  on two spaces: tp x pp x batch x a knob that no model reads (candidates equal on the model's
  axes share their scores: the build scores 56 classes and expands them) and tp x pp x a long
  batch axis (every candidate scored on its own: the build's worst case). Each checked against
  ``ConfigSpace.argmin`` (a full scan, the anchor: median time of 20 of the queries).

Times are medians of ``--repeat`` runs. Other processes on a shared machine slow every column
(the load average is printed with each section); the ratios, measured in the same run, are the
figures to compare. ``--plot PATH`` writes the four curves (matplotlib, the ``plot`` extra).
Run:

    PYTHONPATH=python python bench/bench_scaling.py --quick     # < 1 min
    PYTHONPATH=python python bench/bench_scaling.py --plot docs/img/scaling.png
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from energycore import ConfigSpace, EnergyModel, GradientBoosting, Selector, _core

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.helpers import fitted, noisy_problem, table

Rows = list[dict[str, Any]]


def median_time(fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter):
    """Median of `repeat` timings of fn() on `clock`, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return statistics.median(times), out


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def peak_rss_mib() -> float:
    """High-water mark of the resident set of this process (Linux: KiB in ru_maxrss)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def rss_mib() -> float:
    """Resident set of this process now (Linux /proc; elsewhere the high-water mark)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def reset_peak_rss() -> bool:
    """Give freed heap back to the system (glibc ``malloc_trim``) and reset the high-water mark
    of the resident set (Linux >= 4.0: ``5`` to ``/proc/self/clear_refs``), so that the next
    :func:`hwm_mib` is the peak of what runs after. False where either is not available."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except (OSError, AttributeError):
        return False


def hwm_mib() -> float:
    """Peak resident set since the last :func:`reset_peak_rss` (Linux ``VmHWM``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return peak_rss_mib()


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title} ({load()})")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |", flush=True)


# ----------------------------------------------------------------------------------- fit
def bench_fit(sizes: list[int], repeat: int) -> Rows:
    from scipy.optimize import least_squares

    template = EnergyModel().template_name
    info = _core.template_info(template)["params"]
    lower = np.array([p["lower"] for p in info])
    upper = np.array([p["upper"] for p in info])
    out: Rows = []
    for n in sizes:
        X, y, theta = noisy_problem(7, n=n, noise=0.02, template=template)
        Xt = table(X)
        rng = np.random.default_rng(1007)
        x0 = np.clip(theta * np.exp(rng.normal(0, 0.1, theta.size)), lower, upper)

        def fun(t: np.ndarray, Xt: Any = Xt, y: np.ndarray = y) -> np.ndarray:
            return np.log(_core.template_value(template, Xt, t, 1) / y)

        def jac(t: np.ndarray, Xt: Any = Xt) -> np.ndarray:
            v = _core.template_value(template, Xt, t, 1)
            return _core.template_jacobian(template, Xt, t) / v[:, None]

        def ours(X: Any = X, y: np.ndarray = y, x0: np.ndarray = x0) -> float:
            m = EnergyModel(loss="soft_l1", f_scale=0.1, n_threads=1).fit(X, y, x0=x0)
            return float(m.fit_result_.cost)

        def anchor(x0: np.ndarray = x0, fun: Any = fun, jac: Any = jac) -> float:
            r = least_squares(fun, x0, jac=jac, bounds=(lower, upper), method="trf",
                              x_scale="jac", loss="soft_l1", f_scale=0.1)  # fmt: skip
            return float(r.cost)

        t_ours, c_ours = median_time(ours, repeat)
        t_ref, c_ref = median_time(anchor, max(3, repeat // 2))
        out.append({"n": n, "ours": t_ours, "ref": t_ref, "cost": (c_ours, c_ref)})
    print_table(
        "Energy fit (EnergyModel.fit, 12 coefficients, 1 thread) vs scipy least_squares trf",
        ["rows", "energycore (ms)", "scipy trf, analytic J (ms)", "scipy / energycore",
         "final cost energycore / scipy"],
        [[f"{r['n']:,}", f"{r['ours'] * 1e3:.3f}", f"{r['ref'] * 1e3:.2f}",
          f"{r['ref'] / r['ours']:.0f}x", f"{r['cost'][0]:.6g} / {r['cost'][1]:.6g}"]
         for r in out],
    )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- enumerate
def enumeration_space(n: int) -> ConfigSpace:
    """tp (4) x pp (3) x batch (10) x a user knob: about n configurations, two constraints."""
    knob = max(1, round(n / 120))
    axes = {
        "tp": [1, 2, 4, 8],
        "pp": [1, 2, 4],
        "batch": ConfigSpace.powers_of_two(1, 512),
        "knob": list(range(1, knob + 1)),
    }
    return ConfigSpace(axes, constraints=["tp * pp <= 8", "knob % tp == 0"], n_threads=1)


def bench_enumerate(sizes: list[int], repeat: int) -> Rows:
    models = list(fitted(1.0, seed=0))
    kw = {"models": models, "input_len": 512.0, "output_len": 256.0}
    limits = {"latency_s": ("<=", 8.0)}
    base = peak_rss_mib()
    out: Rows = []
    for n in sizes:
        space = enumeration_space(n)
        built = rss_mib()  # the axes themselves (a knob of up to 833k values) take room
        space.argmin("energy_per_request_j", subject_to=limits, **kw)  # warm: engine, models
        warm = peak_rss_mib()
        reset = reset_peak_rss()
        engine = rss_mib()  # the engine built (the axes' copies), freed heap given back
        t, res = median_time(
            lambda s=space: s.argmin("energy_per_request_j", subject_to=limits, **kw),
            repeat if space.size <= 10**7 else 1,
        )
        query_peak = hwm_mib() if reset else float("nan")
        tracemalloc.start()
        space.argmin("energy_per_request_j", subject_to=limits, **kw)
        py_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append({"n": space.size, "t": t, "valid": res.n_valid, "built": built,
                    "warm": warm, "engine": engine, "query_peak": query_peak,
                    "py": py_peak})  # fmt: skip
    print_table(
        f"Enumeration (ConfigSpace.argmin, 1 thread); peak RSS before the section {base:.0f} MiB",
        ["configurations", "valid", "time (ms)", "M configurations/s",
         "RSS with the space built (MiB)", "process peak RSS after the first query (MiB)",
         "RSS with the engine built, heap trimmed (MiB)", "peak RSS during the queries (MiB)",
         "Python allocations in a query, peak (KiB)"],
        [[f"{r['n']:,}", f"{r['valid']:,}", f"{r['t'] * 1e3:.2f}", f"{r['n'] / r['t'] / 1e6:.1f}",
          f"{r['built']:.0f}", f"{r['warm']:.0f}", f"{r['engine']:.0f}",
          f"{r['query_peak']:.0f}", f"{r['py'] / 1024:.0f}"] for r in out],
    )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------- gbdt
GBDT = {"n_estimators": 100, "learning_rate": 0.1, "reg_lambda": 1.0, "max_bin": 255,
        "growth": "leafwise", "num_leaves": 31, "max_depth": None, "min_child_samples": 20,
        "min_child_weight": 1e-3}  # fmt: skip


def gbdt_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows x 20 uniform features, Friedman-1 target plus unit noise (bench_gbdt.py's)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 20))
    f = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3]
         + 5 * X[:, 4])  # fmt: skip
    return X, f + rng.normal(size=n)


def bench_gbdt(sizes: list[int], repeat: int, threads: int) -> Rows:
    try:
        import lightgbm as lgb
    except ImportError:
        lgb = None
    Xt, yt = gbdt_data(20_000, seed=99)
    out: Rows = []
    for n in sizes:
        X, y = gbdt_data(n, seed=n)
        rep = repeat if n <= 100_000 else max(1, repeat // 3)
        runs: dict[str, list[tuple[float, float]]] = {"ours": [], "ref": []}
        models: dict[str, Any] = {}
        for _ in range(rep):  # alternate, so that both see the same machine load
            cases = {"ours": lambda: GradientBoosting(**GBDT, n_jobs=threads)}
            if lgb is not None:
                cases["ref"] = lambda: lgb.LGBMRegressor(
                    n_estimators=100, learning_rate=0.1, num_leaves=31, max_depth=-1,
                    reg_lambda=1.0, min_child_samples=20, min_child_weight=1e-3, max_bin=255,
                    n_jobs=threads, verbose=-1)  # fmt: skip
            for key, make in cases.items():
                m = make()
                t0, c0 = time.perf_counter(), time.process_time()
                m.fit(X, y)
                runs[key].append((time.perf_counter() - t0, time.process_time() - c0))
                models[key] = m
        row: dict[str, Any] = {"n": n}
        for key, rs in runs.items():
            if rs:
                row[key] = statistics.median(r[0] for r in rs)
                row[key + "_cpu"] = statistics.median(r[1] for r in rs)
                pred = models[key].predict(Xt)
                row[key + "_rmse"] = float(np.sqrt(np.mean((pred - yt) ** 2)))
        out.append(row)

    def cells(r: dict[str, Any]) -> list[str]:
        c = [f"{r['n']:,}", f"{r['ours']:.3f}", f"{r['ours_cpu']:.3f}"]
        if "ref" not in r:
            return [*c, "-", "-", "-", f"{r['ours_rmse']:.3f} / -"]
        return [*c, f"{r['ref']:.3f}", f"{r['ref_cpu']:.3f}", f"**{r['ours'] / r['ref']:.2f}**",
                f"{r['ours_rmse']:.3f} / {r['ref_rmse']:.3f}"]  # fmt: skip

    print_table(
        f"GBDT training (leaf-wise, 31 leaves, 100 trees, 20 features, n_jobs={threads}) vs "
        "LightGBM " + (lgb.__version__ if lgb is not None else "(not installed)"),
        ["rows", "energycore wall (s)", "energycore CPU (s)", "LightGBM wall (s)",
         "LightGBM CPU (s)", "wall ratio", "test RMSE energycore / LightGBM"],
        [cells(r) for r in out],
    )  # fmt: skip
    return out


# ------------------------------------------------------------------------------ selector
def selector_spaces(n: int) -> dict[str, ConfigSpace]:
    """About n candidates: with a knob no model reads, and with every axis read by the models."""
    knob = max(1, round(n / 56))
    return {
        "knob": ConfigSpace({"tp": [1, 2, 4, 8], "pp": [1, 2],
                             "batch": ConfigSpace.powers_of_two(1, 64),
                             "knob": list(range(knob))}),
        "all": ConfigSpace({"tp": [1, 2, 4, 8], "pp": [1, 2],
                            "batch": list(range(1, max(1, round(n / 8)) + 1))}),
    }  # fmt: skip


def bench_selector(sizes: list[int], queries: int, budget_s: float) -> Rows:
    models = list(fitted(1.0, seed=0))
    rng = np.random.default_rng(0)
    qs = [(float(rng.integers(1, 8192)), float(rng.integers(1, 2048)),
           float(rng.uniform(0.5, 30)), float(rng.uniform(200, 6000))) for _ in range(queries)]  # fmt: skip
    out: Rows = []
    last: dict[str, tuple[int, float]] = {}
    for n in sizes:
        row: dict[str, Any] = {"n": n}
        for kind, space in selector_spaces(n).items():
            if kind in last and last[kind][1] * n / last[kind][0] > budget_s:
                print(f"selector ({kind}): {n:,} candidates skipped (build predicted at "
                      f"{last[kind][1] * n / last[kind][0]:.0f} s > --selector-budget "
                      f"{budget_s:g} s)")  # fmt: skip
                continue
            t0 = time.perf_counter()
            sel = Selector(space, models=models)
            build = time.perf_counter() - t0
            scans = []
            for q in qs[:20]:  # the fast path agrees with a full query (the anchor)
                a = sel.best(*q)
                t1 = time.perf_counter()
                b = space.argmin(sel.objective, subject_to={"latency_s": ("<=", q[2]),
                                 "power_w": ("<=", q[3])}, models=models, input_len=q[0],
                                 output_len=q[1])  # fmt: skip
                scans.append(time.perf_counter() - t1)
                assert (a.index, a.nearest_index) == (b.index, b.nearest_index), (kind, n, q)
            per = []
            for q in qs:
                t1 = time.perf_counter()
                sel.best(*q)
                per.append(time.perf_counter() - t1)
            last[kind] = (sel.n_candidates, build)
            cells = (len(sel._lin_edges) - 1) * (len(sel._lout_edges) - 1)
            row.update({f"{kind}_n": sel.n_candidates, f"{kind}_build": build,
                        f"{kind}_query": statistics.median(per), f"{kind}_cells": cells,
                        f"{kind}_argmin": statistics.median(scans)})  # fmt: skip
            del sel
        if len(row) > 1:
            out.append(row)

    def cells(r: dict[str, Any], kind: str) -> list[str]:
        if f"{kind}_n" not in r:
            return ["-", "-", "-", "-", "-"]
        return [f"{r[f'{kind}_n']:,}", str(r[f"{kind}_cells"]),
                f"{r[f'{kind}_build'] * 1e3:,.0f}", f"{r[f'{kind}_query'] * 1e6:.2f}",
                f"{r[f'{kind}_argmin'] / r[f'{kind}_query']:,.0f}x"]  # fmt: skip

    print_table(
        f"Selector.best from Python ({queries} random workloads and limits, median); "
        "knob: a knob no model reads; all: every candidate scored on its own",
        ["candidates (knob)", "cells", "build (ms)", "best() (us)", "argmin / best()",
         "candidates (all)", "cells", "build (ms)", "best() (us)", "argmin / best()"],
        [cells(r, "knob") + cells(r, "all") for r in out],
    )  # fmt: skip
    for r in out:  # the plot's x
        r["query"] = r.get("knob_query", r.get("all_query"))
    return out


# ---------------------------------------------------------------------------------- plot
def plot(path: str, res: dict[str, Rows]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - the plot extra is optional
        raise SystemExit(f"--plot needs matplotlib (pip install 'energycore[plot]'): {e}") from e
    fig, axs = plt.subplots(1, 4, figsize=(13, 3.2))
    spec = [
        ("fit", "energy fit", "rows", [("ours", "energycore"), ("ref", "scipy trf")]),
        ("enumerate", "enumeration", "configurations", [("t", "energycore")]),
        ("gbdt", "GBDT training, 2 threads", "rows", [("ours", "energycore"), ("ref", "LightGBM")]),
        ("selector", "Selector", "candidates",
         [("knob_query", "best(), knob space"), ("all_query", "best(), all scored"),
          ("knob_build", "build, knob space"), ("all_build", "build, all scored")]),
    ]  # fmt: skip
    for ax, (key, title, xlabel, lines) in zip(axs, spec):
        rows = res.get(key, [])
        for field, label in lines:
            nkey = field.split("_")[0] + "_n" if key == "selector" else "n"
            pts = [(r[nkey], r[field]) for r in rows if field in r]
            if pts:
                ax.loglog(*zip(*pts), marker="o", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    axs[0].set_ylabel("seconds")
    fig.suptitle(f"bench_scaling.py on {os.cpu_count()} CPUs, {load()} (other processes slow "
                 "every curve; LightGBM's spinning threads most)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    print(f"\nplot written to {path} ({os.path.getsize(path) / 1024:.0f} KiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (< 1 min)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per timing (median kept)")
    ap.add_argument("--threads", type=int, default=2, help="n_jobs of both GBDT libraries")
    ap.add_argument("--only", choices=["fit", "enumerate", "gbdt", "selector"], action="append",
                    help="run only these sections (repeatable)")  # fmt: skip
    ap.add_argument("--gbdt-max", type=int, default=10**6, help="largest GBDT training set")
    ap.add_argument("--selector-budget", type=float, default=120.0,
                    help="skip Selector sizes whose build would take longer (s, extrapolated)")  # fmt: skip
    ap.add_argument("--plot", metavar="PATH", help="write the curves to this image (matplotlib)")
    args = ap.parse_args()
    if args.repeat < 1:
        raise SystemExit("--repeat: must be at least 1")
    quick = args.quick
    repeat = min(args.repeat, 3) if quick else args.repeat

    def decades(lo: int, hi: int) -> list[int]:
        return [10**k for k in range(lo, hi + 1)]

    sizes = {
        "enumerate": decades(3, 6 if quick else 8),
        "fit": [50, 1_000, 10_000] if quick else [50, 1_000, 10_000, 100_000],
        "gbdt": [n for n in decades(3, 4 if quick else 6) if n <= args.gbdt_max],
        "selector": decades(2, 3 if quick else 6),
    }
    only = set(args.only or sizes)
    print(f"bench_scaling: {os.cpu_count()} CPUs, {load()}, repeat {repeat}")
    res: dict[str, Rows] = {}
    t0 = time.perf_counter()
    if "enumerate" in only:  # first: the RSS high-water mark is the process's
        res["enumerate"] = bench_enumerate(sizes["enumerate"], repeat)
    if "fit" in only:
        res["fit"] = bench_fit(sizes["fit"], repeat)
    if "gbdt" in only:
        res["gbdt"] = bench_gbdt(sizes["gbdt"], repeat, args.threads)
    if "selector" in only:
        res["selector"] = bench_selector(
            sizes["selector"], 300 if quick else 1000, args.selector_budget
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s ({load()})")
    if args.plot:
        plot(args.plot, res)


if __name__ == "__main__":
    main()
