"""Fit speed: energycore's C++ Levenberg-Marquardt against scipy.optimize.least_squares.

Same problem (the 12-coefficient energy model, 50 configurations, 2 % noise, log-ratio
residuals), same start, same bounds; prints median time per fit, final cost and the ratios,
the wrapper's cost over the C++ call and the load average, then the time of 1000 bootstrap
refits in one call. Run:

    PYTHONPATH=python python bench/bench_fit.py            # or after `pip install .[bench]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from energycore import EnergyModel, _core

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.helpers import noisy_problem, table


def timeit(fn: Callable[[], object], repeat: int, budget_s: float = 20.0) -> tuple[float, object]:
    """Median wall time of fn() over `repeat` runs (fewer if the budget runs out)."""
    times, out = [], None
    t_end = time.perf_counter() + budget_s
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > t_end and len(times) >= 3:
            break
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="number of problems")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument(
        "--many", type=int, default=0, help="only time fit_many on this many 50-row problems"
    )
    ap.add_argument("--many-repeat", type=int, default=3, help="runs of the array path (median)")
    args = ap.parse_args()
    if args.many:
        bench_many(args.many, args.many_repeat)
        return
    from scipy.optimize import least_squares

    template = EnergyModel().template_name  # the default, energy_v2
    info = _core.template_info(template)["params"]
    lower = np.array([p["lower"] for p in info])
    upper = np.array([p["upper"] for p in info])
    rows: dict[str, list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        X, y, theta = noisy_problem(seed, n=50, noise=0.02, template=template)
        Xt = table(X)
        rng = np.random.default_rng(1000 + seed)
        x0 = np.clip(theta * np.exp(rng.normal(0, 0.1, theta.size)), lower, upper)

        def fun(t, Xt=Xt, y=y):
            return np.log(_core.template_value(template, Xt, t, 1) / y)

        def jac(t, Xt=Xt):
            v = _core.template_value(template, Xt, t, 1)
            return _core.template_jacobian(template, Xt, t) / v[:, None]

        empty = np.empty(0)
        cases: dict[str, Callable[[], float]] = {
            "energycore LM (soft_l1, bounds, 1 start)": lambda X=X, y=y, x0=x0: EnergyModel(
                loss="soft_l1", f_scale=0.1, n_threads=1
            )
            .fit(X, y, x0=x0)
            .fit_result_.cost,
            "energycore LM, (n, 5) array input (soft_l1, bounds, 1 start)": lambda Xt=Xt, y=y, x0=x0: EnergyModel(
                loss="soft_l1", f_scale=0.1, n_threads=1
            )
            .fit(Xt, y, x0=x0)
            .fit_result_.cost,
            "energycore C++ call alone (_core.fit_template, 1 start)": lambda Xt=Xt, y=y, x0=x0, empty=empty: _core.fit_template(
                template, Xt, y, empty, [], empty, empty, empty, x0=x0, n_starts=1,
                n_threads=1, loss="soft_l1", f_scale=0.1,
            )["cost"],
            "energycore LM (soft_l1, bounds, 8 starts)": lambda X=X, y=y: EnergyModel(
                loss="soft_l1", f_scale=0.1, n_threads=1
            )
            .fit(X, y)
            .fit_result_.cost,
            "scipy trf (soft_l1, bounds, x_scale=jac), analytic J": lambda x0=x0, fun=fun, jac=jac: least_squares(
                fun, x0, jac=jac, bounds=(lower, upper), method="trf", x_scale="jac",
                loss="soft_l1", f_scale=0.1,
            ).cost,
            "scipy trf (soft_l1, bounds, x_scale=jac), finite diff": lambda x0=x0, fun=fun: least_squares(
                fun, x0, bounds=(lower, upper), method="trf", x_scale="jac", loss="soft_l1",
                f_scale=0.1,
            ).cost,
            "energycore LM (linear, no bounds used, 1 start)": lambda X=X, y=y, x0=x0: EnergyModel(
                loss="linear", n_threads=1
            )
            .fit(X, y, x0=x0)
            .fit_result_.cost,
            "scipy lm (linear, unbounded), analytic J": lambda x0=x0, fun=fun, jac=jac: least_squares(
                fun, x0, jac=jac, method="lm", x_scale="jac"
            ).cost,
            "scipy lm (linear, unbounded), finite diff": lambda x0=x0, fun=fun: least_squares(
                fun, x0, method="lm", x_scale="jac"
            ).cost,
        }  # fmt: skip
        for name, fn in cases.items():
            rep = args.repeat if name.startswith("energycore") else max(5, args.repeat // 5)
            t, cost = timeit(fn, rep)
            rows.setdefault(name, []).append((t, float(cost)))  # type: ignore[arg-type]

    anchor = "scipy trf (soft_l1, bounds, x_scale=jac), analytic J"
    ours = "energycore LM (soft_l1, bounds, 1 start)"
    load = os.getloadavg()
    print(
        f"# fit of the 12-coefficient energy model, 50 points, median over {args.seeds} problems;"
        f" load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print(
        f"| method | median time per fit | final cost (median) | time vs {anchor.split(',')[0]} |"
    )
    print("|---|---|---|---|")
    t_anchor = statistics.median(t for t, _ in rows[anchor])
    for name, vals in rows.items():
        t = statistics.median(v[0] for v in vals)
        c = statistics.median(v[1] for v in vals)
        print(f"| {name} | {t * 1e6:,.0f} us | {c:.6g} | {t / t_anchor:.4f} |")
    t_ours = statistics.median(t for t, _ in rows[ours])
    same = [
        abs(a[1] - b[1]) <= 1e-6 * b[1] or a[1] < b[1] for a, b in zip(rows[ours], rows[anchor])
    ]
    print(
        f"\nspeed-up of energycore over scipy trf (analytic J), same start: {t_anchor / t_ours:.0f}x"
    )
    for label, name in (
        ("(n, 5) array input", "energycore LM, (n, 5) array input (soft_l1, bounds, 1 start)"),
        ("C++ call alone", "energycore C++ call alone (_core.fit_template, 1 start)"),
    ):
        t_x = statistics.median(t for t, _ in rows[name])
        print(f"speed-up over scipy trf (analytic J), {label}: {t_anchor / t_x:.0f}x")
    t_core = statistics.median(
        t for t, _ in rows["energycore C++ call alone (_core.fit_template, 1 start)"]
    )
    t_arr = statistics.median(
        t for t, _ in rows["energycore LM, (n, 5) array input (soft_l1, bounds, 1 start)"]
    )
    print(
        f"wrapper cost (fit / C++ call alone, the ratio the load changes least): dict "
        f"{t_ours / t_core:.1f}x, (n, 5) array {t_arr / t_core:.1f}x"
    )
    print(f"final cost equal to scipy's (1e-6 rel.) or lower on {sum(same)}/{len(same)} problems")
    t_lm = statistics.median(t for t, _ in rows["scipy lm (linear, unbounded), analytic J"])
    t_ours_lin = statistics.median(
        t for t, _ in rows["energycore LM (linear, no bounds used, 1 start)"]
    )
    print(f"speed-up over scipy lm (analytic J), linear loss: {t_lm / t_ours_lin:.0f}x")

    X, y, _ = noisy_problem(0, n=50, noise=0.02)
    m = EnergyModel(loss="soft_l1", f_scale=0.1).fit(X, y)
    m.bootstrap(X, y, n=50)  # warm-up
    t, res = timeit(lambda: m.bootstrap(X, y, n=1000, seed=1), 7)
    print(
        f"\n1000 bootstrap refits in one call ({os.cpu_count()} cores): {t * 1e3:.1f} ms "
        f"({res.n_failed} failed)"
    )  # type: ignore[union-attr]


def bench_many(k: int, repeat: int = 3) -> None:
    """EnergyModel.fit_many of k problems of 50 rows: the array path (one C++ call, no object
    per problem) and the list path, both with one start and reduce=False (the configuration
    of the issue's target), against a loop of single fits and scipy trf on a sample."""
    import warnings

    from scipy.optimize import least_squares

    warnings.simplefilter("ignore")  # single-start fits may stop at max_iter; counted below
    probs = [noisy_problem(s, n=50, noise=0.02) for s in range(k)]
    Xs = [p[0] for p in probs]
    ys = [p[1] for p in probs]
    X3 = np.ascontiguousarray(np.stack([table(X) for X in Xs]))
    Y = np.ascontiguousarray(np.stack(ys))
    kw = {"n_starts": 1, "reduce": False, "outliers": 0}
    load = os.getloadavg()

    def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
        """(median wall s, median CPU s of this process, last result) over `repeat` runs."""
        walls, cpus, out = [], [], None
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        return statistics.median(walls), statistics.median(cpus), out

    t_arr, c_arr, arr = timed(
        lambda: EnergyModel.fit_many(X3, Y, as_arrays=True, n_threads=0, n_starts=1)
    )
    t_arr8, c_arr8, arr8 = timed(
        lambda: EnergyModel.fit_many(X3, Y, as_arrays=True, n_threads=0, n_starts=8)
    )
    n_list = min(k, 2000)
    t0 = time.perf_counter()
    many = EnergyModel.fit_many(Xs[:n_list], ys[:n_list], n_threads=0, **kw)
    t_many = (time.perf_counter() - t0) * k / n_list
    same = all(np.array_equal(m.coef_, c) for m, c in zip(many, arr.coef_))  # type: ignore[union-attr]
    n_loop = min(k, 1000)
    t0 = time.perf_counter()
    for X, y in zip(Xs[:n_loop], ys[:n_loop]):
        EnergyModel(n_threads=1, **kw).fit(X, y)
    t_loop = (time.perf_counter() - t0) * k / n_loop
    template = EnergyModel().template_name
    info = _core.template_info(template)["params"]
    lo, hi = np.array([p["lower"] for p in info]), np.array([p["upper"] for p in info])
    n_sp = min(k, 100)
    t0 = time.perf_counter()
    for Xd, y, c in zip(Xs[:n_sp], ys[:n_sp], arr.coef_[:n_sp]):  # type: ignore[union-attr]
        X = table(Xd)

        def fun(t, X=X, y=y):
            return np.log(_core.template_value(template, X, t, 1) / y)

        def jac(t, X=X):
            return (
                _core.template_jacobian(template, X, t)
                / _core.template_value(template, X, t, 1)[:, None]
            )

        least_squares(fun, np.clip(c * 1.1, lo, hi), jac=jac, bounds=(lo, hi),
                      method="trf", x_scale="jac", loss="soft_l1", f_scale=0.1)  # fmt: skip
    t_sp = (time.perf_counter() - t0) * k / n_sp
    n_limit = int((arr.status_ == 0).sum())  # type: ignore[union-attr]
    n_limit8 = int((arr8.status_ == 0).sum())  # type: ignore[union-attr]
    cost_8_lower = float(np.mean(arr8.cost_ < arr.cost_ * (1 - 1e-9)))  # type: ignore[union-attr]
    print(
        f"# fit_many: {k} problems of 50 rows, reduce=False, {os.cpu_count()} cores, load "
        f"average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; median of {repeat}"
    )
    print(
        f"fit_many(as_arrays=True), 1 start: {t_arr:.3f} s wall, {c_arr:.3f} s CPU "
        f"({t_arr / k * 1e6:.0f} us per problem; {n_limit} at max_iter)"
    )
    print(
        f"fit_many(as_arrays=True), 8 starts: {t_arr8:.3f} s wall, {c_arr8:.3f} s CPU "
        f"({n_limit8} at max_iter; lower cost than 1 start on {cost_8_lower:.1%})"
    )
    print(
        f"fit_many list path, 1 start (from {n_list}): {t_many:.2f} s -> {t_many / t_arr:.1f}x; "
        f"same coefficients as the array path: {same}"
    )
    print(f"loop of EnergyModel.fit (from {n_loop}): {t_loop:.2f} s -> {t_loop / t_arr:.1f}x")
    print(f"loop of scipy trf, analytic J (from {n_sp}): {t_sp:.2f} s -> {t_sp / t_arr:.1f}x")


if __name__ == "__main__":
    main()
