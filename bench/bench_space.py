"""Configuration-space throughput: energycore's C++ engine against numpy and a plain loop.

One query, three implementations: enumerate a deployment space (GPU type x tp x pp x batch x
quantisation x two user knobs), drop points failing the GPU-count, divisibility, memory-fit and a
user constraint, score the rest with per-GPU energy and latency models, and return the lowest
energy per request under a latency limit and a power cap. Prints configurations per second for

- ``energycore`` (``ConfigSpace.argmin``, 1 thread and all threads),
- a numpy-vectorised reference (same constraints, same model formulas, chunks of 2**20 points),
- a plain ``itertools.product`` loop in Python (on a sub-space, same answer checked),

their ratios, the worst case where every point has its own model inputs (no reuse), the
latency of ``Selector.best`` called from Python, the cost of ``confidence=0.9`` (upper bounds,
with the models' gradients; with the power cap judged on ``power_upper_w`` and without a power
cap, on the engine and on the Selector) and an explicit list of 10**6 configurations
(``ConfigSpace.from_rows``) against numpy on the same rows. Every implementation's answer is
checked equal.
Run:

    PYTHONPATH=python python bench/bench_space.py          # or after `pip install .[bench]`
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
from typing import Any

import numpy as np

from energycore import ConfigSpace, Selector

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.helpers import fitted

GPUS = {"H100": 80.0, "A100": 40.0, "L40S": 48.0, "B200": 192.0}
QUANT_W = {"fp16": 140.0, "fp8": 70.0, "int4": 35.0}
QUANT_KV = {"fp16": 0.00032, "fp8": 0.00016, "int4": 0.00016}
USER = "knob % tp == 0 or flag"
LIN, LOUT = 512.0, 256.0
LAT, CAP = 8.0, 3000.0


def axes(knobs: int) -> dict[str, list[Any]]:
    return {
        "gpu": list(GPUS),
        "tp": [1, 2, 4, 8],
        "pp": [1, 2, 4],
        "batch": ConfigSpace.powers_of_two(1, 512),
        "quant": list(QUANT_W),
        "knob": list(range(1, knobs + 1)),
        "flag": [False, True],
    }


def constraints() -> list[str]:
    return [
        ConfigSpace.gpu_count(8),
        ConfigSpace.divisible(heads=64, layers=80),
        ConfigSpace.memory_fit(weights_gb=QUANT_W, kv_gb_per_token=QUANT_KV, gpu_mem_gb=GPUS),
        USER,
    ]


def models() -> dict[str, list[Any]]:
    return {g: list(fitted(1.0 + 0.4 * k, seed=k)) for k, g in enumerate(GPUS)}


# ------------------------------------------------------------------------------ formulas
def energy_v2(t: np.ndarray, tp: Any, pp: Any, b: Any, lin: float, lout: float) -> Any:
    """EnergyModel's default template, written out (works on numpy arrays and on floats)."""
    pre = (t[0] * b * lin + t[1] * b * lin**2) * tp ** t[2] * (1 + t[3] * (pp - 1))
    pre = pre + t[4] * b * lin * (tp - 1)
    dec = (
        lout * (t[5] + t[6] * b + t[7] * b * (lin + lout / 2)) * tp ** t[8] * (1 + t[9] * (pp - 1))
    )
    dec = dec + t[10] * b * lout * (tp - 1)
    return pre + dec + t[11] * tp * pp


def ttft_v1(a: np.ndarray, tp: Any, pp: Any, b: Any, lin: float) -> Any:
    return (
        (a[0] * b * lin + a[1] * b * lin**2) * tp ** a[2] * pp ** a[3]
        + a[4] * b * lin * (1 - 1 / tp)
        + a[5]
    )


def tpot_v1(c: np.ndarray, tp: Any, pp: Any, b: Any, lin: float, lout: float) -> Any:
    return (c[0] + c[1] * b + c[2] * b * (lin + lout / 2)) * tp ** c[3] * pp ** c[4] + c[5] * b * (
        1 - 1 / tp
    )


def coefs(ms: dict[str, list[Any]]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [(m[0].coef_, m[1].coef_[:6], m[1].coef_[6:]) for m in ms.values()]


# ------------------------------------------------------------------------------ references
def numpy_argmin(
    ax: dict[str, list[Any]], ms: dict[str, list[Any]], chunk: int = 1 << 20
) -> tuple[int, float]:
    """Vectorised: decode index chunks into columns, mask, score, reduce."""
    sizes = [len(v) for v in ax.values()]
    n = math.prod(sizes)
    vals = [
        np.asarray(v if not isinstance(v[0], str) else range(len(v)), dtype=np.float64)
        for v in ax.values()
    ]
    memv = np.array(list(GPUS.values()))
    wv, kvv = np.array(list(QUANT_W.values())), np.array(list(QUANT_KV.values()))
    th = coefs(ms)
    best, best_i = math.inf, -1
    for start in range(0, n, chunk):
        idx = np.arange(start, min(n, start + chunk), dtype=np.int64)
        cols, rest = [], idx
        for s, v in zip(sizes[::-1], vals[::-1]):
            cols.append(v[rest % s])
            rest = rest // s
        gpu, tp, pp, b, quant, knob, flag = cols[::-1]
        g, q = gpu.astype(np.int64), quant.astype(np.int64)
        mem_need = (wv[q] + kvv[q] * b * (LIN + LOUT)) / (tp * pp)
        ok = (tp * pp <= 8) & (64 % tp == 0) & (80 % pp == 0) & (mem_need <= memv[g] * 0.9)
        ok &= (knob % tp == 0) | (flag != 0)
        for k, (te, ta, tc) in enumerate(th):
            m = ok & (g == k)
            if not m.any():
                continue
            tpm, ppm, bm = tp[m], pp[m], b[m]
            e = energy_v2(te, tpm, ppm, bm, LIN, LOUT)
            lat = ttft_v1(ta, tpm, ppm, bm, LIN) + LOUT * tpot_v1(tc, tpm, ppm, bm, LIN, LOUT)
            epr = e / bm
            feas = (lat <= LAT) & (e / lat <= CAP)
            if feas.any():
                cand = np.where(feas, epr, np.inf)
                j = int(np.argmin(cand))
                i = int(idx[m][j])
                if cand[j] < best or (cand[j] == best and i < best_i):
                    best, best_i = float(cand[j]), i
    return best_i, best


def numpy_rows_argmin(cols: dict[str, np.ndarray], ms: dict[str, list[Any]]) -> tuple[int, float]:
    """Vectorised over explicit rows (decoded columns): mask, score per GPU, reduce."""
    memv = np.array(list(GPUS.values()))
    wv, kvv = np.array(list(QUANT_W.values())), np.array(list(QUANT_KV.values()))
    g = np.searchsorted(np.array(list(GPUS)), cols["gpu"], sorter=np.argsort(list(GPUS)))
    g = np.argsort(list(GPUS))[g]
    qn = list(QUANT_W)
    q = np.argsort(qn)[np.searchsorted(np.array(qn), cols["quant"], sorter=np.argsort(qn))]
    tp, pp, b = (cols[k].astype(np.float64) for k in ("tp", "pp", "batch"))
    knob, flag = cols["knob"], cols["flag"]
    mem_need = (wv[q] + kvv[q] * b * (LIN + LOUT)) / (tp * pp)
    ok = (tp * pp <= 8) & (64 % tp == 0) & (80 % pp == 0) & (mem_need <= memv[g] * 0.9)
    ok &= (knob % tp == 0) | flag
    best, best_i = math.inf, -1
    for k, (te, ta, tc) in enumerate(coefs(ms)):
        m = np.flatnonzero(ok & (g == k))
        if not len(m):
            continue
        tpm, ppm, bm = tp[m], pp[m], b[m]
        e = energy_v2(te, tpm, ppm, bm, LIN, LOUT)
        lat = ttft_v1(ta, tpm, ppm, bm, LIN) + LOUT * tpot_v1(tc, tpm, ppm, bm, LIN, LOUT)
        cand = np.where((lat <= LAT) & (e / lat <= CAP), e / bm, np.inf)
        j = int(np.argmin(cand))
        if cand[j] < best or (cand[j] == best and m[j] < best_i):
            best, best_i = float(cand[j]), int(m[j])
    return best_i, best


def loop_argmin(ax: dict[str, list[Any]], ms: dict[str, list[Any]]) -> tuple[int, float]:
    """Plain Python: itertools.product, if-statements, math on floats."""
    th = dict(zip(GPUS, coefs(ms)))
    best, best_i = math.inf, -1
    for i, (gpu, tp, pp, b, quant, knob, flag) in enumerate(itertools.product(*ax.values())):
        if tp * pp > 8 or 64 % tp or 80 % pp:
            continue
        if (QUANT_W[quant] + QUANT_KV[quant] * b * (LIN + LOUT)) / (tp * pp) > GPUS[gpu] * 0.9:
            continue
        if not (knob % tp == 0 or flag):
            continue
        te, ta, tc = th[gpu]
        e = energy_v2(te, tp, pp, b, LIN, LOUT)
        lat = ttft_v1(ta, tp, pp, b, LIN) + LOUT * tpot_v1(tc, tp, pp, b, LIN, LOUT)
        if lat <= LAT and e / lat <= CAP and e / b < best:
            best, best_i = e / b, i
    return best_i, best


def timed(fn: Any, repeat: int = 3, clock: Any = time.thread_time) -> tuple[float, Any]:
    """Best of ``repeat`` runs. Single-threaded work is timed in CPU time of this thread, which
    other processes on a shared machine do not inflate; multi-threaded work in wall time."""
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = clock()
        out = fn()
        best = min(best, clock() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--knobs", type=int, default=1024, help="values of the user knob axis")
    ap.add_argument("--loop-knobs", type=int, default=4, help="knob values in the loop's sub-space")
    ap.add_argument("--queries", type=int, default=20000, help="Selector queries to time")
    ap.add_argument("--rows", type=int, default=10**6, help="rows of the from_rows list")
    args = ap.parse_args()
    ms = models()
    limits = {"latency_s": ("<=", LAT), "power_w": ("<=", CAP)}
    kw = {"models": ms, "input_len": LIN, "output_len": LOUT}

    big = axes(args.knobs)
    s1 = ConfigSpace(big, constraints=constraints(), n_threads=1)
    sN = ConfigSpace(big, constraints=constraints(), n_threads=0)
    n = s1.size
    s1.argmin("energy_per_request_j", subject_to=limits, **kw)  # warm: engine, model table
    sN.argmin("energy_per_request_j", subject_to=limits, **kw)
    t1, r1 = timed(lambda: s1.argmin("energy_per_request_j", subject_to=limits, **kw))
    tN, rN = timed(
        lambda: sN.argmin("energy_per_request_j", subject_to=limits, **kw), clock=time.perf_counter
    )
    tnp, (i_np, v_np) = timed(lambda: numpy_argmin(big, ms), repeat=2)
    assert r1.index == rN.index == i_np, (r1.index, rN.index, i_np)
    assert math.isclose(r1.value, v_np, rel_tol=1e-12)

    small = axes(args.loop_knobs)
    ss = ConfigSpace(small, constraints=constraints(), n_threads=1)
    tl, (i_l, v_l) = timed(lambda: loop_argmin(small, ms), repeat=1)
    rs = ss.argmin("energy_per_request_j", subject_to=limits, **kw)
    assert rs.index == i_l and math.isclose(rs.value, v_l, rel_tol=1e-12)
    ts, _ = timed(lambda: ss.argmin("energy_per_request_j", subject_to=limits, **kw))

    # Worst case: every point has its own model inputs, so nothing is reused.
    worst = {
        "tp": [1, 2, 4, 8],
        "pp": [1, 2],
        "batch": list(range(1, 257)),
        "input_len": [float(x) for x in range(64, 64 * 65, 64)],
        "output_len": [float(x) for x in range(16, 16 * 33, 16)],
    }
    sw = ConfigSpace(worst, constraints=["tp * pp <= 8"], n_threads=1)
    wkw = {"models": list(ms["H100"])}
    tw, _ = timed(lambda: sw.argmin("energy_per_request_j", subject_to=limits, **wkw), repeat=2)

    rate1, rateN, rate_np = n / t1, n / tN, n / tnp
    rate_loop, rate_small = ss.size / tl, ss.size / ts
    print(f"space: {n:,} configurations, {r1.n_valid:,} valid, {r1.n_feasible:,} feasible; "
          f"best {r1.config['gpu']} tp={r1.config['tp']} pp={r1.config['pp']} "
          f"batch={r1.config['batch']} {r1.config['quant']}: {r1.value:.4g} J/request")  # fmt: skip
    print(f"energycore, 1 thread        {rate1 / 1e6:9.1f} M configurations/s")
    print(f"energycore, {os.cpu_count()} threads (wall)  {rateN / 1e6:9.1f} M configurations/s")
    print(f"numpy reference             {rate_np / 1e6:9.1f} M configurations/s")
    print(f"itertools loop ({ss.size:,} pts) {rate_loop / 1e6:9.3f} M configurations/s")
    print(f"ratio energycore(1 thread) / numpy          {rate1 / rate_np:8.1f}x")
    print(
        f"ratio energycore(1 thread) / itertools loop {rate1 / rate_loop:8.0f}x  per configuration"
    )
    print(
        f"  (on the loop's own {ss.size:,}-point sub-space, Python call included: {rate_small / rate_loop:.0f}x)"
    )
    print(
        f"worst case, no model reuse ({sw.size:,} pts), 1 thread: {sw.size / tw / 1e6:.1f} M configurations/s"
    )

    # confidence=0.9: the upper bounds (gradients of the templates) on the same query, with the
    # power cap (judged on power_upper_w) and without it (latency limit only).
    lat_only = {"latency_s": ("<=", LAT)}
    t1l, _ = timed(lambda: s1.argmin("energy_per_request_j", subject_to=lat_only, **kw))
    for what, lim, t_point in (
        ("latency + power cap", limits, t1),
        ("latency only", lat_only, t1l),
    ):
        s1.argmin("energy_per_request_j", subject_to=lim, confidence=0.9, **kw)  # warm
        tc, rc = timed(
            lambda lim=lim: s1.argmin("energy_per_request_j", subject_to=lim, confidence=0.9, **kw)
        )
        print(
            f"confidence=0.9, {what}, 1 thread {n / tc / 1e6:9.1f} M configurations/s "
            f"({tc / t_point:.2f}x the time of the point query with the same limits, "
            f"{n / t_point / 1e6:.1f} M/s; {rc.n_feasible:,} feasible)"
        )

    # An explicit list: 10**6 distinct random points of the same space, in random order.
    rng = np.random.default_rng(1)
    pick = rng.choice(n, size=min(args.rows, n), replace=False)
    every = ConfigSpace(big)  # no constraints: decode the picked indices to columns
    cols = {k: v for k, v in every._columns(every._query(None, {}), pick).items() if k in big}
    t0 = time.perf_counter()
    rows_space = ConfigSpace.from_rows(cols, constraints=constraints(), n_threads=1)
    t_build = time.perf_counter() - t0
    rows_space.argmin("energy_per_request_j", subject_to=limits, **kw)  # warm
    tr, rr = timed(lambda: rows_space.argmin("energy_per_request_j", subject_to=limits, **kw))
    tnr, (i_nr, v_nr) = timed(lambda: numpy_rows_argmin(cols, ms), repeat=2)
    assert rr.index == i_nr and math.isclose(rr.value, v_nr, rel_tol=1e-12), (rr.index, i_nr)
    m = len(pick)
    print(
        f"from_rows ({m:,} rows), 1 thread {m / tr / 1e6:6.1f} M rows/s; numpy on the same rows "
        f"{m / tnr / 1e6:.1f} M rows/s; ratio {tnr / tr:.1f}x (from_rows itself: "
        f"{t_build:.2f} s, validation and coding of the columns)"
    )

    # Selector: a serving-sized space (no knobs), random workloads and limits, from Python.
    serve = {k: v for k, v in big.items() if k not in ("knob", "flag")}
    sp = ConfigSpace(serve, constraints=constraints()[:3])
    t0 = time.perf_counter()
    sel = Selector(sp, models=ms)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    qs = [
        (
            float(rng.integers(1, 8192)),
            float(rng.integers(1, 2048)),
            float(rng.uniform(0.5, 30)),
            float(rng.uniform(200, 6000)),
        )
        for _ in range(args.queries)
    ]
    for q in qs[:200]:
        a = sel.best(*q)
        b = sp.argmin(
            sel.objective,
            subject_to={"latency_s": ("<=", q[2]), "power_w": ("<=", q[3])},
            models=ms,
            input_len=q[0],
            output_len=q[1],
        )
        assert (a.index, a.nearest_index) == (b.index, b.nearest_index)
    t0 = time.thread_time()
    for q in qs:
        sel.best(*q)
    per = (time.thread_time() - t0) / len(qs)
    t0 = time.perf_counter()
    for q in qs:
        sel.best(*q)
    per_wall = (time.perf_counter() - t0) / len(qs)
    feas = sum(sel.best(*q).feasible for q in qs[:2000]) / min(2000, len(qs))
    print(f"Selector: {sel.n_candidates} candidates, built in {build * 1e3:.0f} ms; best() from Python "
          f"{per * 1e6:.1f} us/query CPU ({per_wall * 1e6:.1f} wall), {feas:.0%} feasible; equal to argmin on 200 queries")  # fmt: skip

    # The same queries under confidence=0.9: the latency limit on latency_upper_s, the power cap
    # on power_upper_w (pruned by the stored power lower bound: power_upper_w >= power_w).
    selc = Selector(sp, models=ms, confidence=0.9)
    for q in qs[:200]:
        a = selc.best(*q)
        b = sp.argmin(
            selc.objective,
            subject_to={"latency_s": ("<=", q[2]), "power_w": ("<=", q[3])},
            models=ms, confidence=0.9, input_len=q[0], output_len=q[1],
        )  # fmt: skip
        assert (a.index, a.nearest_index) == (b.index, b.nearest_index)
    for what, with_cap in (("latency + power cap", True), ("latency only", False)):
        t0 = time.thread_time()
        for q in qs:
            selc.best(q[0], q[1], q[2], q[3] if with_cap else None)
        per_c = (time.thread_time() - t0) / len(qs)
        t0 = time.thread_time()
        for q in qs:
            sel.best(q[0], q[1], q[2], q[3] if with_cap else None)
        per_p = (time.thread_time() - t0) / len(qs)
        print(f"Selector, confidence=0.9, {what}: {per_c * 1e6:.1f} us/query CPU against "
              f"{per_p * 1e6:.1f} us for the point prediction (same queries, same run)")  # fmt: skip


if __name__ == "__main__":
    main()
