"""Diagnose the latency fit on few rows: ML.ENERGY v3 ITL, the current ``TpotModel`` against
simple alternatives (issue 11, "latency you can trust from few rows").

For every (task, model, GPU) group of ``bench/eval_real.py`` (LLM tasks by default) and every
latency predictor below, two error figures of the median inter-token latency:

- **LOO**: leave one configuration out of the whole group, fit on the rest, predict it;
- **half**: eval_real's protocol (fit on a random half, seeds 0-19), the error on the other half,
  and what the selection makes of it: the default ``EnergyModel`` of the same half picks the
  configuration of least predicted energy per token whose *predicted* ITL meets each limit
  (25/50/75th percentile of the group's ITL; Top-1 over those three limits and no limit, share of
  limited picks that break the limit in truth).

Predictors (all fitted on the training rows only; ``g`` = GPUs per stage, ``b`` = batch):

- ``TpotModel, c7 = 0``: ``TpotModel(fixed={"c7": 0.0})``, the ``tpot_v1`` form (the default
  before ``tpot_v2``);
- ``TpotModel (tpot_v2, default)``: the default ``TpotModel()``, as a user calls it;
- ``TpotModel, c7 = -0.5 when reduced and better``: the default fit; when it reduced ``c7``
  (too few rows for it), the same reduction with ``c7 = -0.5`` instead, kept when it fits the
  fitting rows better (same number of free coefficients);
- ``MoeTpotModel``: ``MoeTpotModel()`` (expert coverage, ``tpot_moe_v1``) on every group;
- ``by architecture``: ``MoeTpotModel`` on mixture-of-experts groups, ``TpotModel`` otherwise;
- ``loglin``: ``log ITL = a + s log b + d log g`` (least squares; ``d`` only when ``g`` varies);
- ``loglin per tp``: ``log ITL = a_g + s log b`` (one intercept per GPU count, shared slope);
- ``linear per tp``: ``ITL = a_g + c_g b`` per GPU count (relative-error NNLS; a count with
  fewer than 2 rows borrows the pooled fit's slope);
- ``monotone interp``: per GPU count, isotonic (non-decreasing in b) log ITL, interpolated
  linearly in ``log b`` between measured neighbours; outside the measured batches (or for a GPU
  count without rows) the ``loglin`` fit, shifted to meet the nearest measured point;
- ``loglin + prior``: ``loglin`` whose slope is shrunk towards the mean slope of the *other*
  groups on the same GPU type (leave-group-out, so no group sees its own data), with the prior
  weight of the between-group spread of the slopes (a ridge / empirical-Bayes estimate);
- ``roofline``: ``ITL = sqrt(W^2 + (c b)^2) g^e``-shaped smooth maximum of a weight-read time and
  a per-sequence time, fitted in log space (scipy).

``--ceiling`` asks instead how accurate *any* ITL predictor would have to be for the issue's
targets (Top-1 >= 0.95, <= 2 % of limited picks breaking the limit), on the same halves:

- **limit margins**: the share of limited cases whose true optimum is *unmeasured* and within
  ``t`` of the limit (below it), and the share with a cheaper configuration within ``t`` above
  it. The limits are percentiles of the group's own ITLs, so the optimum often sits exactly at
  the limit (``t = 0``); a predictor with error ``t`` is a coin flip on those cases;
- **noise ceiling**: selection with the default ``EnergyModel`` and a synthetic predictor, the
  *measured* ITL times ``exp(s z)``, ``z`` standard normal (seeded), on every configuration or
  on the unmeasured half only (the measured half exact): what an unbiased predictor with
  log-error ``s`` would reach. ``s = 0`` is eval_real's "true latency" row.

Run::

    python bench/diag_latency.py                 # LLM tasks, 20 seeds (~1-2 min)
    python bench/diag_latency.py --tasks all
    python bench/diag_latency.py --ceiling       # limit margins and the noise ceiling (~10 s)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, nnls

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_real as er
from energycore.errors import ConvergenceWarning
from energycore.fit.energy import EnergyModel, MoeTpotModel, TpotModel

Cols = dict[str, np.ndarray]
Predictor = Callable[[Cols, Cols], np.ndarray]


def _gpus(c: Cols) -> np.ndarray:
    return c["n_gpus"] / c["pp"]


def _loglin_design(c: Cols, with_g: bool) -> np.ndarray:
    cols = [np.ones(len(c["batch"])), np.log(c["batch"])]
    if with_g:
        cols.append(np.log(_gpus(c)))
    return np.column_stack(cols)


def fit_loglin(tr: Cols) -> tuple[np.ndarray, bool]:
    with_g = np.ptp(_gpus(tr)) > 0
    A = _loglin_design(tr, with_g)
    coef = np.linalg.lstsq(A, np.log(tr["tpot_s"]), rcond=None)[0]
    return coef, with_g


def loglin(tr: Cols, te: Cols) -> np.ndarray:
    coef, with_g = fit_loglin(tr)
    return np.exp(_loglin_design(te, with_g) @ coef)


def loglin_per_tp(tr: Cols, te: Cols) -> np.ndarray:
    levels = sorted(set(_gpus(tr).tolist()))
    gtr, gte = _gpus(tr), _gpus(te)
    A = np.column_stack([np.log(tr["batch"])] + [(gtr == v) * 1.0 for v in levels])
    coef = np.linalg.lstsq(A, np.log(tr["tpot_s"]), rcond=None)[0]
    base = loglin(tr, te)  # a GPU count without rows: the pooled fit
    out = base.copy()
    for k, v in enumerate(levels):
        m = gte == v
        out[m] = np.exp(coef[0] * np.log(te["batch"][m]) + coef[1 + k])
    return out


def linear_per_tp(tr: Cols, te: Cols) -> np.ndarray:
    def lin_fit(b: np.ndarray, y: np.ndarray) -> np.ndarray:
        A = np.column_stack([np.ones_like(b), b]) / y[:, None]
        return nnls(A, np.ones(len(b)))[0]

    pooled = lin_fit(tr["batch"], tr["tpot_s"])
    gtr, gte = _gpus(tr), _gpus(te)
    out = np.empty(len(te["batch"]))
    out[:] = pooled[0] + pooled[1] * te["batch"]
    for v in set(gte.tolist()):
        m, mt = gte == v, gtr == v
        if mt.sum() >= 2 and np.ptp(tr["batch"][mt]) > 0:
            c = lin_fit(tr["batch"][mt], tr["tpot_s"][mt])
        elif mt.sum() == 1:  # one row: the pooled slope through it
            y0, b0 = tr["tpot_s"][mt][0], tr["batch"][mt][0]
            c = np.array([max(y0 - pooled[1] * b0, 0.0), pooled[1]])
        else:
            c = pooled
        out[m] = c[0] + c[1] * te["batch"][m]
    return np.maximum(out, 1e-9)


def _isotonic(y: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing least-squares fit of y (in order)."""
    vals: list[float] = []
    wts: list[int] = []
    for v in y.tolist():
        vals.append(v)
        wts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            wts[-2] = w
            vals.pop()
            wts.pop()
    return np.repeat(vals, wts)


def monotone_interp(tr: Cols, te: Cols) -> np.ndarray:
    base = np.log(loglin(tr, te))
    base_tr = np.log(loglin(tr, tr))
    gtr, gte = _gpus(tr), _gpus(te)
    out = base.copy()
    for v in set(gte.tolist()):
        mt, m = gtr == v, gte == v
        if not mt.any():
            continue
        o = np.argsort(tr["batch"][mt])
        lb = np.log(tr["batch"][mt][o])
        ly = _isotonic(np.log(tr["tpot_s"][mt][o]))
        off = ly - base_tr[mt][o]  # the pooled fit's miss at each measured point
        q = np.log(te["batch"][m])
        inside = np.interp(q, lb, ly)
        # outside: the pooled fit shifted by its miss at the nearest end
        lo, hi = q < lb[0], q > lb[-1]
        res = inside.copy()
        res[lo] = base[m][lo] + off[0]
        res[hi] = base[m][hi] + off[-1]
        out[m] = res
    return np.exp(out)


def roofline(tr: Cols, te: Cols) -> np.ndarray:
    g = _gpus(tr)
    with_g = np.ptp(g) > 0
    b, y = tr["batch"], tr["tpot_s"]

    def f(p: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
        W, c = np.exp(p[0]), np.exp(p[1])
        e = p[2] if with_g else 0.0
        return np.sqrt(W**2 + (c * b) ** 2) * g**e

    p0 = np.array([np.log(y.min()), np.log(max(y.max() / b.max(), 1e-9)), -0.5])
    r = least_squares(lambda p: np.log(f(p, b, g) / y), p0, loss="soft_l1", f_scale=0.1)
    return f(r.x, te["batch"], _gpus(te))


def tpot_model(tr: Cols, te: Cols) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TpotModel().fit(tr, "tpot_s").predict(te)


def tpot_v1_form(tr: Cols, te: Cols) -> np.ndarray:
    """``TpotModel`` with the batch power held at 0: the ``tpot_v1`` form, as before tpot_v2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TpotModel(fixed={"c7": 0.0}).fit(tr, "tpot_s").predict(te)


def tpot_concave_alt(tr: Cols, te: Cols) -> np.ndarray:
    """``TpotModel()``; when its fit reduced ``c7`` (too few rows), the same reduction refitted
    with ``c7 = -0.5`` (a square-root batch term) instead of 0, kept when its in-sample log
    error is smaller (the same number of free coefficients; decided on the fitting rows)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = TpotModel().fit(tr, "tpot_s")
        if "c7" not in base.reduced_:
            return base.predict(te)
        fixed = {k: float(base.params_[k]) for k in base.reduced_}
        fixed["c7"] = -0.5
        alt = TpotModel(fixed=fixed).fit(tr, "tpot_s")
        y = tr["tpot_s"]
        s0 = float(np.sum(np.log(base.predict(tr) / y) ** 2))
        s1 = float(np.sum(np.log(alt.predict(tr) / y) ** 2))
        return (alt if s1 < s0 else base).predict(te)


def moe_tpot_model(tr: Cols, te: Cols) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MoeTpotModel().fit(tr, "tpot_s").predict(te)


def by_architecture(tr: Cols, te: Cols) -> np.ndarray:
    """MoeTpotModel for a mixture of experts (the user knows the architecture), else TpotModel."""
    moe = str(tr["architecture"][0]) == "MoE"
    return (moe_tpot_model if moe else tpot_model)(tr, te)


def make_prior(cols: Cols, gs: list[np.ndarray]) -> Callable[[int], Predictor]:
    """Per group, the mean and spread of the other groups' loglin slopes on the same GPU."""
    slopes, gpus = [], []
    for rows in gs:
        g = er.sub(cols, rows)
        slopes.append(fit_loglin(g)[0][1])
        gpus.append(g["gpu"][0])
    slopes_a = np.array(slopes)

    def for_group(gi: int) -> Predictor:
        other = np.array([k != gi and gpus[k] == gpus[gi] for k in range(len(gs))])
        mu = float(slopes_a[other].mean())
        tau2 = max(float(slopes_a[other].var(ddof=1)), 1e-4)

        def pred(tr: Cols, te: Cols) -> np.ndarray:
            with_g = np.ptp(_gpus(tr)) > 0
            A = _loglin_design(tr, with_g)
            y = np.log(tr["tpot_s"])
            # residual variance of an unregularised fit where it has a dof, else a typical 5 %
            coef = np.linalg.lstsq(A, y, rcond=None)[0]
            dof = len(y) - A.shape[1]
            s2 = float(np.sum((A @ coef - y) ** 2) / dof) if dof > 0 else 0.05**2
            s2 = max(s2, 0.01**2)
            lam = s2 / tau2
            P = np.zeros(A.shape[1])
            P[1] = lam
            coef = np.linalg.solve(
                A.T @ A + np.diag(P), A.T @ y + P * np.r_[0.0, mu, 0.0][: A.shape[1]]
            )
            return np.exp(_loglin_design(te, with_g) @ coef)

        return pred

    return for_group


METHODS: dict[str, Predictor | None] = {
    "TpotModel, c7 = 0 (tpot_v1 form)": tpot_v1_form,
    "TpotModel (tpot_v2, default)": tpot_model,
    "TpotModel, c7 = -0.5 when reduced and better": tpot_concave_alt,
    "MoeTpotModel": moe_tpot_model,
    "by architecture": by_architecture,
    "loglin": loglin,
    "loglin per tp": loglin_per_tp,
    "linear per tp": linear_per_tp,
    "monotone interp": monotone_interp,
    "loglin + prior": None,  # per group, from make_prior
    "roofline": roofline,
}


#: log-error scales of the noise ceiling's synthetic predictor
SCALES = (0.0, 0.02, 0.05, 0.10)
#: margins (relative) of the limit-margin table
MARGINS = (0.0, 0.01, 0.03, 0.05, 0.10)


def _halves(n: int, gi: int, seeds: int) -> list[np.ndarray]:
    """eval_real's fitting halves of a group of ``n`` rows, one per seed."""
    out = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed * 1000 + gi)
        out.append(np.sort(rng.choice(n, size=n // 2, replace=False)))
    return out


def limit_margins(
    itl: np.ndarray, e_true: np.ndarray, measured: np.ndarray, margins: tuple[float, ...]
) -> list[tuple[list[bool], list[bool]]]:
    """For each limited case (25/50/75th percentile), per margin ``t``: (is the true optimum
    unmeasured and within ``t`` below the limit, is a cheaper configuration within ``t`` above).
    """
    out = []
    for q in er.LIMITS:
        if q is None:
            continue
        lim = float(np.percentile(itl, q))
        ok = itl <= lim
        best = int(np.flatnonzero(ok)[np.argmin(e_true[ok])])
        below = lim / itl[best] - 1.0
        cheaper = ~ok & (e_true < e_true[best])
        above = float(itl[cheaper].min() / lim - 1.0) if cheaper.any() else math.inf
        out.append(
            ([not measured[best] and below <= t for t in margins], [above <= t for t in margins])
        )
    return out


def noisy_truth(
    itl: np.ndarray, z: np.ndarray, scale: float, measured: np.ndarray | None
) -> np.ndarray:
    """The measured ITL times ``exp(scale z)``; rows marked in ``measured`` are left exact."""
    lat = itl * np.exp(scale * z)
    return lat if measured is None else np.where(measured, itl, lat)


def ceiling(cols: Cols, gs: list[np.ndarray], seeds: int) -> None:
    """Print the limit-margin table and the noise-ceiling table (see the module docstring)."""
    marg: list[tuple[list[bool], list[bool]]] = []
    sel: dict[str, list[tuple[bool, bool, bool]]] = {}
    for gi, rows in enumerate(gs):
        g = er.sub(cols, rows)
        n = len(rows)
        itl, e_true = g["tpot_s"], er.per_token(g)
        limits = [None if q is None else float(np.percentile(itl, q)) for q in er.LIMITS]
        for seed, h in enumerate(_halves(n, gi, seeds)):
            measured = np.zeros(n, bool)
            measured[h] = True
            marg += limit_margins(itl, e_true, measured, MARGINS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                em = EnergyModel().fit(er.sub(g, h), "energy_j")
            e_hat = em.predict(g) / (g["batch"] * g["output_len"])
            z = np.random.default_rng(10**6 + seed * 1000 + gi).standard_normal(n)
            for s in SCALES:
                for where, mask in (("every configuration", None), ("unmeasured half", measured)):
                    if s == 0 and mask is not None:
                        continue
                    lat = noisy_truth(itl, z, s, mask)
                    key = f"{100 * s:g} % | {where if s else '- (the true latency)'}"
                    for lim in limits:
                        ok_true = np.ones(n, bool) if lim is None else itl <= lim
                        best = int(np.flatnonzero(ok_true)[np.argmin(e_true[ok_true])])
                        feas = np.ones(n, bool) if lim is None else lat <= lim
                        k = er.pick(e_hat, feas, lat)
                        sel.setdefault(key, []).append(
                            (k == best, lim is not None and itl[k] > lim, lim is not None)
                        )
    below = np.array([b for b, _ in marg], dtype=float).mean(axis=0)
    above = np.array([a for _, a in marg], dtype=float).mean(axis=0)
    print(f"limit margins: {len(marg)} limited cases ({len(gs)} groups x {seeds} seeds x 3)")
    print(
        "| margin t | optimum unmeasured, within t below the limit | cheaper config within t above |"
    )
    print("|---:|---:|---:|")
    for t, b, a in zip(MARGINS, below, above):
        print(f"| {100 * t:g} % | {100 * b:.1f} % | {100 * a:.1f} % |")
    print()
    print("noise ceiling: default EnergyModel, ITL = measured x exp(s z)")
    print("| log-error s | on | Top-1, 4 limits | Top-1, limited | breaks limit |")
    print("|---:|---|---:|---:|---:|")
    for key, v in sel.items():
        a = np.array(v, dtype=float)
        lim = a[:, 2] == 1
        print(
            f"| {key} | {a[:, 0].mean():.3f} | {a[lim, 0].mean():.3f} "
            f"| {100 * a[lim, 1].mean():.1f} % |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", choices=("llm", "all"), default="llm")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument(
        "--ceiling", action="store_true", help="limit margins and the noise ceiling instead"
    )
    args = ap.parse_args()
    cols = er.read_mlenergy(er.DATA / er.CSV)
    gs = er.groups(cols, args.tasks)
    if args.ceiling:
        ceiling(cols, gs, args.seeds)
        return
    prior = make_prior(cols, gs)
    loo: dict[str, list[float]] = {m: [] for m in args.methods}
    half: dict[str, list[float]] = {m: [] for m in args.methods}
    sel: dict[str, list[tuple[bool, bool, bool]]] = {m: [] for m in args.methods}
    t0 = time.perf_counter()
    for gi, rows in enumerate(gs):
        g = er.sub(cols, rows)
        n = len(rows)
        fns = {m: (METHODS[m] or prior(gi)) for m in args.methods}
        for i in range(n):
            tr = er.sub(g, np.delete(np.arange(n), i))
            te = er.sub(g, np.array([i]))
            for m, f in fns.items():
                p = f(tr, te)[0]
                loo[m].append(abs(p / te["tpot_s"][0] - 1))
        itl = g["tpot_s"]
        e_true = er.per_token(g)
        limits = [None if q is None else float(np.percentile(itl, q)) for q in er.LIMITS]
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed * 1000 + gi)  # eval_real's halves
            h = np.sort(rng.choice(n, size=n // 2, replace=False))
            tr = er.sub(g, h)
            out = np.setdiff1d(np.arange(n), h)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                em = EnergyModel().fit(tr, "energy_j")
            e_hat = em.predict(g) / (g["batch"] * g["output_len"])
            for m, f in fns.items():
                lat = f(tr, g)
                half[m] += np.abs(lat[out] / itl[out] - 1).tolist()
                for lim in limits:
                    ok_true = np.ones(n, bool) if lim is None else itl <= lim
                    best = int(np.flatnonzero(ok_true)[np.argmin(e_true[ok_true])])
                    feas = np.ones(n, bool) if lim is None else lat <= lim
                    k = er.pick(e_hat, feas, lat)
                    sel[m].append((k == best, lim is not None and itl[k] > lim, lim is not None))
    print(
        f"ML.ENERGY v3, {args.tasks} tasks: {len(gs)} groups, LOO over every configuration, "
        f"halves of {args.seeds} seeds, {time.perf_counter() - t0:.0f} s"
    )
    print(
        "| ITL predictor | LOO median error | LOO mean error | LOO within 5 % | half: median error "
        "| half: within 5 % | Top-1, 4 limits | breaks limit |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in args.methods:
        a, h = np.array(loo[m]), np.array(half[m])
        s = np.array(sel[m])
        print(
            f"| {m} | {100 * np.median(a):.1f} % | {100 * a.mean():.1f} % "
            f"| {100 * (a <= 0.05).mean():.0f} % | {100 * np.median(h):.1f} % "
            f"| {100 * (h <= 0.05).mean():.0f} % | {s[:, 0].mean():.3f} "
            f"| {100 * s[s[:, 2] == 1, 1].mean():.1f} % |"
        )


if __name__ == "__main__":
    main()
